package signer

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"
)

// WeChat Pay APIv2 (legacy XML) signing (docs/protocol/wechatpay.md §7, §8).

// APIv2 sign types.
const (
	V2SignMD5        = "MD5"
	V2SignHMACSHA256 = "HMAC-SHA256"
)

// Param is one APIv2 parameter.
type Param struct {
	Key, Value string
}

// V2Key is a merchant's APIv2 key, ready to sign. It is safe for concurrent use.
type V2Key struct {
	key    string       // the APIv2 key, appended to stringA as "&key=" + key
	hmac   *HMACKey     // HMAC-SHA256 keyed with key
	refund cipher.Block // AES-256 keyed with the lower-case hex MD5 of key (refund req_info)
}

// NewV2Key prepares an APIv2 key.
func NewV2Key(apiKey string) *V2Key {
	sum := md5.Sum([]byte(apiKey))
	var aesKey [2 * md5.Size]byte // 32 ASCII bytes: AES-256
	hex.Encode(aesKey[:], sum[:])
	block, err := aes.NewCipher(aesKey[:])
	if err != nil {
		panic("signer: AES-256 rejected a 32-byte key: " + err.Error()) // unreachable
	}
	return &V2Key{key: apiKey, hmac: NewHMACKey([]byte(apiKey)), refund: block}
}

var errNoV2Key = errors.New("signer: V2Key not initialised (use NewV2Key)")

// paramSign and paramSignType are the APIv2 parameters the sign is carried in and chosen by.
const (
	paramSign     = "sign"
	paramSignType = "sign_type"
)

// sortParams sorts params by key in byte order, keeping the order of equal keys.
func sortParams(params []Param) {
	slices.SortStableFunc(params, func(a, b Param) int { return cmp.Compare(a.Key, b.Key) })
}

// AppendStringA appends the sorted "k1=v1&k2=v2" string of params, dropping empty values and the
// "sign" parameter. params is sorted in place.
func AppendStringA(dst []byte, params []Param) []byte {
	sortParams(params)
	return appendSortedStringA(dst, params)
}

// appendSortedStringA is AppendStringA over params already sorted.
func appendSortedStringA(dst []byte, params []Param) []byte {
	first := true
	for _, p := range params {
		if p.Value == "" || p.Key == paramSign {
			continue
		}
		if !first {
			dst = append(dst, '&')
		}
		first = false
		dst = append(dst, p.Key...)
		dst = append(dst, '=')
		dst = append(dst, p.Value...)
	}
	return dst
}

// md5State is one pooled MD5 state with scratch space for the digest.
type md5State struct {
	h   hash.Hash
	sum [md5.Size]byte
}

var md5Pool = sync.Pool{New: func() any { return &md5State{h: md5.New()} }}

// AppendSign appends the upper-case hex sign of params for signType (V2SignMD5 or
// V2SignHMACSHA256; "" means MD5): over stringA + "&key=" + API key. params is sorted in place.
func (k *V2Key) AppendSign(dst []byte, signType string, params []Param) ([]byte, error) {
	if k == nil || k.hmac == nil {
		return dst, errNoV2Key
	}
	switch signType {
	case "", V2SignMD5, V2SignHMACSHA256:
	default:
		return dst, fmt.Errorf("signer: APIv2 sign: unknown sign type %q", truncateForError(signType))
	}
	sortParams(params)
	return k.appendSortedSign(dst, signType, params), nil
}

// appendSortedSign appends the sign of params, already sorted, for a known signType.
func (k *V2Key) appendSortedSign(dst []byte, signType string, params []Param) []byte {
	sc := scratchPool.Get().(*scratch)
	sc.b = appendSortedStringA(sc.b[:0], params)
	sc.b = append(sc.b, "&key="...)
	sc.b = append(sc.b, k.key...)
	if signType == V2SignHMACSHA256 {
		// The HMAC message still ends in "&key=" + key (docs/protocol/wechatpay.md §7.1 step 5).
		n := len(dst)
		dst = k.hmac.AppendHex(dst, "", "", sc.b)
		upperHex(dst[n:])
	} else {
		st := md5Pool.Get().(*md5State)
		st.h.Reset()
		st.h.Write(sc.b)
		dst = appendUpperHex(dst, st.h.Sum(st.sum[:0]))
		md5Pool.Put(st)
	}
	clear(sc.b) // it held the API key
	scratchPool.Put(sc)
	return dst
}

const upperHexDigits = "0123456789ABCDEF"

func appendUpperHex(dst, src []byte) []byte {
	for _, c := range src {
		dst = append(dst, upperHexDigits[c>>4], upperHexDigits[c&0x0f])
	}
	return dst
}

// upperHex turns lower-case hex digits in b to upper case, in place.
func upperHex(b []byte) {
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - ('a' - 'A')
		}
	}
}

// paramScratch is a pooled copy of the params being verified, so Verify sorts without touching
// (or allocating a copy of) the caller's slice.
type paramScratch struct{ p []Param }

var paramPool = sync.Pool{New: func() any { return &paramScratch{p: make([]Param, 0, 64)} }}

