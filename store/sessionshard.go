package store

import (
	"encoding/base64"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
)

// A shard stores records in insertion order in fixed-size chunks, so that growing never copies
// (or re-faults) the records already stored. Because every record of a Sessions gets
// the same TTL and a strictly increasing expiry, insertion order is also expiry order: both
// the expiry sweep and oldest-first eviction consume records from the head.
//
// index is an open-addressing hash table (linear probing) over the records. A slot holds
// tag<<24 | (record position + 1); 0 means empty. The tag is 8 more bits of the hash, so a
// probe rarely touches a record that does not match. A record that dies (replaced, deleted,
// expired, evicted) gets an empty key and its slot acts as a tombstone until the next rebuild,
// which compacts the records and rehashes the index.
const (
	slotPosBits    = 24
	slotPosMask    = 1<<slotPosBits - 1
	minIndexSize   = 16      // a power of two
	maxShardLive   = 1 << 22 // keeps positions (live + garbage) below 1<<24
	rebuildSlack   = 64      // dead records tolerated beyond the live count
	putSweepLimit  = 8       // expired records one Put removes from its shard
	maxSessionsCap = sessionShardCount * maxShardLive / 2
	chunkBits      = 8
	chunkSize      = 1 << chunkBits
	chunkMask      = chunkSize - 1
)

// recChunk holds chunkSize consecutive records (14 KiB).
type recChunk [chunkSize]sessionRec

// sessionRec is one stored session_key: 56 bytes plus the key string.
type sessionRec struct {
	key  string   // internal map key (see appendMapKey); "" once the record is dead
	text string   // the session_key as given, when it is not canonical base64 of 16 bytes
	exp  int64    // nanoseconds since Sessions.base; unique within a Sessions
	raw  [16]byte // the decoded session_key, when text is empty
}

func newSessionRec(sessionKey string) sessionRec {
	var r sessionRec
	// Strict decoding rejects non-zero padding bits, so a 24-character key without CR or LF
	// (which the decoder skips) that decodes to 16 bytes re-encodes to exactly the same text.
	if len(sessionKey) == base64.StdEncoding.EncodedLen(len(r.raw)) &&
		strings.IndexByte(sessionKey, '\r') < 0 && strings.IndexByte(sessionKey, '\n') < 0 {
		var buf [18]byte // DecodedLen(24): e.g. 23 characters and "=" decode to 17 bytes
		n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(sessionKey))
		if err == nil && n == len(r.raw) {
			copy(r.raw[:], buf[:])
			return r
		}
	}
	return sessionRec{text: sessionKey}
}

type sessionShard struct {
	mu     sync.Mutex
	seed   maphash.Seed
	index  []uint32
	used   int // non-empty slots in index
	chunks []*recChunk
	n      int // records appended since the last rebuild; positions are 0..n-1
	head   int // records before head are dead
	live   int
	oldest atomic.Int64 // expiry of the head record; MaxInt64 when empty
	_      [64]byte     // keep shards on separate cache lines
}

func (sh *sessionShard) init(seed maphash.Seed) {
	sh.seed = seed
	sh.index = make([]uint32, minIndexSize)
	sh.oldest.Store(math.MaxInt64)
}

// rec returns the record at position pos.
func (sh *sessionShard) rec(pos int) *sessionRec {
	return &sh.chunks[pos>>chunkBits][pos&chunkMask]
}

// appendLocked stores r at position n and returns that position.
func (sh *sessionShard) appendLocked(r *sessionRec) int {
	pos := sh.n
	if pos>>chunkBits == len(sh.chunks) {
		sh.chunks = append(sh.chunks, new(recChunk))
	}
	*sh.rec(pos) = *r
	sh.n++
	return pos
}

// slotTag takes hash bits 32..39: the index uses the low bits, the shard the top ones.
func slotTag(h uint64) uint32 {
	return uint32(h>>32) << slotPosBits
}

// find returns the slot of map key k (hash h) and its record position, or the empty slot
// that ends its probe sequence and -1.
func (sh *sessionShard) find(k []byte, h uint64) (slot, pos int) {
	mask := len(sh.index) - 1
	tag := slotTag(h)
	for slot = int(h) & mask; ; slot = (slot + 1) & mask {
		s := sh.index[slot]
		if s == 0 {
			return slot, -1
		}
		if s&^slotPosMask == tag {
			pos = int(s&slotPosMask) - 1
			if sh.rec(pos).key == string(k) {
				return slot, pos
			}
		}
	}
}

