package store

import "testing"

func BenchmarkSessionsGet(b *testing.B) {
	const n = 100_000
	s := NewSessions(SessionOptions{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = testOpenID(uint64(i))
		s.Put(testApp, ids[i], testSessionKey(uint64(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := s.Get(testApp, ids[i%n]); !ok {
			b.Fatal("missing")
		}
		i++
	}
}

func BenchmarkSessionsAppendKey(b *testing.B) {
	const n = 100_000
	s := NewSessions(SessionOptions{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = testOpenID(uint64(i))
		s.Put(testApp, ids[i], testSessionKey(uint64(i)))
	}
	dst := make([]byte, 0, 32)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		var ok bool
		if dst, ok = s.AppendKey(dst[:0], testApp, ids[i%n]); !ok {
			b.Fatal("missing")
		}
		i++
	}
}

func BenchmarkSessionsGetParallel(b *testing.B) {
	const n = 100_000
	s := NewSessions(SessionOptions{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = testOpenID(uint64(i))
		s.Put(testApp, ids[i], testSessionKey(uint64(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 32)
		i := 0
		for pb.Next() {
			dst, _ = s.AppendKey(dst[:0], testApp, ids[i%n])
			i++
		}
	})
}

func BenchmarkSessionsPut(b *testing.B) {
	s := NewSessions(SessionOptions{MaxEntries: 1 << 20})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = testSessionKey(uint64(i))
	}
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		s.Put(testApp, testOpenID(i), keys[i%1024])
		i++
	}
}
