package store

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"testing"
	"time"
)

const testApp = "wx1111222233334444"

// testSessionKey returns a WeChat-shaped session_key (base64 of 16 bytes) unique to i.
func testSessionKey(i uint64) string {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:], i)
	binary.LittleEndian.PutUint64(raw[8:], ^i)
	return base64.StdEncoding.EncodeToString(raw[:])
}

// testOpenID returns a WeChat-shaped 28-character openid unique to i.
func testOpenID(i uint64) string {
	b := []byte("oAbCd00000000000000000000000")
	for j := len(b) - 1; i > 0; j-- {
		b[j] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

func TestSessionsPutGet(t *testing.T) {
	cases := []struct {
		name    string
		key     string
		compact bool
	}{
		{"wechat key", "tiihtNczf5v6AKRyjwEUhQ==", true},
		{"all zero bytes", "AAAAAAAAAAAAAAAAAAAAAA==", true},
		{"non-canonical padding bits", "AAAAAAAAAAAAAAAAAAAAAB==", false},
		{"24 chars with newline", "AAAAAAAAAAAAAAAAAAAAAA=\n", false},
		{"24 chars decoding to 17 bytes", "AAAAAAAAAAAAAAAAAAAAAAA=", false},
		{"not base64", "not base64 at all!", false},
		{"other length", "c2hvcnQ=", false},
		{"url alphabet", "tiihtNczf5v6AKRyjwEUh_==", false},
	}
	s := NewSessions(SessionOptions{})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			openid := testOpenID(uint64(i))
			s.Put(testApp, openid, c.key)
			if got, ok := s.Get(testApp, openid); !ok || got != c.key {
				t.Fatalf("Get = %q, %v; want %q", got, ok, c.key)
			}
			if got, ok := s.AppendKey([]byte("k="), testApp, openid); !ok || string(got) != "k="+c.key {
				t.Fatalf("AppendKey = %q, %v", got, ok)
			}
			if compact := newSessionRec(c.key).text == ""; compact != c.compact {
				t.Fatalf("compact = %v, want %v", compact, c.compact)
			}
		})
	}
	if n := s.Len(); n != len(cases) {
		t.Fatalf("Len = %d", n)
	}
}

func TestSessionsKeysAreDistinct(t *testing.T) {
	s := NewSessions(SessionOptions{})
	s.Put("ab", "c", testSessionKey(1))
	s.Put("a", "bc", testSessionKey(2))
	s.Put("wxother", "c", testSessionKey(3))
	for _, c := range []struct {
		app, openid string
		want        uint64
	}{{"ab", "c", 1}, {"a", "bc", 2}, {"wxother", "c", 3}} {
		if got, _ := s.Get(c.app, c.openid); got != testSessionKey(c.want) {
			t.Errorf("Get(%q, %q) = %q", c.app, c.openid, got)
		}
	}
	if _, ok := s.Get("abc", ""); ok {
		t.Error("found a key that was never stored")
	}
}

func TestSessionsReplaceAndDelete(t *testing.T) {
	s := NewSessions(SessionOptions{})
	s.Put(testApp, "o1", testSessionKey(1))
	s.Put(testApp, "o1", "replacement")
	if got, _ := s.Get(testApp, "o1"); got != "replacement" || s.Len() != 1 {
		t.Fatalf("after replace: %q, Len %d", got, s.Len())
	}
	s.Delete(testApp, "o1")
	s.Delete(testApp, "never-stored")
	if _, ok := s.Get(testApp, "o1"); ok || s.Len() != 0 {
		t.Fatalf("after delete: ok=%v Len=%d", ok, s.Len())
	}
	s.Put(testApp, "o2", testSessionKey(2))
	s.Put(testApp, "o2", "") // an empty key deletes
	if _, ok := s.Get(testApp, "o2"); ok || s.Len() != 0 {
		t.Fatalf("empty Put kept the entry: Len=%d", s.Len())
	}
	if got, ok := s.AppendKey(nil, testApp, "o2"); ok || got != nil {
		t.Fatalf("AppendKey on a missing key = %q, %v", got, ok)
	}
}

