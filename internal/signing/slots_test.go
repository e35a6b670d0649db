package signing

import (
	"testing"
	"time"
)

// TestSignSlotsAnswerOverload fills every signing slot: the next request is refused with 503
// (ErrWaitOver, a 503 for the app) once its wait runs out, and a slot released is usable again.
func TestSignSlotsAnswerOverload(t *testing.T) {
	s := NewSlots(2, time.Millisecond)
	s.cost.Store(int64(time.Microsecond)) // one waiter is expected to get a slot in time
	for i := 0; i < 2; i++ {
		if err := s.Acquire(); err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
	}
	err := s.Acquire()
	if err != ErrWaitOver {
		t.Fatalf("full slots: got %v, want ErrWaitOver after waiting", err)
	}
	if g := s.giveUpAfter(); g >= s.maxWait || g < s.maxWait*8/10 {
		t.Fatalf("a waiter gives up after %v of a %v bound; want shortly before the bound", g, s.maxWait)
	}
	if w := time.Duration(s.maxSeen.Load()); w < s.giveUpAfter() {
		t.Fatalf("longest wait recorded %v; the refused request waited its %v", w, s.giveUpAfter())
	}
	var counted uint64
	for i := range s.waits {
		counted += s.waits[i].Load()
	}
	if counted != 1 {
		t.Fatalf("wait histogram holds %d waits, want the one", counted)
	}
	s.Release(time.Millisecond)
	if err := s.Acquire(); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}

// TestSignSlotsRefuseAQueueTooLongAtOnce: when the signatures already queued would outlast
// sign_max_wait, a request is refused without waiting at all (the wait here is an hour: a
// request that waited would hang the test).
func TestSignSlotsRefuseAQueueTooLongAtOnce(t *testing.T) {
	s := NewSlots(1, time.Hour)
	if err := s.Acquire(); err != nil {
		t.Fatal(err)
	}
	s.cost.Store(int64(2 * time.Hour))
	err := s.Acquire()
	if err != ErrQueueFull {
		t.Fatalf("queue longer than the bound: got %v, want an immediate 503", err)
	}
	if n := s.waiting.Load(); n != 0 {
		t.Fatalf("%d waiters left behind", n)
	}
}

// TestSignSlotsWaiterGetsTheReleasedSlot: a request that may wait gets the slot the moment it
// is released.
func TestSignSlotsWaiterGetsTheReleasedSlot(t *testing.T) {
	s := NewSlots(1, time.Hour)
	if err := s.Acquire(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() { got <- s.Acquire() }()
	s.Release(time.Millisecond)
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

// TestSignSlotsLearnTheSignatureCost: the admission estimate follows the measured durations.
func TestSignSlotsLearnTheSignatureCost(t *testing.T) {
	s := NewSlots(1, time.Second)
	for range 64 {
		if err := s.Acquire(); err != nil {
			t.Fatal(err)
		}
		s.Release(3 * time.Millisecond)
	}
	if c := time.Duration(s.cost.Load()); c < 2900*time.Microsecond || c > 3*time.Millisecond {
		t.Fatalf("average cost %v after 64 signatures of 3ms", c)
	}
}

// TestSignSlotsShrugOffOneStall: one hold stretched 200 times (a stall) moves the estimate by
// at most 3/8, so the queue behind it is not refused; holds that stay 10 times longer are learnt
// within a few dozen.
func TestSignSlotsShrugOffOneStall(t *testing.T) {
	s := NewSlots(1, time.Second)
	hold := func(d time.Duration) {
		if err := s.Acquire(); err != nil {
			t.Fatal(err)
		}
		s.Release(d)
	}
	for range 64 {
		hold(time.Millisecond)
	}
	hold(200 * time.Millisecond)
	if c := time.Duration(s.cost.Load()); c > 1375*time.Microsecond {
		t.Fatalf("one 200 ms hold after 1 ms ones: average %v, want at most 1.375 ms", c)
	}
	for range 40 {
		hold(10 * time.Millisecond)
	}
	if c := time.Duration(s.cost.Load()); c < 9*time.Millisecond || c > 10*time.Millisecond {
		t.Fatalf("after 40 holds of 10 ms: average %v, want about 10 ms", c)
	}
}
