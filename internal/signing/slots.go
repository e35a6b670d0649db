package signing

import (
	"errors"
	"sync/atomic"
	"time"
)

// Slots caps concurrent RSA signatures: RSA-2048 costs about a millisecond of CPU, so more
// signatures at once than cores only queue. A request that finds every slot busy joins a FIFO
// queue when the signatures queued ahead of it should finish within three quarters of [server]
// sign_max_wait (the estimate: requests waiting × how long a slot is held ÷ slots), or within
// half of it for as long as a request was refused less than a bound's worth of signatures ago;
// otherwise it is answered 503 at once. A waiter that still has no slot at nine tenths of
// sign_max_wait is answered 503 then, so no request waits longer than sign_max_wait for a slot.
//
// The bound is meant to be long (1 s by default): a closed loop of clients, each waiting for its
// answer before sending the next request, never queues more requests than there are clients, so
// with a long bound every one of them waits its turn, up to three quarters of it. Only an offer
// that outruns the signing for good (an open loop) grows the queue to that limit; its first
// refusal then lowers the limit to half the bound, where it stays while the refusals go on: the
// queue the overload keeps is then one whose requests get their slot even when the slots turn out
// up to 1.8 times slower than measured while they wait (a stall, the machine's load rising),
// against 1.2 times at three quarters. The estimate uses how long a slot is held, from taking it
// to giving it back: on a saturated machine that is the signature plus the waits for the
// lower-priority signing thread and for the request's goroutine to run again, and it is what
// decides how soon the next waiter gets the slot. A waiting request costs a goroutine and its
// connection's buffers (tens of KB); their number is bounded by the queue the estimate admits
// (sign_max_wait × 3/4 × slots ÷ the hold time: about 1000 at 1 s on 2 slots of 1.5 ms) and, in
// any case, by [server] max_conns.
type Slots struct {
	slots   chan struct{}
	maxWait time.Duration
	waiting atomic.Int64                        // requests waiting for a slot now
	cost    atomic.Int64                        // moving average of how long a slot is held, in nanoseconds
	maxSeen atomic.Int64                        // the longest wait for a slot so far, in nanoseconds
	waits   [len(WaitBuckets) + 1]atomic.Uint64 // waits by bucket (the last: longer than all)
	waitSum atomic.Int64                        // total wait, in nanoseconds
	// releases counts the slots given back; refusedAt is its value when a request was last
	// refused (at once or after waiting), -1 before any.
	releases, refusedAt atomic.Int64
	// timer, when set (tests), replaces the waiter's give-up timer: it is given the wait
	// allowed and returns the channel that ends the wait and a function that releases it.
	timer func(time.Duration) (<-chan time.Time, func())
}

// WaitBuckets are the upper bounds of the wxgate_sign_wait_seconds histogram: from a
// millisecond (a signature or two ahead) to several seconds, so that every sign_max_wait an
// operator would choose up to that falls on or near a bucket (1 s, the default, is one).
var WaitBuckets = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// initialSignCost is the slot hold time assumed before any was measured (RSA-2048, one core).
const initialSignCost = time.Millisecond

// NewSlots makes n slots whose waiters wait at most maxWait.
func NewSlots(n int, maxWait time.Duration) *Slots {
	s := &Slots{slots: make(chan struct{}, n), maxWait: maxWait}
	s.cost.Store(int64(initialSignCost))
	s.refusedAt.Store(-1)
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
	if !s.admits(ahead) {
		s.noteRefusal()
		return ErrQueueFull
	}
	start := time.Now()
	defer func() { s.recordWait(time.Since(start)) }()
	over, stop := s.giveUpTimer()
	defer stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-over:
		s.noteRefusal()
		return ErrWaitOver
	}
}

// expectedWait is the wait of a request with ahead requests waiting, itself included: a slot
// handed to a waiter is handed to the longest waiting (Go wakes the senders blocked on a
// channel in order), so it gets a slot after ahead releases, one every hold time ÷ slots.
func (s *Slots) expectedWait(ahead int64) time.Duration {
	return time.Duration(ahead * s.cost.Load() / int64(cap(s.slots)))
}

// admitWithin is the longest expected wait a request joins the queue for: three quarters of
// sign_max_wait, so that a closed loop of clients has most of the bound to queue in, and an
// admitted request still gets its slot before giveUpAfter when the slots turn out up to 1.2 times
// slower than the estimate while it waits; half of it while refusals go on (refusedLately), where
// that margin is 1.8 times.
func (s *Slots) admitWithin() time.Duration {
	if s.refusedLately() {
		return s.maxWait / 2
	}
	return s.maxWait - s.maxWait/4
}

// noteRefusal records that a request was refused now (refusedLately).
func (s *Slots) noteRefusal() { s.refusedAt.Store(s.releases.Load()) }

// refusedLately says whether a request was refused less than sign_max_wait's worth of
// signatures ago (counted in releases, at the hold time measured now): long enough for the
// queue admitted before that refusal to be served, so that an overload is met at half the bound
// once the queue it built has drained, and a closed loop has the three quarters back a bound
// after the overload stopped.
func (s *Slots) refusedLately() bool {
	at := s.refusedAt.Load()
	if at < 0 {
		return false
	}
	since := s.releases.Load() - at
	return since < int64(s.maxWait)*int64(cap(s.slots))/max(s.cost.Load(), 1)
}

// admits says whether a request with ahead requests waiting (itself included) joins the queue.
func (s *Slots) admits(ahead int64) bool { return s.expectedWait(ahead) <= s.admitWithin() }

// giveUpAfter is how long a waiter waits for a slot before its 503: nine tenths of
// sign_max_wait, so that the wake-up after the timer fires, which on a saturated machine takes
// milliseconds, still ends inside the bound (measured: up to 5 ms past a 250 ms timer).
func (s *Slots) giveUpAfter() time.Duration { return s.maxWait - s.maxWait/10 }

// giveUpTimer starts a waiter's giveUpAfter timer.
func (s *Slots) giveUpTimer() (<-chan time.Time, func()) {
	if s.timer != nil {
		return s.timer(s.giveUpAfter())
	}
	t := time.NewTimer(s.giveUpAfter())
	return t.C, func() { t.Stop() }
}

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
// collection) then moves the estimate by at most 3/32 of itself instead of refusing the queue
// behind it; a lasting slowdown still shows within a few dozen holds. (Seen in a bench run with
// 7.5% steal and a weight of 1/8: 14 of 4214 closed-loop orders refused.)
const maxCostStep = 4

// costWeight is the inverse weight of the newest hold in the average. An admitted request waits
// for hundreds of holds (half of a 1 s bound is about 700 holds of 1.5 ms on 2 slots), so the
// estimate should be their mean, not the last few: over 20,000 holds spread ±50% around their
// mean, an average weighting the newest 1/32 stays within 13% of it (1/8: 27%). That matters
// most to a closed loop near the edge, which a high estimate refuses; a lasting change is still
// learnt within about a hundred holds, a fraction of the wait.
const costWeight = 32

// Release frees a slot that was held for d.
func (s *Slots) Release(d time.Duration) {
	<-s.slots
	s.releases.Add(1)
	// An exponentially weighted average; a lost update between two concurrent releases only
	// delays the average by one sample.
	old := s.cost.Load()
	sample := min(int64(d), maxCostStep*old)
	s.cost.Store(old + (sample-old)/costWeight)
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
