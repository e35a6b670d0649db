package signer

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
)

// WeChat Pay APIv3 signing and verification (spec/wechatpay.md §1, §2, §6.6).

// AuthScheme is the APIv3 Authorization scheme.
const AuthScheme = "WECHATPAY2-SHA256-RSA2048"

// SignTestPrefix starts the signatures WeChat Pay sends as probes; they must never verify.
const SignTestPrefix = "WECHATPAY/SIGNTEST/"

var (
	// ErrSignatureInvalid is returned when a signature does not verify (or cannot be decoded).
	ErrSignatureInvalid = errors.New("signature does not verify")
	// ErrSignatureProbe is returned for WECHATPAY/SIGNTEST/ probe signatures; it wraps
	// ErrSignatureInvalid.
	ErrSignatureProbe = errors.New("WECHATPAY/SIGNTEST/ probe signature")
)

// ParsePrivateKey parses a merchant RSA private key in PEM, PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
// ("PRIVATE KEY"). It rejects other key types and keys shorter than 2048 bits.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) { panic("todo") }

// ParsePublicKey parses an RSA public key in PEM: SPKI ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY").
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) { panic("todo") }

// ParseCertificate parses one PEM X.509 certificate with an RSA key and returns it with its serial
// as WeChat Pay writes it: upper-case hex of the serial number.
func ParseCertificate(pemBytes []byte) (*x509.Certificate, string, error) { panic("todo") }

// CertificateSerial returns a certificate's serial as WeChat Pay writes it (upper-case hex).
func CertificateSerial(c *x509.Certificate) string { panic("todo") }

// AppendRequestMessage appends the APIv3 request message:
// METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n, where canonicalURL is path[?query] as sent.
func AppendRequestMessage(dst []byte, method, canonicalURL, timestamp, nonce string, body []byte) []byte {
	panic("todo")
}

// AppendResponseMessage appends the message of a response or notification:
// TIMESTAMP\nNONCE\nBODY\n over the raw body.
func AppendResponseMessage(dst []byte, timestamp, nonce string, body []byte) []byte { panic("todo") }

// AppendPaySignMessage appends the wx.requestPayment (APIv3) message: appId\ntimeStamp\nnonceStr\npackage\n.
func AppendPaySignMessage(dst []byte, appID, timeStamp, nonceStr, pkg string) []byte { panic("todo") }

// AppendAuthorization appends the Authorization header value:
// WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",signature="..",timestamp="..",serial_no="..".
func AppendAuthorization(dst []byte, mchID, nonce, signature, timestamp, serialNo string) []byte {
	panic("todo")
}

// Authorization is a parsed APIv3 Authorization header.
type Authorization struct {
	MchID, NonceStr, Signature, Timestamp, SerialNo string
}

// ParseAuthorization parses an Authorization header value (any order of the five fields); it
// fails on a wrong scheme, a missing or repeated field, or unquoted values.
func ParseAuthorization(v string) (Authorization, error) { panic("todo") }

// RSASigner makes SHA256withRSA (PKCS#1 v1.5) signatures, base64-encoded, with a merchant private
// key. It is safe for concurrent use.
type RSASigner struct {
	key *rsa.PrivateKey
}

// NewRSASigner returns a signer for key (precomputed values are computed once).
func NewRSASigner(key *rsa.PrivateKey) *RSASigner { panic("todo") }

// AppendSign appends the standard-base64 signature of message to dst.
func (s *RSASigner) AppendSign(dst, message []byte) ([]byte, error) { panic("todo") }

// PublicKey returns the signer's public key.
func (s *RSASigner) PublicKey() *rsa.PublicKey { panic("todo") }

// RSAVerifier verifies SHA256withRSA signatures with one public key. It is safe for concurrent use.
type RSAVerifier struct {
	key *rsa.PublicKey
}

// NewRSAVerifier returns a verifier for key.
func NewRSAVerifier(key *rsa.PublicKey) *RSAVerifier { panic("todo") }

// Verify checks the base64 signature of message. Probe signatures fail with ErrSignatureProbe,
// every other failure (bad base64 included) with ErrSignatureInvalid; it never panics.
func (v *RSAVerifier) Verify(message []byte, signature string) error { panic("todo") }
