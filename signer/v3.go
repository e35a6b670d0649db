package signer

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// WeChat Pay APIv3 signing and verification (docs/protocol/wechatpay.md §1, §2, §6).

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

// minRSABits is the smallest merchant key ParsePrivateKey accepts (WeChat Pay issues RSA-2048).
const minRSABits = 2048

// PEM block types.
const (
	pemPKCS1Private = "RSA PRIVATE KEY"
	pemPKCS8Private = "PRIVATE KEY"
	pemSPKIPublic   = "PUBLIC KEY"
	pemPKCS1Public  = "RSA PUBLIC KEY"
	pemCertificate  = "CERTIFICATE"
)

// decodePEM returns the first PEM block of pemBytes. Errors never quote the input: it may be a
// secret key.
func decodePEM(what string, pemBytes []byte) (*pem.Block, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("signer: parse %s: no PEM block found", what)
	}
	if _, ok := block.Headers["Proc-Type"]; ok || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, fmt.Errorf("signer: parse %s: encrypted PEM blocks are not supported", what)
	}
	return block, nil
}

// ParsePrivateKey parses a merchant RSA private key in PEM, PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
// ("PRIVATE KEY"). It rejects other key types and keys shorter than 2048 bits.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	const what = "private key"
	block, err := decodePEM(what, pemBytes)
	if err != nil {
		return nil, err
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case pemPKCS1Private:
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("signer: parse %s (PKCS#1): %w", what, err)
		}
	case pemPKCS8Private:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signer: parse %s (PKCS#8): %w", what, err)
		}
		var ok bool
		if key, ok = k.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("signer: parse %s: PKCS#8 holds a %T, want an RSA key", what, k)
		}
	default:
		return nil, fmt.Errorf("signer: parse %s: PEM block is %q, want %q or %q",
			what, block.Type, pemPKCS1Private, pemPKCS8Private)
	}
	if bits := key.N.BitLen(); bits < minRSABits {
		return nil, fmt.Errorf("signer: parse %s: RSA key has %d bits, want at least %d", what, bits, minRSABits)
	}
	key.Precompute()
	return key, nil
}

// ParsePublicKey parses an RSA public key in PEM: SPKI ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY").
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	const what = "public key"
	block, err := decodePEM(what, pemBytes)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case pemSPKIPublic:
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signer: parse %s (SPKI): %w", what, err)
		}
		key, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("signer: parse %s: SPKI holds a %T, want an RSA key", what, k)
		}
		return key, nil
	case pemPKCS1Public:
		key, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signer: parse %s (PKCS#1): %w", what, err)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("signer: parse %s: PEM block is %q, want %q or %q",
			what, block.Type, pemSPKIPublic, pemPKCS1Public)
	}
}

// ParseCertificate parses one PEM X.509 certificate with an RSA key and returns it with its serial
// as WeChat Pay writes it: upper-case hex of the serial number.
func ParseCertificate(pemBytes []byte) (*x509.Certificate, string, error) {
	const what = "certificate"
	block, err := decodePEM(what, pemBytes)
	if err != nil {
		return nil, "", err
	}
	if block.Type != pemCertificate {
		return nil, "", fmt.Errorf("signer: parse %s: PEM block is %q, want %q", what, block.Type, pemCertificate)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("signer: parse %s: %w", what, err)
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return nil, "", fmt.Errorf("signer: parse %s: it holds a %T, want an RSA key", what, c.PublicKey)
	}
	return c, CertificateSerial(c), nil
}

// CertificateSerial returns a certificate's serial as WeChat Pay writes it (upper-case hex).
func CertificateSerial(c *x509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return ""
	}
	// Like the official Go and Java SDKs: no "0x", no zero padding to whole bytes.
	return strings.ToUpper(c.SerialNumber.Text(16))
}

// AppendRequestMessage appends the APIv3 request message:
// METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n, where canonicalURL is path[?query] as sent.
func AppendRequestMessage(dst []byte, method, canonicalURL, timestamp, nonce string, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = append(dst, canonicalURL...)
	dst = append(dst, '\n')
	return AppendResponseMessage(dst, timestamp, nonce, body)
}

