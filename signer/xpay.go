package signer

import (
	"crypto/hmac"
	"crypto/sha256"
)

// ClientPaySigURI is the fixed "uri" that wx.requestVirtualPayment's paySig is computed over.
const ClientPaySigURI = "requestVirtualPayment"

// XpayKey is one virtual-payment AppKey (production or sandbox), ready to sign.
type XpayKey struct {
	key *HMACKey
}

// NewXpayKey prepares an AppKey for signing.
func NewXpayKey(appKey string) *XpayKey {
	return &XpayKey{key: NewHMACKey([]byte(appKey))}
}

// AppendPaySig appends the server-API pay_sig: lowercase hex HMAC-SHA256(AppKey, uri + "&" + body),
// where uri is the request path without query (for example "/xpay/currency_pay") and body is the
// exact POST body sent.
func (k *XpayKey) AppendPaySig(dst []byte, uri string, body []byte) []byte {
	return k.key.AppendHex(dst, uri, "&", body)
}

// VerifyPaySig reports whether sig is the pay_sig of uri and body under this key.
func (k *XpayKey) VerifyPaySig(sig []byte, uri string, body []byte) bool {
	return k.key.VerifyHex(sig, uri, "&", body)
}

// AppendClientPaySig appends the paySig for wx.requestVirtualPayment:
// HMAC-SHA256(AppKey, "requestVirtualPayment&" + signData).
func (k *XpayKey) AppendClientPaySig(dst []byte, signData []byte) []byte {
	return k.key.AppendHex(dst, ClientPaySigURI, "&", signData)
}

// VerifyClientPaySig reports whether sig is the client paySig of signData under this key.
func (k *XpayKey) VerifyClientPaySig(sig []byte, signData []byte) bool {
	return k.key.VerifyHex(sig, ClientPaySigURI, "&", signData)
}

// AppendUserSignature appends the user-state signature: lowercase hex HMAC-SHA256 keyed with the
// session_key as its base64 text (not decoded) over the exact body (server API) or signData
// (client API).
func AppendUserSignature[K string | []byte](dst []byte, sessionKey K, body []byte) []byte {
	return AppendHMACHex(dst, sessionKey, body)
}

// VerifyUserSignature reports whether sig is the user-state signature of body under sessionKey,
// comparing in constant time.
func VerifyUserSignature[K string | []byte](sig []byte, sessionKey K, body []byte) bool {
	var buf [2 * sha256.Size]byte
	return hmac.Equal(AppendUserSignature(buf[:0], sessionKey, body), sig)
}
