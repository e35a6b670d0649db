package store

import (
	"encoding/base64"
	"encoding/binary"
	"hash/maphash"
	"math"
	"sync/atomic"
	"time"
)

// SessionOptions tunes a Sessions store. The zero value gives the defaults.
type SessionOptions struct {
	// TTL is how long a stored session_key is kept; default 72h.
	TTL time.Duration
	// MaxEntries caps the number of stored keys; when a Put exceeds it, the oldest entries
	// are evicted first. Default 2,000,000; values above 2^27 are lowered to 2^27.
	MaxEntries int
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
}

const (
	sessionShardBits  = 6
	sessionShardCount = 1 << sessionShardBits
)

// Sessions stores the latest session_key per (app, openid). It is a deterministic sharded map:
// a key is readable by any goroutine as soon as Put returns, and stays until its TTL passes,
// it is replaced or deleted, or MaxEntries is exceeded and it is among the oldest entries.
// (Puts racing on a full store may each evict one entry, so the store can end up to one
// entry per racing Put below MaxEntries.)
//
// Keys that are canonical base64 of 16 bytes (all keys WeChat issues) are stored decoded;
// about 130 bytes of heap per entry for WeChat-shaped appids, openids and keys.
// Expired entries are removed lazily: by Get, and a few at a time by every Put to the same
// shard; no background goroutine is used.
type Sessions struct {
	shards  [sessionShardCount]sessionShard
	seed    maphash.Seed
	clock   func() time.Time
	base    time.Time // expiries are nanoseconds since base (monotonic with time.Now)
	ttl     int64
	max     int64
	count   atomic.Int64
	lastExp atomic.Int64 // strictly increasing expiry: orders entries by insertion
}

// NewSessions returns an empty store.
func NewSessions(opts SessionOptions) *Sessions {
	s := &Sessions{
		seed:  maphash.MakeSeed(),
		clock: opts.Clock,
		ttl:   int64(opts.TTL),
		max:   int64(opts.MaxEntries),
	}
	if s.ttl <= 0 {
		s.ttl = int64(DefaultSessionTTL)
	}
	if s.max <= 0 {
		s.max = DefaultMaxSessions
	}
	s.max = min(s.max, maxSessionsCap)
	s.base = time.Now()
	if s.clock != nil {
		s.base = s.clock()
	}
	for i := range s.shards {
		s.shards[i].init(s.seed)
	}
	return s
}

// Put stores sessionKey for (app, openid), replacing any previous key and restarting the TTL.
// An empty sessionKey deletes the entry instead.
func (s *Sessions) Put(app, openid, sessionKey string) {
	if sessionKey == "" {
		s.Delete(app, openid)
		return
	}
	var buf [96]byte
	k := appendMapKey(buf[:0], app, openid)
	h := maphash.Bytes(s.seed, k)
	r := newSessionRec(sessionKey)
	r.key = string(k)
	now := s.now()
	sh := s.shardOf(h)
	sh.mu.Lock()
	// Taking the expiry under the shard lock keeps each shard's records sorted by expiry.
	r.exp = s.nextExp(now + s.ttl)
	added := sh.putLocked(k, h, &r)
	removed := sh.sweepLocked(now, putSweepLimit)
	for sh.live > maxShardLive && sh.popOldestLocked() {
		removed++
	}
	s.count.Add(int64(added - removed))
	sh.mu.Unlock()
	if added > 0 && s.count.Load() > s.max {
		s.evictOverflow()
	}
}

// Get returns the session_key stored for (app, openid); false when absent or past its TTL.
// Use AppendKey on hot paths: Get allocates the string of a compactly stored key.
func (s *Sessions) Get(app, openid string) (string, bool) {
	var buf [96]byte
	k := appendMapKey(buf[:0], app, openid)
	r, ok := s.lookup(k)
	if !ok {
		return "", false
	}
	if r.text != "" {
		return r.text, true
	}
	return base64.StdEncoding.EncodeToString(r.raw[:]), true
}

// AppendKey appends the session_key text stored for (app, openid) to dst; false (and dst
// unchanged) when absent or past its TTL. It does not allocate when dst has room.
func (s *Sessions) AppendKey(dst []byte, app, openid string) ([]byte, bool) {
	var buf [96]byte
	k := appendMapKey(buf[:0], app, openid)
	r, ok := s.lookup(k)
	if !ok {
		return dst, false
	}
	if r.text != "" {
		return append(dst, r.text...), true
	}
	return base64.StdEncoding.AppendEncode(dst, r.raw[:]), true
}

// Delete removes the session_key of (app, openid), if any.
func (s *Sessions) Delete(app, openid string) {
	var buf [96]byte
	k := appendMapKey(buf[:0], app, openid)
	h := maphash.Bytes(s.seed, k)
	sh := s.shardOf(h)
	sh.mu.Lock()
	if sh.deleteLocked(k, h) {
		s.count.Add(-1)
	}
	sh.mu.Unlock()
}

// Len returns the number of stored entries, after sweeping those already expired.
func (s *Sessions) Len() int {
	now := s.now()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		s.count.Add(-int64(sh.sweepLocked(now, math.MaxInt)))
		sh.mu.Unlock()
	}
	return int(s.count.Load())
}

// lookup returns the live record for map key k, removing it if it has expired.
func (s *Sessions) lookup(k []byte) (sessionRec, bool) {
	h := maphash.Bytes(s.seed, k)
	now := s.now()
	sh := s.shardOf(h)
	sh.mu.Lock()
	r, ok, removed := sh.getLocked(k, h, now)
	if removed {
		s.count.Add(-1)
	}
	sh.mu.Unlock()
	return r, ok
}

func (s *Sessions) now() int64 {
	if s.clock == nil {
		return int64(time.Since(s.base)) // monotonic only: half the cost of time.Now
	}
	return int64(s.clock().Sub(s.base))
}

// nextExp returns max(exp, previous+1), so that expiries are unique and follow insertion
// order even when the clock stalls or steps back.
func (s *Sessions) nextExp(exp int64) int64 {
	for {
		last := s.lastExp.Load()
		if exp <= last {
			exp = last + 1
		}
		if s.lastExp.CompareAndSwap(last, exp) {
			return exp
		}
	}
}

// shardOf picks a shard by the top bits of h; the shard's index uses the low bits.
func (s *Sessions) shardOf(h uint64) *sessionShard {
	return &s.shards[h>>(64-sessionShardBits)]
}

// evictOverflow removes the globally oldest entries while the store is over MaxEntries.
// Under concurrent Puts it may remove one entry more than strictly needed.
func (s *Sessions) evictOverflow() {
	for attempt := 0; s.count.Load() > s.max; attempt++ {
		best, bestExp := -1, int64(math.MaxInt64)
		for i := range s.shards {
			if o := s.shards[i].oldest.Load(); o < bestExp {
				best, bestExp = i, o
			}
		}
		if best < 0 {
			return
		}
		sh := &s.shards[best]
		sh.mu.Lock()
		if sh.oldest.Load() == bestExp || attempt > 8 {
			if sh.popOldestLocked() {
				s.count.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
}

// appendMapKey appends the internal key of (app, openid): uvarint(len(app)) app openid.
func appendMapKey(dst []byte, app, openid string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(app)))
	dst = append(dst, app...)
	return append(dst, openid...)
}
