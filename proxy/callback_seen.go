package proxy

import (
	"hash/maphash"
	"sync"
	"time"
)

// seenSet remembers keys for a while: acknowledged event ids (so WeChat's retries of an event the
// app already accepted are answered without a second forward) and callback nonces (replays). It is
// deterministic, unlike a best-effort cache: a key added stays until its TTL or until maxEntries
// newer keys push it out, oldest first. It is safe for concurrent use.
//
// Keys are kept as two independent 64-bit hashes (seeded per process) with expiries in Unix
// nanoseconds, so the set holds no pointers: a million entries cost the garbage collector
// nothing to scan. Two keys collide with probability about 2^-128 per pair.
type seenSet struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	seeds [2]maphash.Seed
	keys  map[seenKey]int64 // key -> expiry (Unix ns)
	order []seenEntry       // insertion order, for eviction
	head  int               // first live index in order
}

// seenKey is a key's two hashes.
type seenKey [2]uint64

type seenEntry struct {
	key    seenKey
	expiry int64
}

func newSeenSet(ttl time.Duration, maxEntries int) *seenSet {
	return &seenSet{ttl: ttl, max: maxEntries, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, keys: make(map[seenKey]int64)}
}

func (s *seenSet) hash(key string) seenKey {
	return seenKey{maphash.String(s.seeds[0], key), maphash.String(s.seeds[1], key)}
}

// keyOf is the key made of parts, each ended by a zero byte (so ("ab", "c") and ("a", "bc")
// differ), hashed without building the joined string.
func (s *seenSet) keyOf(parts ...[]byte) seenKey {
	var k seenKey
	for i := range k {
		var h maphash.Hash
		h.SetSeed(s.seeds[i])
		for _, p := range parts {
			h.Write(p)
			h.WriteByte(0)
		}
		k[i] = h.Sum64()
	}
	return k
}

// has reports whether key was added and has not expired.
func (s *seenSet) has(key string, now time.Time) bool {
	k, t := s.hash(key), now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.keys[k]
	return ok && t < exp
}

// add records key; it reports false when key was already present (and unexpired).
func (s *seenSet) add(key string, now time.Time) bool { return s.addKey(s.hash(key), now) }

// addKey is add for a key already hashed (keyOf).
func (s *seenSet) addKey(k seenKey, now time.Time) bool {
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.keys[k]; ok && t < exp {
		return false
	}
	exp := t + int64(s.ttl)
	s.keys[k] = exp
	s.order = append(s.order, seenEntry{key: k, expiry: exp})
	s.evictLocked(t)
	return true
}

// removeKey forgets a key made by keyOf (a callback whose forward failed may come again).
func (s *seenSet) removeKey(k seenKey) {
	s.mu.Lock()
	delete(s.keys, k)
	s.mu.Unlock()
}

// evictLocked drops expired entries and, past max, the oldest ones.
func (s *seenSet) evictLocked(now int64) {
	for s.head < len(s.order) {
		e := s.order[s.head]
		exp, live := s.keys[e.key]
		current := live && exp == e.expiry // not re-added since
		if current && now < e.expiry && len(s.keys) <= s.max {
			break
		}
		if current {
			delete(s.keys, e.key)
		}
		s.order[s.head] = seenEntry{}
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.order) {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
}
