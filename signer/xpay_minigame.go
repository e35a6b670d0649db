package signer

// Mini-game virtual payment 2.0 (docs/protocol/xpay.md, "Mini-game virtual payment"): the
// server APIs /wxa/game/... use AppendPaySig and AppendUserSignature unchanged; the client's
// wx.requestMidasPaymentGameItem and the pushed pay events sign other strings with the AppKey.

// GameItemPaySigURI is the fixed "uri" that wx.requestMidasPaymentGameItem's paySig is computed
// over.
const GameItemPaySigURI = "requestMidasPaymentGameItem"

// AppendGameItemPaySig appends the paySig for wx.requestMidasPaymentGameItem:
// lowercase hex HMAC-SHA256(AppKey, "requestMidasPaymentGameItem&" + signData).
func (k *XpayKey) AppendGameItemPaySig(dst []byte, signData []byte) []byte {
	return k.key.AppendHex(dst, GameItemPaySigURI, "&", signData)
}

// VerifyGameItemPaySig reports whether sig is the wx.requestMidasPaymentGameItem paySig of
// signData under this key.
func (k *XpayKey) VerifyGameItemPaySig(sig []byte, signData []byte) bool {
	return k.key.VerifyHex(sig, GameItemPaySigURI, "&", signData)
}

// AppendPayEventSig appends the PayEventSig of a mini-game pay event push:
// lowercase hex HMAC-SHA256(AppKey, event + "&" + payload), where payload is the MiniGame.Payload
// text exactly as pushed.
func (k *XpayKey) AppendPayEventSig(dst []byte, event string, payload []byte) []byte {
	return k.key.AppendHex(dst, event, "&", payload)
}

// VerifyPayEventSig reports whether sig is the PayEventSig of event and payload under this key.
func (k *XpayKey) VerifyPayEventSig(sig []byte, event string, payload []byte) bool {
	return k.key.VerifyHex(sig, event, "&", payload)
}
