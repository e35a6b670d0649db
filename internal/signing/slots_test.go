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
		admit, giveUp := s.admitWithin(), s.giveUpAfter()
		if giveUp >= bound {
			t.Errorf("bound %v: a waiter gives up after %v, not before the bound", bound, giveUp)
		}
		if bound-giveUp < bound/10 {
			t.Errorf("bound %v: gives up %v before it, leaving no tenth to wake up in", bound, bound-giveUp)
		}
		// An admitted request must still get its slot in time when the slots are 1.8 times
		// slower than measured while it waits.
		if admit*18/10 > giveUp {
			t.Errorf("bound %v: admitted for an expected %v, gives up after %v: under 1.8x of room", bound, admit, giveUp)
		}
	}
}

// TestSignSlotsClosedLoopWaitsItsTurn: N clients in a closed loop (each sends its next request
// once the previous one signed) on 2 slots with the default bound. While the queue they make
// (at most N - 2) is expected to finish within half the bound, every request of every client
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
		{"256 clients, 3.9 ms holds", 256, 3900 * time.Microsecond, 0}, // 255 × 3.9 / 2 = 497 ms
		{"64 clients, 15 ms holds", 64, 15 * time.Millisecond, 0},      // 63 × 15 / 2 = 473 ms
		// 254 × 5 / 2 = 635 ms: the first 200 waiters (500 ms) are queued, 54 refused.
		{"256 clients, 5 ms holds", 256, 5 * time.Millisecond, 54},
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
						if first {
							firstOutcome <- struct{}{}
						}
						if err != nil {
							refused.Add(1)
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
// first out, as Acquire's): two requests arrive for every signature done, an offer twice what
// the slots serve, with hold times spread around their mean (seeded, so the same every run)
// and fed to the estimate as Release does. The queue grows to half the bound's worth of
// signatures and stays there; the requests past it are refused at once; and no admitted
// request waits past the time it is given, even when every hold turns out 1.6 times longer than
// those the estimate learnt while the request was queued.
func TestSignSlotsOpenLoopOverload(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold time.Duration // mean hold time
		slow float64       // the holds the waiters meet ÷ the holds the estimate learns
	}{
		{"2 slots, 1.5 ms holds", 1500 * time.Microsecond, 1},
		{"2 slots, 3 ms holds", 3 * time.Millisecond, 1},
		{"2 slots, 1.5 ms holds, 1.6x slower than learnt", 1500 * time.Microsecond, 1.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const slots, steps = 2, 20000
			s := NewSlots(slots, defaultBound)
			rng := rand.New(rand.NewPCG(1, 2))
			learn := func(d time.Duration) { // what Release does, with a slot that is free
				s.slots <- struct{}{}
				s.Release(d)
			}
			var queue []time.Duration // when each waiter arrived
			var now time.Duration     // time in the model: the holds done so far ÷ slots
			var refused, admitted int
			var longest time.Duration
			maxQueue := 0
			for range steps {
				for range 2 {
					if s.admits(int64(len(queue) + 1)) {
						queue = append(queue, now)
						admitted++
						maxQueue = max(maxQueue, len(queue))
					} else {
						refused++
					}
				}
				hold := time.Duration(float64(tc.hold) * (0.5 + rng.Float64())) // 0.5 to 1.5 × the mean
				learn(hold)
				now += time.Duration(float64(hold)*tc.slow) / slots
				if len(queue) > 0 {
					longest = max(longest, now-queue[0])
					queue = queue[1:]
				}
			}
			if longest >= s.giveUpAfter() {
				t.Errorf("a waiter waited %v, past the %v it is given", longest, s.giveUpAfter())
			}
			// The queue holds about half the bound's worth of signatures (holds spread ±50%
			// move the estimate, and so the queue, by up to a third).
			if want := int(s.admitWithin() * slots / tc.hold); maxQueue > want*4/3 || maxQueue < want*2/3 {
				t.Errorf("longest queue %d, want about %d (half the bound at %v a hold)", maxQueue, want, tc.hold)
			}
			// Served at the slots' rate, the rest refused at once: about half of the offer.
			if refused < steps-maxQueue-1 || admitted > steps+maxQueue {
				t.Errorf("%d admitted, %d refused of %d offered for %d served", admitted, refused, 2*steps, steps)
			}
			t.Logf("longest queue %d, longest wait %v; %d admitted, %d refused at once", maxQueue, longest, admitted, refused)
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
// half of sign_max_wait, a request is refused without waiting at all (no timer started).
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
	s.cost.Store(int64(31 * time.Minute))
	err := s.Acquire()
	if err != ErrQueueFull {
		t.Fatalf("queue longer than half the bound: got %v, want an immediate 503", err)
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
