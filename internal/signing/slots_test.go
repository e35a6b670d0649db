package signing

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
)

// defaultBound is the sign_max_wait of a config that sets none: the tests hold the default to
// its promises (a closed loop of 256 clients waits its turn).
const defaultBound = policies.DefaultSignMaxWait

// manualTimers replaces the waiters' give-up timers of s: each records the wait it was given
// and fires only when the test closes its channel (never, unless asked), so no test depends on
// how fast the machine is. admitted, when not nil, hears of every waiter that joined the queue.
type manualTimers struct {
	mu       sync.Mutex
	given    []time.Duration
	fire     []chan time.Time
	admitted chan struct{}
}

func (m *manualTimers) install(s *Slots) {
	s.timer = func(d time.Duration) (<-chan time.Time, func()) {
		c := make(chan time.Time)
		m.mu.Lock()
		m.given = append(m.given, d)
		m.fire = append(m.fire, c)
		m.mu.Unlock()
		if m.admitted != nil {
			m.admitted <- struct{}{}
		}
		return c, func() {}
	}
}

// TestSignSlotsPolicyAtEveryBound: whatever sign_max_wait is, a request is admitted only for an
// expected wait well inside the time it is given, and gives up before the bound.
func TestSignSlotsPolicyAtEveryBound(t *testing.T) {
	for _, bound := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond, defaultBound, 5 * time.Second} {
		s := NewSlots(2, bound)
		giveUp := s.giveUpAfter()
		if giveUp >= bound {
			t.Errorf("bound %v: a waiter gives up after %v, not before the bound", bound, giveUp)
		}
		if bound-giveUp < bound/10 {
			t.Errorf("bound %v: gives up %v before it, leaving no tenth to wake up in", bound, bound-giveUp)
		}
		// No refusal yet: three quarters, and an admitted request still gets its slot in time
		// when the slots are 1.2 times slower than measured while it waits.
		if admit := s.admitWithin(); admit < bound*3/4 || admit*12/10 > giveUp {
			t.Errorf("bound %v: admitted for an expected %v, gives up after %v: want 3/4 of the bound, 1.2x of room", bound, admit, giveUp)
		}
		// While refusals go on: half, and 1.8 times of room.
		s.refusedAt.Store(s.releases.Load())
		if admit := s.admitWithin(); admit > bound/2 || admit*18/10 > giveUp {
			t.Errorf("bound %v, refusing: admitted for an expected %v, gives up after %v: want half the bound, 1.8x of room", bound, admit, giveUp)
		}
	}
}

// TestSignSlotsRefusalHalvesTheQueueForABound: the first refusal lowers the queue a request may
// join from three quarters of the bound to half, until a bound's worth of signatures (at the
// hold time measured) has been done since the last refusal.
func TestSignSlotsRefusalHalvesTheQueueForABound(t *testing.T) {
	const hold = 2 * time.Millisecond
	s := NewSlots(2, defaultBound)
	s.cost.Store(int64(hold))
	hard := int64(defaultBound * 3 / 4 * 2 / hold) // 750 requests of 2 ms on 2 slots
	soft := int64(defaultBound / 2 * 2 / hold)     // 500
	if !s.admits(hard) || s.admits(hard+1) {
		t.Fatalf("before any refusal: want a queue of %d admitted, not %d", hard, hard+1)
	}
	for range 2 {
		if err := s.Acquire(); err != nil {
			t.Fatal(err)
		}
	}
	s.waiting.Store(hard) // a queue as long as three quarters of the bound
	if err := s.Acquire(); err != ErrQueueFull {
		t.Fatalf("past three quarters of the bound: got %v, want an immediate 503", err)
	}
	if s.admits(soft+1) || !s.admits(soft) {
		t.Fatalf("after a refusal: want a queue of %d admitted, not %d", soft, soft+1)
	}
	bound := int64(defaultBound * 2 / hold) // a bound's worth of signatures: 1000
	for range bound - 1 {
		s.Release(hold)
		s.slots <- struct{}{}
	}
	if s.admits(soft + 1) {
		t.Fatalf("%d signatures after the refusal: the limit is back to three quarters too early", bound-1)
	}
	s.Release(hold)
	if !s.admits(hard) {
		t.Fatalf("%d signatures after the refusal: the limit is still half the bound", bound)
	}
}

