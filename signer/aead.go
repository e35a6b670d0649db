package signer

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
)

// AEAD_AES_256_GCM with the APIv3 key (docs/protocol/wechatpay.md §3.3, §4.1).

const (
	aeadKeySize   = 32 // AES-256: the APIv3 key is 32 ASCII bytes
	aeadNonceSize = 12 // the standard GCM nonce; WeChat's nonces are 12 characters
	aeadTagSize   = 16
)

// AEADKey decrypts (and, for the emulator, encrypts) APIv3 resources. It is safe for concurrent use.
type AEADKey struct {
	aead cipher.AEAD
}

// NewAEADKey prepares an APIv3 key; it must be exactly 32 bytes.
func NewAEADKey(apiv3Key []byte) (*AEADKey, error) {
	if len(apiv3Key) != aeadKeySize {
		return nil, fmt.Errorf("signer: APIv3 key has %d bytes, want %d", len(apiv3Key), aeadKeySize)
	}
	block, err := aes.NewCipher(apiv3Key)
	if err != nil {
		return nil, fmt.Errorf("signer: APIv3 key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("signer: APIv3 key: %w", err)
	}
	return &AEADKey{aead: aead}, nil
}

// aeadScratch holds nonce, associated data and the decoded ciphertext of one Open, so that Open
// converts none of its string arguments to fresh byte slices.
type aeadScratch struct{ b []byte }

// maxPooledScratch bounds the buffers kept in aeadPool (a certificate is about 2 KiB).
const maxPooledScratch = 64 << 10

var aeadPool = sync.Pool{New: func() any { return &aeadScratch{b: make([]byte, 0, 1024)} }}

var errNoAEADKey = errors.New("signer: AEADKey not initialised (use NewAEADKey)")

// Open decrypts base64 ciphertext (tag last) with nonce and associated data as raw strings,
// appending the plaintext to dst. The nonce must be 12 bytes.
func (k *AEADKey) Open(dst []byte, nonce, associatedData, ciphertextB64 string) ([]byte, error) {
	return aeadOpen(k, dst, nonce, associatedData, ciphertextB64)
}

// OpenBytes is Open for arguments held as byte slices (read straight from a JSON body).
func (k *AEADKey) OpenBytes(dst, nonce, associatedData, ciphertextB64 []byte) ([]byte, error) {
	return aeadOpen(k, dst, nonce, associatedData, ciphertextB64)
}

func aeadOpen[T string | []byte](k *AEADKey, dst []byte, nonce, associatedData, ciphertextB64 T) ([]byte, error) {
	// On error dst is returned unchanged (its spare capacity may have been zeroed).
	if k == nil || k.aead == nil {
		return dst, errNoAEADKey
	}
	if len(nonce) != aeadNonceSize {
		return dst, fmt.Errorf("signer: AEAD open: nonce has %d bytes, want %d", len(nonce), aeadNonceSize)
	}
	if base64.StdEncoding.DecodedLen(len(ciphertextB64)) < aeadTagSize {
		return dst, errors.New("signer: AEAD open: ciphertext shorter than the tag")
	}
	sc := aeadPool.Get().(*aeadScratch)
	defer putAEADScratch(sc)
	b := append(sc.b[:0], nonce...)
	b = append(b, associatedData...)
	head := len(b)
	// Layout: nonce | associated data | room for the decoded ciphertext | base64 text.
	room := base64.StdEncoding.DecodedLen(len(ciphertextB64))
	b = append(b, make([]byte, room)...)
	b = append(b, ciphertextB64...)
	sc.b = b
	n, err := base64.StdEncoding.Decode(b[head:head+room], b[head+room:])
	if err != nil {
		return dst, fmt.Errorf("signer: AEAD open: ciphertext is not base64: %w", err)
	}
	if n < aeadTagSize {
		return dst, errors.New("signer: AEAD open: ciphertext shorter than the tag")
	}
	out, err := k.aead.Open(dst, b[:aeadNonceSize], b[head:head+n], b[aeadNonceSize:head])
	if err != nil {
		return dst, fmt.Errorf("signer: AEAD open: %w", err)
	}
	return out, nil
}

func putAEADScratch(sc *aeadScratch) {
	if cap(sc.b) <= maxPooledScratch {
		aeadPool.Put(sc)
	}
}

// Seal encrypts plaintext and returns the base64 ciphertext with the tag appended.
func (k *AEADKey) Seal(nonce, associatedData string, plaintext []byte) (string, error) {
	if k == nil || k.aead == nil {
		return "", errNoAEADKey
	}
	if len(nonce) != aeadNonceSize {
		return "", fmt.Errorf("signer: AEAD seal: nonce has %d bytes, want %d", len(nonce), aeadNonceSize)
	}
	sealed := k.aead.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return base64.StdEncoding.EncodeToString(sealed), nil
}
