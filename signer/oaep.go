package signer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" // WeChat Pay's sensitive-field OAEP uses SHA-1 (wechatpay.md §5); not a signature
	"encoding/base64"
	"errors"
	"fmt"
)

// Sensitive-field encryption of WeChat Pay APIv3 (docs/protocol/wechatpay.md §5): RSAES-OAEP with
// SHA-1 as both the OAEP hash and the MGF1 hash, an empty label, the ciphertext in standard
// base64. Fields the merchant sends are encrypted with WeChat Pay's key (the public key or a
// platform certificate); fields WeChat Pay returns are encrypted with the merchant's key.

// oaepHashLen is the SHA-1 output size, which bounds the plaintext: k - 2*20 - 2 bytes.
const oaepHashLen = sha1.Size

var (
	// ErrPlaintextTooLong is returned when a value is longer than one OAEP block holds (214 bytes
	// with a 2048-bit key).
	ErrPlaintextTooLong = errors.New("value too long for RSA-OAEP")
	// ErrDecrypt is returned when a ciphertext is not base64 or does not decrypt with the key.
	ErrDecrypt = errors.New("ciphertext does not decrypt")
)

// MaxOAEPPlaintext returns the longest plaintext, in bytes, one OAEP block of pub holds.
func MaxOAEPPlaintext(pub *rsa.PublicKey) int {
	if pub == nil {
		return 0
	}
	return pub.Size() - 2*oaepHashLen - 2
}

// EncryptOAEP encrypts plaintext for pub with RSA-OAEP (SHA-1, MGF1-SHA-1, no label) and returns
// the standard-base64 ciphertext. Each call gives a different ciphertext (OAEP is randomized).
func EncryptOAEP(pub *rsa.PublicKey, plaintext []byte) (string, error) {
	if pub == nil {
		return "", errors.New("signer: RSA-OAEP encrypt: no public key")
	}
	if max := MaxOAEPPlaintext(pub); len(plaintext) > max {
		return "", fmt.Errorf("signer: RSA-OAEP encrypt: %w (%d bytes, at most %d)", ErrPlaintextTooLong, len(plaintext), max)
	}
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, plaintext, nil)
	if err != nil {
		return "", fmt.Errorf("signer: RSA-OAEP encrypt: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// DecryptOAEP decrypts a standard-base64 RSA-OAEP (SHA-1) ciphertext with key. Every failure
// wraps ErrDecrypt and says nothing of the key or the plaintext.
func DecryptOAEP(key *rsa.PrivateKey, ciphertext string) ([]byte, error) {
	if key == nil {
		return nil, errors.New("signer: RSA-OAEP decrypt: no private key")
	}
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("signer: RSA-OAEP decrypt: %w (not standard base64)", ErrDecrypt)
	}
	if len(ct) != key.Size() {
		return nil, fmt.Errorf("signer: RSA-OAEP decrypt: %w (%d bytes, the key's blocks are %d)", ErrDecrypt, len(ct), key.Size())
	}
	pt, err := rsa.DecryptOAEP(sha1.New(), nil, key, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("signer: RSA-OAEP decrypt: %w (wrong key or damaged ciphertext)", ErrDecrypt)
	}
	return pt, nil
}

// DecryptOAEP decrypts a sensitive field WeChat Pay encrypted for this signer's key (see the
// package function DecryptOAEP).
func (s *RSASigner) DecryptOAEP(ciphertext string) ([]byte, error) {
	if s == nil {
		return nil, errors.New("signer: RSA-OAEP decrypt: no private key")
	}
	return DecryptOAEP(s.key, ciphertext)
}

// PublicKey returns the verifier's public key: the key sensitive fields sent to WeChat Pay are
// encrypted with.
func (v *RSAVerifier) PublicKey() *rsa.PublicKey {
	if v == nil {
		return nil
	}
	return v.key
}