// TestSignSlotsClosedLoopWaitsItsTurn: N clients in a closed loop (each sends its next request
// once the previous one signed) on 2 slots with the default bound. While the queue they make
// (at most N - 2) is expected to finish within three quarters of the bound, every request of every client
// is admitted and served in turn; when the holds are slow enough that it is not, the requests
// past that queue are refused at once and the others served. The clients arrive one after the
// other, then go round four times.
func TestSignSlotsClosedLoopWaitsItsTurn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clients int
		hold    time.Duration
		refused int // when the queue first forms
	}{
		{"256 clients, 1.2 ms holds", 256, 1200 * time.Microsecond, 0},
		{"256 clients, 2.4 ms holds", 256, 2400 * time.Microsecond, 0},
		{"256 clients, 5.5 ms holds", 256, 5500 * time.Microsecond, 0}, // 255 × 5.5 / 2 = 701 ms
		{"64 clients, 20 ms holds", 64, 20 * time.Millisecond, 0},      // 63 × 20 / 2 = 630 ms
		// 254 × 7 / 2 = 889 ms: the first 214 waiters (749 ms) are queued, 40 refused.
		{"256 clients, 7 ms holds", 256, 7 * time.Millisecond, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSlots(2, defaultBound)
			timers := &manualTimers{admitted: make(chan struct{})}
			timers.install(s)
			s.cost.Store(int64(tc.hold)) // as measured; every Release below keeps it there
			var refused, served atomic.Int64
			firstOutcome := make(chan struct{}, tc.clients) // a client's first Acquire returned
			holding := make(chan chan struct{})             // a client with a slot, and how to tell it to release
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range tc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					release := make(chan struct{})
					for first := true; ; first = false {
						err := s.Acquire()
						if err != nil {
							refused.Add(1) // counted before the outcome is told: the count below is exact
						}
						if first {
							firstOutcome <- struct{}{}
						}
						if err != nil {
							return
						}
						served.Add(1)
						select {
						case holding <- release:
						case <-stop:
							s.Release(tc.hold)
							return
						}
						<-release
						s.Release(tc.hold)
					}
				}()
				select { // queued, or answered at once (a free slot, or refused)
				case <-timers.admitted:
				case <-firstOutcome:
				}
			}
			if n, want := s.waiting.Load(), int64(tc.clients-2-tc.refused); n != want {
				t.Fatalf("%d requests queued, want %d", n, want)
			}
			if n := refused.Load(); n != int64(tc.refused) {
				t.Fatalf("%d requests refused as the queue formed, want %d", n, tc.refused)
			}
			// Four rounds of every remaining client: each signature done lets the longest waiter
			// in, and its client queues its next request at the back.
			go func() {
				for range timers.admitted {
				}
			}()
			for range 4 * (tc.clients - tc.refused) {
				release := <-holding
				release <- struct{}{}
			}
			close(stop)
			// Unblock the waiters still queued: let every slot go until all clients are done.
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
		drain:
			for {
				select {
				case release := <-holding:
					release <- struct{}{}
				case <-done:
					break drain
				}
			}
			close(timers.admitted)
			// At the edge (the slow holds), a client queueing again just as the waiter ahead takes
			// its slot may be refused too; below it, nothing is.
			if n := refused.Load(); tc.refused == 0 && n != 0 {
				t.Errorf("%d requests refused, want none", n)
			}
			if n := served.Load(); n < int64(4*(tc.clients-tc.refused)) {
				t.Errorf("%d requests served, want at least %d", n, 4*(tc.clients-tc.refused))
			}
			for _, d := range timers.given {
				if d >= defaultBound {
					t.Fatalf("a waiter was allowed %v, not less than the bound %v", d, defaultBound)
				}
			}
		})
	}
}

// TestSignSlotsOpenLoopOverload drives the admission rule with a queue of its own (first in,
// first out, as Acquire's, refusals noted as Acquire notes them): two requests arrive for every
// signature done, an offer twice what the slots serve, with hold times spread around their mean
// (seeded, so the same every run) and fed to the estimate as Release does. The queue grows to
// three quarters of the bound's worth of signatures; from the first refusal on it is held at
// half, and the requests past it are refused at once; no admitted request waits past the time
// it is given, even when, the queue held at half, every hold turns out 1.6 times longer than
// those the estimate learns.
func TestSignSlotsOpenLoopOverload(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold time.Duration // mean hold time
		slow float64       // from step slowFrom, the holds the waiters meet ÷ the holds the estimate learns
	}{
		{"2 slots, 1.5 ms holds", 1500 * time.Microsecond, 1},
		{"2 slots, 3 ms holds", 3 * time.Millisecond, 1},
		{"2 slots, 1.5 ms holds, then 1.6x slower than learnt", 1500 * time.Microsecond, 1.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const slots, steps, slowFrom = 2, 20000, 5000
			s := NewSlots(slots, defaultBound)
			rng := rand.New(rand.NewPCG(1, 2))
			learn := func(d time.Duration) { // what Release does, with a slot that is free
				s.slots <- struct{}{}
				s.Release(d)
			}
			var queue []time.Duration // when each waiter arrived
			var now time.Duration     // time in the model: the holds done so far ÷ slots
			var refused, admitted, maxQueue, heldQueue int
			var longest time.Duration
			for step := range steps {
				for range 2 {
					if s.admits(int64(len(queue) + 1)) {
						queue = append(queue, now)
						admitted++
						maxQueue = max(maxQueue, len(queue))
						if step >= slowFrom {
							heldQueue = max(heldQueue, len(queue))
						}
					} else {
						s.noteRefusal()
						refused++
					}
				}
				hold := time.Duration(float64(tc.hold) * (0.5 + rng.Float64())) // 0.5 to 1.5 × the mean
				learn(hold)
				if step >= slowFrom {
					hold = time.Duration(float64(hold) * tc.slow)
				}
				now += hold / slots
				if len(queue) > 0 {
					longest = max(longest, now-queue[0])
					queue = queue[1:]
				}
			}
			if longest >= s.giveUpAfter() {
				t.Errorf("a waiter waited %v, past the %v it is given", longest, s.giveUpAfter())
			}
			// Holds spread ±50% move the estimate, and so the queue, by up to 15%.
			if most := int(defaultBound*3/4*slots/tc.hold) * 115 / 100; maxQueue > most {
				t.Errorf("longest queue %d, past three quarters of the bound at %v a hold (%d)", maxQueue, tc.hold, most)
			}
			if want := int(defaultBound / 2 * slots / tc.hold); heldQueue > want*115/100 || heldQueue < want*85/100 {
				t.Errorf("queue held at %d while refusing, want about %d (half the bound at %v a hold)", heldQueue, want, tc.hold)
			}
			// Served at the slots' rate, the rest refused at once: about half of the offer.
			if refused < steps-maxQueue-1 || admitted > steps+maxQueue {
				t.Errorf("%d admitted, %d refused of %d offered for %d served", admitted, refused, 2*steps, steps)
			}
			t.Logf("longest queue %d, held at %d, longest wait %v; %d admitted, %d refused at once", maxQueue, heldQueue, longest, admitted, refused)
		})
	}
}

