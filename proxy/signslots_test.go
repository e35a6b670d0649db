package proxy

import (
	"testing"
	"time"
)

// TestSignSlotsAnswerOverload fills every signing slot: the next request is refused with 503
// wxgate.overloaded instead of queueing, and a slot released is usable again.
func TestSignSlotsAnswerOverload(t *testing.T) {
	s := newSignSlots(2, time.Millisecond)
	for i := 0; i < 2; i++ {
		if err := s.acquire(); err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
	}
	err := s.acquire()
	if err == nil || err.Status != 503 || err.Code != CodeOverloaded {
		t.Fatalf("full slots: got %v, want 503 %s", err, CodeOverloaded)
	}
	s.release()
	if err := s.acquire(); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}
