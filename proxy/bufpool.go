package proxy

import "sync"

// maxPooledBuf bounds the buffers kept in a pool: one grown past it by a large body is left to
// the garbage collector instead of being held for the next request.
const maxPooledBuf = 64 << 10

// bufPool pools byte buffers that start at 2 KiB (an event envelope, a decrypted push, the parts
// of a digest are well under that).
type bufPool struct{ p sync.Pool }

// get returns an empty buffer.
func (bp *bufPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 2048)
	return &b
}

// put empties b and keeps it for a later get, unless it grew past maxPooledBuf.
func (bp *bufPool) put(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		bp.p.Put(b)
	}
}
