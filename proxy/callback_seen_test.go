package proxy

import (
	"fmt"
	"testing"
	"time"
)

func TestSeenSet(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := newSeenSet(time.Minute, 3)
	steps := []struct {
		do   string // add, has, remove
		key  string
		at   time.Duration
		want bool
	}{
		{"add", "a", 0, true},
		{"add", "a", time.Second, false}, // a replay within the TTL
		{"has", "a", time.Second, true},
		{"has", "b", time.Second, false},
		{"remove", "a", time.Second, false},
		{"has", "a", time.Second, false},
		{"add", "a", 2 * time.Second, true},              // removed: may come again
		{"has", "a", 2*time.Second + time.Minute, false}, // expired
		{"add", "a", 2*time.Second + time.Minute, true},
		{"add", "b", 3 * time.Minute, true},
		{"add", "c", 3 * time.Minute, true},
		{"add", "d", 3 * time.Minute, true}, // the fourth: the oldest live key (a) goes
		{"has", "a", 3 * time.Minute, false},
		{"has", "b", 3 * time.Minute, true},
		{"has", "d", 3 * time.Minute, true},
	}
	for i, st := range steps {
		now := t0.Add(st.at)
		var got bool
		switch st.do {
		case "add":
			got = s.add(st.key, now)
		case "has":
			got = s.has(st.key, now)
		case "remove":
			s.removeKey(s.hash(st.key))
			continue
		}
		if got != st.want {
			t.Fatalf("step %d: %s(%q) at +%v = %v, want %v", i, st.do, st.key, st.at, got, st.want)
		}
	}
	if n := len(s.keys); n > 3 {
		t.Fatalf("%d keys kept, want at most 3", n)
	}
}

// TestSeenSetTellsManyKeysApart: distinct keys never collide in practice (two 64-bit hashes).
func TestSeenSetTellsManyKeysApart(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := newSeenSet(time.Hour, 200_000)
	for i := range 200_000 {
		if !s.add(fmt.Sprintf("v3|m|1733050000|nonce-%d", i), now) {
			t.Fatalf("key %d reported as seen before it was added", i)
		}
	}
	if !s.has("v3|m|1733050000|nonce-7", now) || s.has("v3|m|1733050000|nonce-200000", now) {
		t.Fatal("membership wrong after 200k keys")
	}
}

// TestSeenSetKeyOf: a key made of parts is one key whatever the call, and the parts' boundaries
// count.
func TestSeenSetKeyOf(t *testing.T) {
	s := newSeenSet(time.Minute, 10)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	k := s.keyOf([]byte("v3"), []byte("shop"), []byte("1733050000"), []byte("n1"))
	if !s.addKey(k, now) || s.addKey(s.keyOf([]byte("v3"), []byte("shop"), []byte("1733050000"), []byte("n1")), now) {
		t.Fatal("the same parts must make the same key")
	}
	if !s.addKey(s.keyOf([]byte("v3"), []byte("sho"), []byte("p1733050000"), []byte("n1")), now) {
		t.Fatal("parts split elsewhere made the same key")
	}
	s.removeKey(k)
	if !s.addKey(k, now) {
		t.Fatal("a removed key must be addable again")
	}
}
