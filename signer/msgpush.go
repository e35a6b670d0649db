package signer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// Mini Program message push (消息推送) signatures and safe-mode crypto
// (docs/protocol/message-push.md §2-§4).

const (
	pushKeyChars  = 43 // EncodingAESKey length
	pushBlockSize = 32 // the PKCS#7 block of message push: pads are 1..32 bytes
	pushHeader    = 16 + 4
)

// PushSignature returns the lowercase hex SHA-1 of the lexicographically sorted, concatenated
// parts (token, timestamp, nonce[, encrypt]).
func PushSignature(parts ...string) string {
	sorted := slices.Clone(parts) // never reorder the caller's slice
	slices.Sort(sorted)
	h := sha1.New()
	for _, p := range sorted {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyPushSignature reports whether sig is the push signature of parts (PushSignature), in
// constant time.
func VerifyPushSignature(sig []byte, parts ...string) bool {
	return subtle.ConstantTimeCompare(sig, []byte(PushSignature(parts...))) == 1
}

// PushCrypter does WeChat message-push safe mode: AES-256-CBC, key = base64(EncodingAESKey+"="), IV = key[:16], PKCS#7 with block size 32.
// It is safe for concurrent use.
type PushCrypter struct {
	block cipher.Block
	iv    [aes.BlockSize]byte
}

// NewPushCrypter prepares an EncodingAESKey: 43 base64 characters, which decode to a 32-byte key
// once "=" is appended.
func NewPushCrypter(encodingAESKey string) (*PushCrypter, error) {
	if len(encodingAESKey) != pushKeyChars {
		return nil, fmt.Errorf("signer: EncodingAESKey has %d characters, want %d", len(encodingAESKey), pushKeyChars)
	}
	// Not base64.StdEncoding.Strict(): the last character of a 43-character key carries bits the
	// decoder drops, and real keys (the official sample's "...ABCDEFG") leave them non-zero.
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("signer: EncodingAESKey is not valid base64") // never quote the key
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("signer: EncodingAESKey: %w", err)
	}
	c := &PushCrypter{block: block}
	copy(c.iv[:], key)
	return c, nil
}

var errNoPushCrypter = errors.New("signer: PushCrypter not initialised (use NewPushCrypter)")

// Decrypt returns the message and the trailing appid from base64 Encrypt (random16 + 4-byte
// big-endian len + msg + appid); strict checks (length, padding 1..32, msg_len bounds), never
// panics. The caller must check that the appid is its own.
func (c *PushCrypter) Decrypt(encryptB64 string) (msg []byte, appID string, err error) {
	_, msg, appID, err = c.decrypt(encryptB64)
	return msg, appID, err
}

// decrypt is Decrypt that also returns the random prefix.
func (c *PushCrypter) decrypt(encryptB64 string) (random, msg []byte, appID string, err error) {
	if c == nil || c.block == nil {
		return nil, nil, "", errNoPushCrypter
	}
	data, err := base64.StdEncoding.DecodeString(encryptB64)
	if err != nil {
		return nil, nil, "", fmt.Errorf("signer: push decrypt: Encrypt is not base64: %w", err)
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, nil, "", fmt.Errorf("signer: push decrypt: ciphertext length %d is not a positive multiple of %d", len(data), aes.BlockSize)
	}
	cipher.NewCBCDecrypter(c.block, c.iv[:]).CryptBlocks(data, data)
	plain, err := pkcs7Unpad(data, pushBlockSize)
	if err == nil && len(plain) < pushHeader {
		err = fmt.Errorf("plaintext has %d bytes, want at least %d", len(plain), pushHeader)
	}
	var end int
	if err == nil {
		msgLen := binary.BigEndian.Uint32(plain[16:pushHeader])
		if uint64(msgLen) > uint64(len(plain)-pushHeader) {
			err = fmt.Errorf("message length %d exceeds the %d bytes left", msgLen, len(plain)-pushHeader)
		}
		end = pushHeader + int(msgLen)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("signer: push decrypt: %w", err)
	}
	return plain[:16:16], plain[pushHeader:end:end], string(plain[end:]), nil
}

// Encrypt builds Encrypt for msg and appid with the caller's 16 random bytes.
func (c *PushCrypter) Encrypt(random16 [16]byte, msg []byte, appID string) string {
	if c == nil || c.block == nil {
		panic(errNoPushCrypter.Error())
	}
	n := pushHeader + len(msg) + len(appID)
	plain := make([]byte, 0, n+pushBlockSize)
	plain = append(plain, random16[:]...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, appID...)
	plain = appendPKCS7Padding(plain, pushBlockSize)
	cipher.NewCBCEncrypter(c.block, c.iv[:]).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain)
}