// Verify checks the "sign" among params with signType (or, when signType is "", the sign_type
// parameter, else MD5), in constant time.
func (k *V2Key) Verify(signType string, params []Param) error {
	// params itself is left as it is; repeated parameter names are rejected (a parser should
	// never produce them, and they make "the" sign or sign_type ambiguous).
	if k == nil || k.hmac == nil {
		return errNoV2Key
	}
	if signType == "" {
		signType, _ = ParamValue(params, paramSignType)
	}
	switch signType {
	case "":
		signType = V2SignMD5
	case V2SignMD5, V2SignHMACSHA256:
	default:
		return fmt.Errorf("signer: APIv2 verify: unknown sign type %q", truncateForError(signType))
	}
	sign, ok := ParamValue(params, paramSign)
	if !ok || sign == "" {
		return errors.New("signer: APIv2 verify: no sign parameter")
	}
	ps := paramPool.Get().(*paramScratch)
	defer func() {
		clear(ps.p)
		ps.p = ps.p[:0]
		paramPool.Put(ps)
	}()
	ps.p = append(ps.p[:0], params...)
	sortParams(ps.p)
	for i := 1; i < len(ps.p); i++ {
		if ps.p[i].Key == ps.p[i-1].Key {
			return fmt.Errorf("signer: APIv2 verify: parameter %q repeated", truncateForError(ps.p[i].Key))
		}
	}
	var wantBuf, gotBuf [64]byte
	want := k.appendSortedSign(wantBuf[:0], signType, ps.p)
	if len(sign) != len(want) {
		return fmt.Errorf("signer: APIv2 verify: %w", ErrSignatureInvalid)
	}
	got := gotBuf[:copy(gotBuf[:], sign)]
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return fmt.Errorf("signer: APIv2 verify: %w", ErrSignatureInvalid)
	}
	return nil
}

// DecryptRefundInfo decrypts a refund notification's req_info: base64, AES-256-ECB with key =
// lower-case hex MD5 of the API key, PKCS#7.
func (k *V2Key) DecryptRefundInfo(reqInfoB64 string) ([]byte, error) {
	if k == nil || k.refund == nil {
		return nil, errNoV2Key
	}
	data, err := base64.StdEncoding.DecodeString(reqInfoB64)
	if err != nil {
		return nil, fmt.Errorf("signer: refund req_info: not base64: %w", err)
	}
	plain, err := ecbDecrypt(k.refund, data)
	if err != nil {
		return nil, fmt.Errorf("signer: refund req_info: %w", err)
	}
	return plain, nil
}

// EncryptRefundInfo is the inverse of DecryptRefundInfo (for the emulator).
func (k *V2Key) EncryptRefundInfo(plaintext []byte) string {
	if k == nil || k.refund == nil {
		panic(errNoV2Key.Error())
	}
	return base64.StdEncoding.EncodeToString(ecbEncrypt(k.refund, plaintext))
}

// ecbEncrypt returns plaintext PKCS#7-padded and encrypted block by block (ECB) with b.
func ecbEncrypt(b cipher.Block, plaintext []byte) []byte {
	bs := b.BlockSize()
	out := append(make([]byte, 0, len(plaintext)+bs), plaintext...)
	out = appendPKCS7Padding(out, bs)
	for i := 0; i < len(out); i += bs {
		b.Encrypt(out[i:i+bs], out[i:i+bs])
	}
	return out
}

// ecbDecrypt decrypts data block by block (ECB) with b, in place, and strips its PKCS#7 padding.
func ecbDecrypt(b cipher.Block, data []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, fmt.Errorf("ciphertext length %d is not a positive multiple of %d", len(data), bs)
	}
	for i := 0; i < len(data); i += bs {
		b.Decrypt(data[i:i+bs], data[i:i+bs])
	}
	return pkcs7Unpad(data, bs)
}

// appendPKCS7Padding appends the PKCS#7 padding of b for blockSize (at most 255): 1..blockSize
// bytes, each holding the pad length, bringing len(b) to a multiple of blockSize.
func appendPKCS7Padding(b []byte, blockSize int) []byte {
	n := blockSize - len(b)%blockSize
	for range n {
		b = append(b, byte(n))
	}
	return b
}

var errBadPadding = errors.New("bad PKCS#7 padding")

// pkcs7Unpad strips PKCS#7 padding for blockSize (at most 255) from data. Every pad byte is
// checked.
func pkcs7Unpad(data []byte, blockSize int) ([]byte, error) {
	if len(data) == 0 {
		return nil, errBadPadding
	}
	n := int(data[len(data)-1])
	if n == 0 || n > blockSize || n > len(data) {
		return nil, errBadPadding
	}
	var diff byte
	for _, c := range data[len(data)-n:] {
		diff |= c ^ byte(n)
	}
	if diff != 0 {
		return nil, errBadPadding
	}
	return data[:len(data)-n], nil
}

// ParamValue returns the value of key in params.
func ParamValue(params []Param, key string) (string, bool) {
	for _, p := range params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}
