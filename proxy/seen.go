package proxy

import (
	"sync"
	"time"
)

// seenSet remembers keys for a while: acknowledged event ids (so WeChat's retries of an event the
// app already accepted are answered without a second forward) and callback nonces (replays). It is
// deterministic, unlike a best-effort cache: a key added stays until its TTL or until maxEntries
// newer keys push it out, oldest first. It is safe for concurrent use.
type seenSet struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	keys  map[string]time.Time // key -> expiry
	order []seenEntry          // insertion order, for eviction
	head  int                  // first live index in order
}

type seenEntry struct {
	key    string
	expiry time.Time
}

func newSeenSet(ttl time.Duration, maxEntries int) *seenSet {
	return &seenSet{ttl: ttl, max: maxEntries, keys: make(map[string]time.Time)}
}

// has reports whether key was added and has not expired.
func (s *seenSet) has(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.keys[key]
	return ok && now.Before(exp)
}

// add records key; it reports false when key was already present (and unexpired).
func (s *seenSet) add(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.keys[key]; ok && now.Before(exp) {
		return false
	}
	exp := now.Add(s.ttl)
	s.keys[key] = exp
	s.order = append(s.order, seenEntry{key: key, expiry: exp})
	s.evictLocked(now)
	return true
}

// remove forgets key (a callback whose forward failed may come again).
func (s *seenSet) remove(key string) {
	s.mu.Lock()
	delete(s.keys, key)
	s.mu.Unlock()
}

// evictLocked drops expired entries and, past max, the oldest ones.
func (s *seenSet) evictLocked(now time.Time) {
	for s.head < len(s.order) {
		e := s.order[s.head]
		exp, live := s.keys[e.key]
		current := live && exp.Equal(e.expiry) // not re-added since
		if current && now.Before(e.expiry) && len(s.keys) <= s.max {
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
