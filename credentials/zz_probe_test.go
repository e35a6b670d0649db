package credentials

import (
	"testing"
	"time"
)

func TestZZProbe(t *testing.T) {
	openid := []byte("oAbCd00000000000000000000000")
	const key = "tiihtNczf5v6AKRyjwEUhQ=="
	odo := func(m int) {
		for j := len(openid) - 1; j > len(openid)-1-m; j-- {
			if openid[j] < '9' {
				openid[j]++
				return
			}
			openid[j] = '0'
		}
	}
	for _, m := range []int{3, 4, 5, 6, 7} {
		s := NewSessions(SessionOptions{})
		start := time.Now()
		for range 1_000_000 {
			odo(m)
			s.Put(testApp, string(openid), key)
		}
		t.Logf("1M puts over %d keys: %v (Len %d)", s.Len(), time.Since(start), s.Len())
	}
}