// putLocked stores r (whose key is the map key k with hash h) and returns how many live
// records were added (1, or 0 for a replacement).
func (sh *sessionShard) putLocked(k []byte, h uint64, r *sessionRec) int {
	if (sh.used+1)*4 > len(sh.index)*3 || sh.n-sh.live > sh.live+rebuildSlack {
		sh.rebuild()
	}
	slot, pos := sh.find(k, h)
	added := 1
	if pos >= 0 {
		sh.killLocked(pos) // the slot is reused for the new record
		added = 0
	} else {
		sh.used++
	}
	sh.index[slot] = slotTag(h) | uint32(sh.appendLocked(r)+1)
	sh.live++
	sh.trimLocked()
	return added
}

// getLocked returns the live record of k, killing it if it expired; removed reports that.
func (sh *sessionShard) getLocked(k []byte, h uint64, now int64) (r sessionRec, ok, removed bool) {
	_, pos := sh.find(k, h)
	if pos < 0 {
		return sessionRec{}, false, false
	}
	r = *sh.rec(pos)
	if r.exp <= now {
		sh.killLocked(pos)
		return sessionRec{}, false, true
	}
	return r, true, false
}

// deleteLocked removes k and reports whether it was present.
func (sh *sessionShard) deleteLocked(k []byte, h uint64) bool {
	_, pos := sh.find(k, h)
	if pos < 0 {
		return false
	}
	sh.killLocked(pos)
	return true
}

// sweepLocked removes up to limit expired records from the head and returns how many.
func (sh *sessionShard) sweepLocked(now int64, limit int) int {
	n := 0
	for n < limit && sh.head < sh.n && sh.rec(sh.head).exp <= now {
		sh.killLocked(sh.head)
		n++
	}
	return n
}

// popOldestLocked removes the head record; false when the shard is empty.
func (sh *sessionShard) popOldestLocked() bool {
	if sh.head == sh.n {
		return false
	}
	sh.killLocked(sh.head)
	return true
}

// killLocked marks the live record at pos dead, releasing its strings.
func (sh *sessionShard) killLocked(pos int) {
	*sh.rec(pos) = sessionRec{}
	sh.live--
	if pos == sh.head {
		sh.trimLocked()
	}
}

// trimLocked advances head past dead records and publishes the oldest expiry.
func (sh *sessionShard) trimLocked() {
	for sh.head < sh.n && sh.rec(sh.head).key == "" {
		sh.head++
	}
	if sh.head == sh.n {
		sh.oldest.Store(math.MaxInt64)
		return
	}
	sh.oldest.Store(sh.rec(sh.head).exp)
}

// rebuild drops dead records, keeping order, frees the chunks no longer needed and rehashes
// the index so that it is at most 3/8 full.
func (sh *sessionShard) rebuild() {
	n := 0
	for i := sh.head; i < sh.n; i++ {
		if r := sh.rec(i); r.key != "" {
			if i != n {
				*sh.rec(n), *r = *r, sessionRec{}
			}
			n++
		}
	}
	keep := (n + chunkSize - 1) >> chunkBits
	clear(sh.chunks[keep:])
	sh.chunks, sh.n, sh.head = sh.chunks[:keep], n, 0
	if cap(sh.chunks) > 2*keep+16 {
		sh.chunks = append([]*recChunk(nil), sh.chunks...)
	}
	size := minIndexSize
	for size*3 < (n+1)*8 {
		size *= 2
	}
	if size == len(sh.index) {
		clear(sh.index)
	} else {
		sh.index = make([]uint32, size)
	}
	mask := size - 1
	for i := range n {
		h := maphash.String(sh.seed, sh.rec(i).key)
		slot := int(h) & mask
		for sh.index[slot] != 0 {
			slot = (slot + 1) & mask
		}
		sh.index[slot] = slotTag(h) | uint32(i+1)
	}
	sh.used = n
	sh.trimLocked()
}