// AppendResponseMessage appends the message of a response or notification:
// TIMESTAMP\nNONCE\nBODY\n over the raw body.
func AppendResponseMessage(dst []byte, timestamp, nonce string, body []byte) []byte {
	dst = append(dst, timestamp...)
	dst = append(dst, '\n')
	dst = append(dst, nonce...)
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, '\n')
}

// AppendPaySignMessage appends the wx.requestPayment (APIv3) message: appId\ntimeStamp\nnonceStr\npackage\n.
func AppendPaySignMessage(dst []byte, appID, timeStamp, nonceStr, pkg string) []byte {
	for _, s := range [...]string{appID, timeStamp, nonceStr, pkg} {
		dst = append(dst, s...)
		dst = append(dst, '\n')
	}
	return dst
}

// Authorization field names, in the order AppendAuthorization writes them.
const (
	authMchID     = "mchid"
	authNonceStr  = "nonce_str"
	authSignature = "signature"
	authTimestamp = "timestamp"
	authSerialNo  = "serial_no"
)

// AppendAuthorization appends the Authorization header value:
// WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",signature="..",timestamp="..",serial_no="..".
// The signature is the base64 text, as a string or as the bytes a signer appended.
func AppendAuthorization[S string | []byte](dst []byte, mchID, nonce string, signature S, timestamp, serialNo string) []byte {
	dst = append(dst, AuthScheme...)
	dst = append(dst, ' ')
	dst = appendAuthField(dst, authMchID, mchID)
	dst = append(dst, ',')
	dst = appendAuthField(dst, authNonceStr, nonce)
	dst = append(dst, ',')
	dst = appendAuthField(dst, authSignature, signature)
	dst = append(dst, ',')
	dst = appendAuthField(dst, authTimestamp, timestamp)
	dst = append(dst, ',')
	return appendAuthField(dst, authSerialNo, serialNo)
}

func appendAuthField[S string | []byte](dst []byte, name string, value S) []byte {
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	dst = append(dst, value...)
	return append(dst, '"')
}

// Authorization is a parsed APIv3 Authorization header.
type Authorization struct {
	MchID, NonceStr, Signature, Timestamp, SerialNo string
}

// ParseAuthorization parses an Authorization header value (any order of the five fields); it
// fails on a wrong scheme, a missing or repeated field, or unquoted values.
func ParseAuthorization(v string) (Authorization, error) {
	// The layout is strict, as the official troubleshooting page states it: the scheme, one space,
	// then key="value" pairs joined by "," with no spaces. Unknown fields and empty values are
	// rejected too; the errors quote field names, never values.
	var a Authorization
	rest, ok := strings.CutPrefix(v, AuthScheme+" ")
	if !ok {
		return a, errors.New("signer: parse Authorization: scheme is not " + AuthScheme)
	}
	var seen [5]bool
	for {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			return a, errors.New("signer: parse Authorization: expected name=\"value\"")
		}
		var field *string
		var idx int
		switch name {
		case authMchID:
			field, idx = &a.MchID, 0
		case authNonceStr:
			field, idx = &a.NonceStr, 1
		case authSignature:
			field, idx = &a.Signature, 2
		case authTimestamp:
			field, idx = &a.Timestamp, 3
		case authSerialNo:
			field, idx = &a.SerialNo, 4
		default:
			return a, fmt.Errorf("signer: parse Authorization: unknown field %q", truncateForError(name))
		}
		if seen[idx] {
			return a, fmt.Errorf("signer: parse Authorization: field %s repeated", name)
		}
		seen[idx] = true
		if len(after) == 0 || after[0] != '"' {
			return a, fmt.Errorf("signer: parse Authorization: value of %s is not quoted", name)
		}
		value, after, ok := strings.Cut(after[1:], `"`)
		if !ok {
			return a, fmt.Errorf("signer: parse Authorization: value of %s has no closing quote", name)
		}
		if value == "" {
			return a, fmt.Errorf("signer: parse Authorization: value of %s is empty", name)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < 0x20 || c == 0x7f {
				return a, fmt.Errorf("signer: parse Authorization: value of %s holds a control character", name)
			}
		}
		*field = value
		if after == "" {
			break
		}
		if after[0] != ',' {
			return a, fmt.Errorf("signer: parse Authorization: unexpected text after %s", name)
		}
		rest = after[1:]
	}
	for i, name := range [...]string{authMchID, authNonceStr, authSignature, authTimestamp, authSerialNo} {
		if !seen[i] {
			return a, fmt.Errorf("signer: parse Authorization: field %s missing", name)
		}
	}
	return a, nil
}

