package proxy

import (
	"crypto/rand"
	"strconv"
)

const nonceAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// appendNonce appends a 32-character random nonce of [0-9A-Z] (crypto/rand) to dst.
func appendNonce(dst []byte) []byte {
	var raw [32]byte
	rand.Read(raw[:])
	for _, b := range raw {
		dst = append(dst, nonceAlphabet[int(b)%len(nonceAlphabet)])
	}
	return dst
}

// unixString formats seconds since the epoch.
func unixString(sec int64) string { return strconv.FormatInt(sec, 10) }