// TestSignSlotsAnswerOverload fills every signing slot: a waiter whose time runs out is answered
// ErrWaitOver (a 503 for the app), its wait is counted, and a slot released is usable again.
func TestSignSlotsAnswerOverload(t *testing.T) {
	s := NewSlots(2, defaultBound)
	timers := &manualTimers{admitted: make(chan struct{})}
	timers.install(s)
	for i := 0; i < 2; i++ {
		if err := s.Acquire(); err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
	}
	got := make(chan error)
	go func() { got <- s.Acquire() }()
	<-timers.admitted
	if g := timers.given[0]; g != s.giveUpAfter() || g >= defaultBound {
		t.Fatalf("a waiter was allowed %v; want giveUpAfter %v, before the bound", g, s.giveUpAfter())
	}
	close(timers.fire[0])
	if err := <-got; err != ErrWaitOver {
		t.Fatalf("full slots, time out: got %v, want ErrWaitOver", err)
	}
	counts, _, _ := s.WaitStats()
	var counted uint64
	for _, c := range counts {
		counted += c
	}
	if counted != 1 {
		t.Fatalf("wait histogram holds %d waits, want the one", counted)
	}
	if n := s.waiting.Load(); n != 0 {
		t.Fatalf("%d waiters left behind", n)
	}
	s.Release(time.Millisecond)
	if err := s.Acquire(); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}

// TestSignSlotsRefuseAQueueTooLongAtOnce: when the signatures already queued would outlast
// three quarters of sign_max_wait, a request is refused without waiting at all (no timer started).
func TestSignSlotsRefuseAQueueTooLongAtOnce(t *testing.T) {
	s := NewSlots(1, time.Hour)
	started := 0
	s.timer = func(time.Duration) (<-chan time.Time, func()) { // a wait would end at once
		started++
		c := make(chan time.Time)
		close(c)
		return c, func() {}
	}
	if err := s.Acquire(); err != nil {
		t.Fatal(err)
	}
	s.cost.Store(int64(46 * time.Minute))
	err := s.Acquire()
	if err != ErrQueueFull {
		t.Fatalf("queue longer than three quarters of the bound: got %v, want an immediate 503", err)
	}
	if started != 0 {
		t.Fatalf("the refused request started %d timers", started)
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
	for range 256 {
		if err := s.Acquire(); err != nil {
			t.Fatal(err)
		}
		s.Release(3 * time.Millisecond)
	}
	if c := time.Duration(s.cost.Load()); c < 2900*time.Microsecond || c > 3*time.Millisecond {
		t.Fatalf("average cost %v after 256 signatures of 3ms", c)
	}
}

// TestSignSlotsShrugOffOneStall: one hold stretched 200 times (a stall) moves the estimate by
// at most 3/32, so the queue behind it is not refused; holds that stay 10 times longer are
// learnt within a hundred.
func TestSignSlotsShrugOffOneStall(t *testing.T) {
	s := NewSlots(1, time.Second)
	hold := func(d time.Duration) {
		if err := s.Acquire(); err != nil {
			t.Fatal(err)
		}
		s.Release(d)
	}
	for range 256 {
		hold(time.Millisecond)
	}
	hold(200 * time.Millisecond)
	if c := time.Duration(s.cost.Load()); c > 1094*time.Microsecond {
		t.Fatalf("one 200 ms hold after 1 ms ones: average %v, want at most 1.094 ms", c)
	}
	for range 100 {
		hold(10 * time.Millisecond)
	}
	if c := time.Duration(s.cost.Load()); c < 9*time.Millisecond || c > 10*time.Millisecond {
		t.Fatalf("after 100 holds of 10 ms: average %v, want about 10 ms", c)
	}
}