// truncateForError shortens attacker-controlled text quoted in an error.
func truncateForError(s string) string {
	const limit = 32
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}

// RSASigner makes SHA256withRSA (PKCS#1 v1.5) signatures, base64-encoded, with a merchant private
// key. It is safe for concurrent use.
type RSASigner struct {
	key *rsa.PrivateKey
}

// NewRSASigner returns a signer for key (precomputed values are computed once).
func NewRSASigner(key *rsa.PrivateKey) *RSASigner {
	if key != nil {
		key.Precompute()
	}
	return &RSASigner{key: key}
}

// AppendSign appends the standard-base64 signature of message to dst.
func (s *RSASigner) AppendSign(dst, message []byte) ([]byte, error) {
	if s == nil || s.key == nil {
		return dst, errors.New("signer: RSA sign: no private key")
	}
	digest := sha256.Sum256(message)
	// PKCS#1 v1.5 signing is deterministic; the random argument is ignored.
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return dst, fmt.Errorf("signer: RSA sign: %w", err)
	}
	return base64.StdEncoding.AppendEncode(dst, sig), nil
}

// PublicKey returns the signer's public key.
func (s *RSASigner) PublicKey() *rsa.PublicKey {
	if s == nil || s.key == nil {
		return nil
	}
	return &s.key.PublicKey
}

// RSAVerifier verifies SHA256withRSA signatures with one public key. It is safe for concurrent use.
type RSAVerifier struct {
	key *rsa.PublicKey
}

// NewRSAVerifier returns a verifier for key.
func NewRSAVerifier(key *rsa.PublicKey) *RSAVerifier { return &RSAVerifier{key: key} }

// Verify checks the base64 signature of message. Probe signatures fail with ErrSignatureProbe,
// every other failure (bad base64 included) with ErrSignatureInvalid; it never panics.
func (v *RSAVerifier) Verify(message []byte, signature string) error {
	return verifyRSA(v, message, signature)
}

// VerifyBytes is Verify for a signature held as bytes (a header value), without converting it.
func (v *RSAVerifier) VerifyBytes(message, signature []byte) error {
	return verifyRSA(v, message, signature)
}

// verifyRSA is Verify and VerifyBytes.
func verifyRSA[S string | []byte](v *RSAVerifier, message []byte, signature S) error {
	if len(signature) >= len(SignTestPrefix) && string(signature[:len(SignTestPrefix)]) == SignTestPrefix {
		return fmt.Errorf("signer: %w: %w", ErrSignatureProbe, ErrSignatureInvalid)
	}
	if v == nil || v.key == nil || v.key.N == nil {
		return fmt.Errorf("signer: %w: no public key", ErrSignatureInvalid)
	}
	// A valid signature is exactly the modulus size; refuse to decode anything longer.
	if len(signature) != base64.StdEncoding.EncodedLen(v.key.Size()) {
		return fmt.Errorf("signer: %w: signature has %d base64 characters, want %d",
			ErrSignatureInvalid, len(signature), base64.StdEncoding.EncodedLen(v.key.Size()))
	}
	// Decode on the stack (room for RSA-4096); larger keys fall back to the heap.
	var sigBuf [520]byte
	sig := sigBuf[:]
	if n := base64.StdEncoding.DecodedLen(len(signature)); n > len(sig) {
		sig = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(sig, []byte(signature))
	if err != nil {
		return fmt.Errorf("signer: %w: bad base64", ErrSignatureInvalid)
	}
	sig = sig[:n]
	digest := sha256.Sum256(message)
	if err := rsa.VerifyPKCS1v15(v.key, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("signer: %w", ErrSignatureInvalid)
	}
	return nil
}
