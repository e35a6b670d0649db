package store

import (
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// sessionModel is the obvious reference implementation of Sessions' observable behaviour.
type sessionModel struct {
	max     int
	entries map[string]modelEntry
}

type modelEntry struct {
	val string
	exp int64
}

func (m *sessionModel) put(k, v string, exp int64) {
	m.entries[k] = modelEntry{v, exp}
	for len(m.entries) > m.max { // evict the oldest (smallest expiry)
		oldest, oldestExp := "", int64(1<<62)
		for k, e := range m.entries {
			if e.exp < oldestExp {
				oldest, oldestExp = k, e.exp
			}
		}
		delete(m.entries, oldest)
	}
}

func (m *sessionModel) get(k string, now int64) (string, bool) {
	e, ok := m.entries[k]
	if !ok || e.exp <= now {
		delete(m.entries, k)
		return "", false
	}
	return e.val, true
}

func (m *sessionModel) len(now int64) int {
	for k, e := range m.entries {
		if e.exp <= now {
			delete(m.entries, k)
		}
	}
	return len(m.entries)
}

// TestSessionsMatchModel runs random Put/Get/Delete/Len sequences against the model,
// with a clock that always moves so that expiries are exactly now+TTL.
func TestSessionsMatchModel(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 42))
		clk := newFakeClock()
		const ttl, maxEntries, keys = 3000, 100, 400
		s := NewSessions(SessionOptions{TTL: ttl, MaxEntries: maxEntries, Clock: clk.Now})
		m := &sessionModel{max: maxEntries, entries: map[string]modelEntry{}}
		start := clk.Now()
		for op := range 30_000 {
			clk.Advance(time.Duration(1 + rng.IntN(20)))
			now := int64(clk.Now().Sub(start))
			app := "wx" + strconv.Itoa(rng.IntN(2))
			openid := "o" + strconv.Itoa(rng.IntN(keys))
			k := app + "/" + openid
			switch r := rng.IntN(10); {
			case r < 4:
				v := "text-" + strconv.Itoa(op)
				if r < 2 {
					v = testSessionKey(uint64(op))
				}
				s.Put(app, openid, v)
				m.put(k, v, now+ttl)
			case r < 5:
				s.Delete(app, openid)
				delete(m.entries, k)
			case r < 9:
				got, ok := s.Get(app, openid)
				want, wantOK := m.get(k, now)
				if got != want || ok != wantOK {
					t.Fatalf("seed %d op %d: Get(%s) = %q, %v; model %q, %v", seed, op, k, got, ok, want, wantOK)
				}
			default:
				if got, want := s.Len(), m.len(now); got != want {
					t.Fatalf("seed %d op %d: Len = %d, model %d", seed, op, got, want)
				}
			}
		}
		checkShardInvariants(t, s)
	}
}

func checkShardInvariants(t *testing.T, s *Sessions) {
	t.Helper()
	total := 0
	for i := range s.shards {
		sh := &s.shards[i]
		live, prev := 0, int64(-1)
		for pos := range sh.n {
			r := sh.rec(pos)
			if r.key == "" {
				continue
			}
			if pos < sh.head || r.exp <= prev {
				t.Fatalf("shard %d: record %d out of order (head %d)", i, pos, sh.head)
			}
			prev = r.exp
			live++
		}
		if live != sh.live || sh.used*4 > len(sh.index)*3 {
			t.Fatalf("shard %d: live %d counted %d, slots %d/%d", i, sh.live, live, sh.used, len(sh.index))
		}
		total += live
	}
	if int64(total) != s.count.Load() {
		t.Fatalf("count %d, records %d", s.count.Load(), total)
	}
}

func FuzzNewSessionRec(f *testing.F) {
	for _, seed := range []string{
		"tiihtNczf5v6AKRyjwEUhQ==", "AAAAAAAAAAAAAAAAAAAAAB==", "AAAAAAAAAAAAAAAAAAAAAA=\n",
		"AAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAA", "tiihtNczf5v6AKRyjwEUh_==", "",
		"AAAAAAAAAAAAAAAAAAAA\r\nAA", "====================AA==",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if key == "" {
			return // Put deletes instead of storing an empty key
		}
		r := newSessionRec(key)
		if r.text == "" {
			if got := base64.StdEncoding.EncodeToString(r.raw[:]); got != key {
				t.Fatalf("compact %q re-encodes as %q", key, got)
			}
		} else if r.text != key {
			t.Fatalf("text %q stored as %q", key, r.text)
		}
	})
}
