// Package signer holds wxgate's pure cryptography: the messages WeChat signs and the signatures over
// them. It does no I/O, reads no configuration and imports nothing else of wxgate; clocks and
// randomness are passed in by the caller.
package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// HMACKey is an HMAC-SHA256 key whose keyed states are built once and pooled, so signing with it
// allocates nothing. It is safe for concurrent use.
type HMACKey struct {
	pool sync.Pool
}

// keyedState is one pooled HMAC-SHA256 state with scratch space for the digest.
type keyedState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewHMACKey returns an HMAC-SHA256 key. The key bytes are copied.
func NewHMACKey(key []byte) *HMACKey {
	own := append([]byte(nil), key...)
	k := &HMACKey{}
	k.pool.New = func() any { return &keyedState{mac: hmac.New(sha256.New, own)} }
	return k
}

// AppendHex appends the lowercase hex HMAC of the concatenation prefix + sep + msg to dst.
// Either prefix or sep may be empty.
func (k *HMACKey) AppendHex(dst []byte, prefix, sep string, msg []byte) []byte {
	st := k.pool.Get().(*keyedState)
	st.mac.Reset()
	writeString(st.mac, prefix)
	writeString(st.mac, sep)
	st.mac.Write(msg)
	sum := st.mac.Sum(st.sum[:0])
	dst = hex.AppendEncode(dst, sum)
	k.pool.Put(st)
	return dst
}

// VerifyHex reports whether sig is the lowercase hex HMAC of prefix + sep + msg, in constant time.
func (k *HMACKey) VerifyHex(sig []byte, prefix, sep string, msg []byte) bool {
	var buf [2 * sha256.Size]byte
	want := k.AppendHex(buf[:0], prefix, sep, msg)
	return hmac.Equal(want, sig)
}

// rawState is a pooled pair of SHA-256 states used to compute HMACs under keys that change on every
// call (session keys), without allocating.
type rawState struct {
	inner, outer hash.Hash
	key          [sha256.BlockSize]byte // the key, zero-padded (hashed first when longer than a block)
	pad          [sha256.BlockSize]byte
	sum          [sha256.Size]byte
}

var rawPool = sync.Pool{New: func() any {
	return &rawState{inner: sha256.New(), outer: sha256.New()}
}}

// AppendHMACHex appends the lowercase hex HMAC-SHA256 of msg under key to dst. It is the one-shot
// form for keys used once (a session key); keys used repeatedly belong in an HMACKey. Keys up to
// 64 bytes (every WeChat session key) cost no allocation.
func AppendHMACHex[K string | []byte](dst []byte, key K, msg []byte) []byte {
	st := rawPool.Get().(*rawState)
	st.key = [sha256.BlockSize]byte{}
	if len(key) > sha256.BlockSize {
		// Hashed through the state's own buffer: key never reaches the hash interface, so a
		// caller's key on the stack stays there.
		st.inner.Reset()
		for i := 0; i < len(key); i += len(st.pad) {
			n := copy(st.pad[:], key[i:])
			st.inner.Write(st.pad[:n])
		}
		st.inner.Sum(st.key[:0])
	} else {
		copy(st.key[:], key)
	}
	st.inner.Reset()
	st.inner.Write(st.xorPad(0x36))
	st.inner.Write(msg)
	inner := st.inner.Sum(st.sum[:0])
	st.outer.Reset()
	st.outer.Write(st.xorPad(0x5c))
	st.outer.Write(inner)
	dst = hex.AppendEncode(dst, st.outer.Sum(st.sum[:0]))
	rawPool.Put(st)
	return dst
}

// xorPad fills and returns the HMAC pad: the padded key xor b.
func (st *rawState) xorPad(b byte) []byte {
	for i, c := range st.key {
		st.pad[i] = c ^ b
	}
	return st.pad[:]
}

// scratch is a pooled byte buffer used to hand strings to hash writers without allocating.
type scratch struct{ b []byte }

var scratchPool = sync.Pool{New: func() any { return &scratch{b: make([]byte, 0, 128)} }}

// writeString writes s to h without converting it to a fresh []byte.
func writeString(h hash.Hash, s string) {
	if s == "" {
		return
	}
	// Copied into a pooled buffer rather than handed to a WriteString method: passing s to an
	// interface's method would make it, and the caller's conversions to it, escape to the heap.
	sc := scratchPool.Get().(*scratch)
	sc.b = append(sc.b[:0], s...)
	h.Write(sc.b)
	scratchPool.Put(sc)
}
