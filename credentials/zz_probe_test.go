package credentials

import (
	"hash/maphash"
	"testing"
	"time"
)

func TestZZProbe(t *testing.T) {
	openid := []byte("oAbCd00000000000000000000000")
	const key = "tiihtNczf5v6AKRyjwEUhQ=="
	step := func(name string, f func()) {
		start := time.Now()
		for range 1_000_000 {
			f()
		}
		t.Logf("%s: %v", name, time.Since(start))
	}
	odo := func() {
		for j := len(openid) - 1; ; j-- {
			if openid[j] < '9' {
				openid[j]++
				break
			}
			openid[j] = '0'
		}
	}
	var sink sessionRec
	var hs uint64
	step("odometer", odo)
	step("newSessionRec", func() { sink = newSessionRec(key) })
	seed := maphash.MakeSeed()
	step("mapkey+hash", func() {
		var buf [96]byte
		k := appendMapKey(buf[:0], testApp, string(openid))
		hs += maphash.Bytes(seed, k)
	})
	step("string(k)", func() { sink.key = string(openid) })
	s := NewSessions(SessionOptions{})
	step("now", func() { hs += uint64(s.now()) })
	step("nextExp", func() { hs += uint64(s.nextExp(5)) })
	var sh sessionShard
	sh.init(seed)
	step("lock", func() { sh.mu.Lock(); sh.mu.Unlock() })
	step("put", func() { odo(); s.Put(testApp, string(openid), key) })
	_ = sink
}