func TestSessionsTTL(t *testing.T) {
	clk := newFakeClock()
	s := NewSessions(SessionOptions{TTL: time.Hour, Clock: clk.Now})
	for i := range uint64(100) {
		s.Put(testApp, testOpenID(i), testSessionKey(i))
	}
	clk.Advance(30 * time.Minute)
	s.Put(testApp, testOpenID(0), testSessionKey(0)) // restarts its TTL
	clk.Advance(30*time.Minute - time.Nanosecond)
	if _, ok := s.Get(testApp, testOpenID(99)); !ok {
		t.Fatal("entry gone before its TTL")
	}
	clk.Advance(time.Millisecond) // expiries may be a few ns past TTL; see nextExp
	if _, ok := s.Get(testApp, testOpenID(99)); ok {
		t.Fatal("entry readable after its TTL")
	}
	if _, ok := s.Get(testApp, testOpenID(0)); !ok {
		t.Fatal("refreshed entry expired with the old TTL")
	}
	if n := s.Len(); n != 1 {
		t.Fatalf("Len after expiry = %d, want 1", n)
	}
	clk.Advance(time.Hour)
	if n := s.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

func TestSessionsPutSweepsExpired(t *testing.T) {
	clk := newFakeClock()
	s := NewSessions(SessionOptions{TTL: time.Minute, Clock: clk.Now})
	const n = 5000
	for i := range uint64(n) {
		s.Put(testApp, testOpenID(i), testSessionKey(i))
	}
	clk.Advance(2 * time.Minute)
	for i := range uint64(n) {
		s.Put("wxnew", testOpenID(i), testSessionKey(i))
	}
	// Puts alone (no Get, no Len) removed the expired entries.
	if c := s.count.Load(); c != n {
		t.Fatalf("stored entries = %d, want %d", c, n)
	}
}

func TestSessionsMaxEntriesEvictsOldest(t *testing.T) {
	const max = 1000
	s := NewSessions(SessionOptions{MaxEntries: max}) // real clock: ordering must not depend on it
	for i := range uint64(max) {
		s.Put(testApp, testOpenID(i), testSessionKey(i))
	}
	s.Put(testApp, testOpenID(0), testSessionKey(0)) // refresh: 0 becomes the newest
	for i := uint64(max); i < max+300; i++ {
		s.Put(testApp, testOpenID(i), testSessionKey(i))
	}
	if n := s.Len(); n != max {
		t.Fatalf("Len = %d, want %d", n, max)
	}
	for i := range uint64(max + 300) {
		_, ok := s.Get(testApp, testOpenID(i))
		want := i == 0 || i > 300
		if ok != want {
			t.Fatalf("entry %d present=%v, want %v", i, ok, want)
		}
	}
}

func TestSessionsGarbageStaysBounded(t *testing.T) {
	clk := newFakeClock()
	s := NewSessions(SessionOptions{TTL: time.Minute, Clock: clk.Now})
	const rounds = 20_000
	for i := range rounds {
		s.Put(testApp, strconv.Itoa(i%10), "k"+strconv.Itoa(i)) // replacements
		s.Put("wxchurn", strconv.Itoa(i), "k")                  // churn through expiry
		s.Delete("wxchurn", strconv.Itoa(i-3))                  // and deletes
		if i%1000 == 0 {
			clk.Advance(10 * time.Second)
		}
	}
	for i := range s.shards {
		sh := &s.shards[i]
		if sh.n-sh.live > sh.live+rebuildSlack+1 || sh.used*4 > len(sh.index)*3 {
			t.Fatalf("shard %d: %d records, %d live, %d/%d slots used",
				i, sh.n, sh.live, sh.used, len(sh.index))
		}
	}
	for i := range 10 {
		if got, _ := s.Get(testApp, strconv.Itoa(i)); got != "k"+strconv.Itoa(rounds-10+i) {
			t.Fatalf("entry %d = %q", i, got)
		}
	}
	for i := rounds - 3; i < rounds; i++ {
		if _, ok := s.Get("wxchurn", strconv.Itoa(i)); !ok {
			t.Fatalf("churn entry %d missing", i)
		}
	}
	// 10 replaced keys + 3 undeleted churn keys + churn entries expiring within a minute
	// (deleted anyway) = 13.
	if n := s.Len(); n != 13 {
		t.Fatalf("Len = %d, want 13", n)
	}
}

func TestSessionsConcurrentPutGet(t *testing.T) {
	const writers, perWriter = 8, 20_000
	s := NewSessions(SessionOptions{})
	type pair struct{ openid, key string }
	seen := make(chan pair, 1024)
	var readerErr error
	readerDone := make(chan struct{})
	go func() { // another goroutine must see keys as soon as Put returned
		defer close(readerDone)
		for p := range seen {
			if got, ok := s.Get(testApp, p.openid); !ok || got != p.key {
				readerErr = fmt.Errorf("reader: %s = %q, %v; want %q", p.openid, got, ok, p.key)
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			buf := make([]byte, 0, 32)
			for j := range perWriter {
				id := w*perWriter + j
				openid, key := "o"+strconv.Itoa(id), testSessionKey(uint64(id))
				s.Put(testApp, openid, key)
				var ok bool
				if buf, ok = s.AppendKey(buf[:0], testApp, openid); !ok || string(buf) != key {
					errs <- fmt.Errorf("writer %d: %s = %q, %v; want %q", w, openid, buf, ok, key)
					return
				}
				if j%16 == 0 {
					seen <- pair{openid, key}
				}
			}
		})
	}
	wg.Wait()
	close(seen)
	<-readerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	if n := s.Len(); n != writers*perWriter {
		t.Fatalf("Len = %d", n)
	}
	buf := make([]byte, 0, 32)
	for id := range writers * perWriter {
		var ok bool
		if buf, ok = s.AppendKey(buf[:0], testApp, "o"+strconv.Itoa(id)); !ok {
			t.Fatalf("entry %d missing afterwards", id)
		}
	}
}

func TestSessionsConcurrentEviction(t *testing.T) {
	const writers, perWriter, max = 4, 5000, 1000
	s := NewSessions(SessionOptions{MaxEntries: max})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for j := range perWriter {
				s.Put(testApp, strconv.Itoa(w)+"-"+strconv.Itoa(j), "k")
			}
		})
	}
	wg.Wait()
	// Racing evictors may each remove one entry more than needed.
	if n := s.Len(); n > max || n < max-writers {
		t.Fatalf("Len = %d, want about %d", n, max)
	}
	checkShardInvariants(t, s)
	// Once quiet, eviction is exact again: a new entry pushes out exactly the oldest one.
	oldest := ""
	for w := range writers {
		for j := range perWriter {
			if _, ok := s.Get(testApp, strconv.Itoa(w)+"-"+strconv.Itoa(j)); ok {
				if oldest == "" || s.expOf(testApp, strconv.Itoa(w)+"-"+strconv.Itoa(j)) < s.expOf(testApp, oldest) {
					oldest = strconv.Itoa(w) + "-" + strconv.Itoa(j)
				}
			}
		}
	}
	n := s.Len()
	s.Put(testApp, "newest", "k")
	if _, ok := s.Get(testApp, oldest); ok == (n == max) {
		t.Fatalf("oldest entry present=%v with Len %d before the Put", ok, n)
	}
	if _, ok := s.Get(testApp, "newest"); !ok {
		t.Fatal("newest entry missing")
	}
}

// expOf returns the internal expiry of a live entry (tests only).
func (s *Sessions) expOf(app, openid string) int64 {
	k := appendMapKey(nil, app, openid)
	h := maphash.Bytes(s.seed, k)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, pos := sh.find(k, h)
	return sh.rec(pos).exp
}

func TestSessionsAppendKeyDoesNotAllocate(t *testing.T) {
	s := NewSessions(SessionOptions{})
	s.Put(testApp, "compact", testSessionKey(7))
	s.Put(testApp, "text", "some-other-format")
	dst := make([]byte, 0, 64)
	for _, openid := range []string{"compact", "text", "missing"} {
		allocs := testing.AllocsPerRun(100, func() {
			dst, _ = s.AppendKey(dst[:0], testApp, openid)
		})
		if allocs != 0 {
			t.Errorf("AppendKey(%s) allocates %.1f times", openid, allocs)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = s.Get(testApp, "text") }); allocs != 0 {
		t.Errorf("Get of a text key allocates %.1f times", allocs)
	}
}
