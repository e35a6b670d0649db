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
	"sync"
)

// Mini Program message push (消息推送) signatures and safe-mode crypto
// (docs/protocol/message-push.md §2-§4).

const (
	pushKeyChars  = 43 // EncodingAESKey length
	pushBlockSize = 32 // the PKCS#7 block of message push: pads are 1..32 bytes
	pushHeader    = 16 + 4
)

// PushSignature returns the lowercase hex SHA-1 of the lexicographically sorted, concatenated
// parts (token, timestamp, nonce[, encrypt]). AppendPushSignature and VerifyPushSignature do the
// same without allocating.
func PushSignature(parts ...string) string {
	var buf [2 * sha1.Size]byte
	return string(AppendPushSignature(buf[:0], parts...))
}

// AppendPushSignature appends PushSignature(parts...) to dst. It allocates nothing when dst has
// room for its 40 hex digits and there are at most four parts.
func AppendPushSignature[S string | []byte](dst []byte, parts ...S) []byte {
	var sortBuf [4]S
	sorted := append(sortBuf[:0], parts...) // never reorder the caller's slice
	slices.SortFunc(sorted, func(a, b S) int {
		switch {
		case string(a) < string(b):
			return -1
		case string(a) > string(b):
			return 1
		}
		return 0
	})
	// One SHA-1 over the parts joined in a pooled buffer: a hash state behind the hash.Hash
	// interface would make every part escape to the heap.
	joined := pushJoinPool.Get().(*[]byte)
	b := (*joined)[:0]
	for _, p := range sorted {
		b = append(b, p...)
	}
	sum := sha1.Sum(b)
	if cap(b) <= maxPooledScratch {
		*joined = b[:0]
		pushJoinPool.Put(joined)
	}
	return hex.AppendEncode(dst, sum[:])
}

// VerifyPushSignature reports whether sig is the push signature of parts (PushSignature), in
// constant time and without allocating for up to four parts.
func VerifyPushSignature[S string | []byte](sig []byte, parts ...S) bool {
	var buf [2 * sha1.Size]byte
	want := AppendPushSignature(buf[:0], parts...)
	return subtle.ConstantTimeCompare(sig, want) == 1
}

// pushJoinPool holds the buffers AppendPushSignature joins its parts in (a push's Encrypt is
// well under 2 KiB).
var pushJoinPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// PushCrypter does WeChat message-push safe mode: AES-256-CBC, key = base64(EncodingAESKey+"="), IV = key[:16], PKCS#7 with block size 32.
// It is safe for concurrent use.
type PushCrypter struct {
	block cipher.Block
	iv    [aes.BlockSize]byte
	// decrypters holds CBC decrypters of block (resetCBC) for reuse: a new one costs an allocation.
	decrypters sync.Pool
}

// resetCBC is a CBC mode whose IV can be set again, as the standard library's are.
type resetCBC interface {
	cipher.BlockMode
	SetIV(iv []byte)
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
// panics. The caller must check that the appid is its own. AppendDecrypt does the same without
// allocating.
func (c *PushCrypter) Decrypt(encryptB64 string) (msg []byte, appID string, err error) {
	_, _, msg, app, err := c.appendDecrypt(nil, encryptB64)
	return msg, string(app), err
}

// AppendDecrypt is Decrypt into the caller's buffer, without allocating when dst has room: it
// decodes and decrypts Encrypt in dst's spare capacity, growing dst only when it is too small.
// buf is dst followed by the decrypted frame; msg and appID are sub-slices of buf, valid until
// buf is reused. On error, msg and appID are nil and buf is dst (perhaps grown), so buf[:0] can
// be kept for the next call either way. The caller must check that the appid is its own.
func (c *PushCrypter) AppendDecrypt(dst []byte, encryptB64 string) (buf, msg, appID []byte, err error) {
	buf, _, msg, appID, err = c.appendDecrypt(dst, encryptB64)
	return buf, msg, appID, err
}

// decrypt is Decrypt that also returns the random prefix.
func (c *PushCrypter) decrypt(encryptB64 string) (random []byte, msg []byte, appID string, err error) {
	_, random, msg, app, err := c.appendDecrypt(nil, encryptB64)
	return random, msg, string(app), err
}

// appendDecrypt is AppendDecrypt that also returns the random prefix: the one implementation of
// Decrypt, AppendDecrypt and decrypt.
func (c *PushCrypter) appendDecrypt(dst []byte, encryptB64 string) (buf, random, msg, appID []byte, err error) {
	if c == nil || c.block == nil {
		return dst, nil, nil, nil, errNoPushCrypter
	}
	start := len(dst)
	buf = slices.Grow(dst, base64.StdEncoding.DecodedLen(len(encryptB64)))
	n, err := base64.StdEncoding.Decode(buf[start:cap(buf)], []byte(encryptB64))
	if err != nil {
		return buf, nil, nil, nil, fmt.Errorf("signer: push decrypt: Encrypt is not base64: %w", err)
	}
	data := buf[start : start+n]
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return buf, nil, nil, nil, fmt.Errorf("signer: push decrypt: ciphertext length %d is not a positive multiple of %d", len(data), aes.BlockSize)
	}
	c.cbcDecrypt(data)
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
		clear(data) // leave no half-checked plaintext in the caller's buffer
		return buf, nil, nil, nil, fmt.Errorf("signer: push decrypt: %w", err)
	}
	return buf[:start+n], plain[:16:16], plain[pushHeader:end:end], plain[end:len(plain):len(plain)], nil
}

// cbcDecrypt decrypts data (whole blocks) in place with the key and IV of c, reusing a pooled
// decrypter when it has SetIV (the standard library's do, Go 1.26's included), so that it
// allocates nothing; a decrypter without SetIV is used once and dropped.
func (c *PushCrypter) cbcDecrypt(data []byte) {
	if m, ok := c.decrypters.Get().(resetCBC); ok {
		m.SetIV(c.iv[:])
		m.CryptBlocks(data, data)
		c.decrypters.Put(m)
		return
	}
	m := cipher.NewCBCDecrypter(c.block, c.iv[:])
	m.CryptBlocks(data, data)
	if r, ok := m.(resetCBC); ok {
		c.decrypters.Put(r)
	}
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
