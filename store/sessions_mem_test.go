package store

import (
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
)

const (
	memEntries  = 1_000_000
	memMaxBytes = 250 << 20
)

// fillSessions puts n WeChat-shaped entries (18-byte appid, 28-byte openid, 24-byte key),
// spread over a few goroutines. Openids are decimal odometers, cheap even under -race.
func fillSessions(s *Sessions, n int) {
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			openid := []byte("oAbCd00000000000000000000000")
			openid[1] = byte('A' + w)
			key := []byte("tiihtNczf5v6AKRyjwEUhQ==")
			key[0] = byte('A' + w)
			for range (n + workers - 1 - w) / workers {
				for j := len(openid) - 1; ; j-- {
					if openid[j] < '9' {
						openid[j]++
						break
					}
					openid[j] = '0'
				}
				s.Put(testApp, string(openid), string(key))
			}
		})
	}
	wg.Wait()
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestSessionsHeapPerMillion(t *testing.T) {
	before := heapAlloc()
	// The fill makes no garbage worth collecting: skip GC cycles while it runs.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	s := NewSessions(SessionOptions{})
	fillSessions(s, memEntries)
	after := heapAlloc()
	if n := s.Len(); n != memEntries {
		t.Fatalf("Len = %d", n)
	}
	used := after - before
	t.Logf("heap for %d sessions: %d MB (%d bytes/entry)", memEntries, used>>20, used/memEntries)
	if used > memMaxBytes {
		t.Fatalf("heap for %d sessions = %d MB, want ≤ %d MB", memEntries, used>>20, memMaxBytes>>20)
	}
	if got, ok := s.Get(testApp, "oAbCd00000000000000000000001"); !ok || len(got) != 24 {
		t.Fatalf("last entry = %q, %v", got, ok)
	}
	runtime.KeepAlive(s)
}
