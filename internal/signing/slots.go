package signing

import (
	"errors"
	"sync/atomic"
	"time"
)

// Slots caps concurrent RSA signatures: RSA-2048 costs about a millisecond of CPU, so more
// signatures at once than cores only queue. A request that finds every slot busy waits only when
// the signatures queued ahead of it should finish within half of [server] sign_max_wait; otherwise it is
// answered 503 at once, and a waiter that still gets no slot by nine tenths of sign_max_wait is
// answered 503 then. No request waits longer than sign_max_wait for a slot. The estimate uses how
// long a slot is held, from taking it to giving it back: on a saturated machine that is the
// signature plus the waits for the lower-priority signing thread and for the request's
// goroutine to run again, and it is what decides how soon the next waiter gets the slot.
type Slots struct {
	slots   chan struct{}
	maxWait time.Duration
	waiting atomic.Int64                        // requests waiting for a slot now
	cost    atomic.Int64                        // moving average of how long a slot is held, in nanoseconds
	maxSeen atomic.Int64                        // the longest wait for a slot so far, in nanoseconds
	waits   [len(WaitBuckets) + 1]atomic.Uint64 // waits by bucket (the last: longer than all)
	waitSum atomic.Int64                        // total wait, in nanoseconds
}

// WaitBuckets are the upper bounds of the wxgate_sign_wait_seconds histogram.
var WaitBuckets = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// initialSignCost is the slot hold time assumed before any was measured (RSA-2048, one core).
const initialSignCost = time.Millisecond

// NewSlots makes n slots whose waiters wait at most maxWait.
func NewSlots(n int, maxWait time.Duration) *Slots {
	s := &Slots{slots: make(chan struct{}, n), maxWait: maxWait}
	s.cost.Store(int64(initialSignCost))
	return s
}

// The overload errors of Acquire: the queue was too long to join, or the wait ran out. Their
// text is written for the app.
var (
	ErrQueueFull = errors.New("every RSA signing slot is busy and the signatures queued ahead would take longer than [server] sign_max_wait; retry shortly")
	ErrWaitOver  = errors.New("every RSA signing slot stayed busy for as long as [server] sign_max_wait allows; retry shortly")
)

// Acquire takes a slot or reports overload (ErrQueueFull, ErrWaitOver).
func (s *Slots) Acquire() error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	ahead := s.waiting.Add(1)
	defer s.waiting.Add(-1)
	// Half the bound: the estimate leaves out the wait for a CPU once a slot is free, which on a
	// saturated machine is of the same order; an admitted request then rarely times out.
	if expected := time.Duration(ahead * s.cost.Load() / int64(cap(s.slots))); expected > s.maxWait/2 {
		return ErrQueueFull
	}
	start := time.Now()
	defer func() { s.recordWait(time.Since(start)) }()
	t := time.NewTimer(s.giveUpAfter())
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrWaitOver
	}
}

// giveUpAfter is how long a waiter waits for a slot before its 503: nine tenths of
// sign_max_wait, so that the wake-up after the timer fires, which on a saturated machine takes
// milliseconds, still ends inside the bound (measured: up to 5 ms past a 250 ms timer).
func (s *Slots) giveUpAfter() time.Duration { return s.maxWait - s.maxWait/10 }

// recordWait counts a wait for a slot (the /metrics histogram wxgate_sign_wait_seconds) and keeps
// the longest (the gauge wxgate_sign_wait_max_seconds).
func (s *Slots) recordWait(d time.Duration) {
	i := 0
	for i < len(WaitBuckets) && d > WaitBuckets[i] {
		i++
	}
	s.waits[i].Add(1)
	s.waitSum.Add(int64(d))
	for {
		old := s.maxSeen.Load()
		if int64(d) <= old || s.maxSeen.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// maxCostStep bounds one slot hold's weight in the average: a hold counts for at most this many
// times the average so far. A single hold stretched by a stall (the hypervisor taking the CPU, a
// collection) then moves the estimate by at most 3/8 of itself instead of refusing the queue
// behind it; a lasting slowdown still shows within a few holds. (Seen in a bench run with 7.5%
// steal: 14 of 4214 closed-loop orders refused.)
const maxCostStep = 4

// Release frees a slot that was held for d.
func (s *Slots) Release(d time.Duration) {
	<-s.slots
	// An exponentially weighted average (1/8 weight to the newest); a lost update between two
	// concurrent releases only delays the average by one sample.
	old := s.cost.Load()
	sample := min(int64(d), maxCostStep*old)
	s.cost.Store(old + (sample-old)/8)
}

// WaitStats are the waits for a slot so far: counts by WaitBuckets (one more, last, for the
// waits longer than all), their sum and the longest.
func (s *Slots) WaitStats() (counts []uint64, sum, longest time.Duration) {
	counts = make([]uint64, len(s.waits))
	for i := range s.waits {
		counts[i] = s.waits[i].Load()
	}
	return counts, time.Duration(s.waitSum.Load()), time.Duration(s.maxSeen.Load())
}
