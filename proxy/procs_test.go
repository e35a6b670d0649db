package proxy

import (
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// testGovernor returns a governor raising GOMAXPROCS by two while signing, whose changes are
// sent on the returned channel; GOMAXPROCS is restored when the test ends.
func testGovernor(t *testing.T, idleAfter time.Duration) (*procsGovernor, chan int) {
	t.Helper()
	base := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(base) })
	p := newProcsGovernor(base+2, slog.New(slog.DiscardHandler))
	if p == nil {
		t.Fatal("no governor for a raise above the current GOMAXPROCS")
	}
	p.idleAfter = idleAfter
	changes := make(chan int, 16)
	p.changed = func(n int) { changes <- n }
	return p, changes
}

// TestProcsGovernorRaisesOnDemandBesideSigning: signatures alone leave GOMAXPROCS as it is;
// work that must not wait behind them raises it, but only while a signature runs, and it comes
// down only once no such work came for idleAfter.
func TestProcsGovernorRaisesOnDemandBesideSigning(t *testing.T) {
	p, _ := testGovernor(t, time.Hour)
	base := p.base
	longAgo := func() { p.lastDemand.Store(time.Now().Add(-2 * p.idleAfter).UnixNano()) }
	steps := []struct {
		do   func()
		what string
		want int
	}{
		{p.demand, "demand with no signature running", base},
		{p.begin, "a signature begins", base},
		{p.begin, "a second one begins", base},
		{p.demand, "demand beside them", base + 2},
		{p.end, "one of them ends", base + 2},
		{p.settle, "idle check right after the demand", base + 2},
		{p.end, "the other ends", base + 2},
		{p.settle, "idle check, demand still recent", base + 2},
		{longAgo, "the demand is idleAfter old", base + 2},
		{p.settle, "idle check after idleAfter", base},
		{p.demand, "demand with no signature running again", base},
		{p.begin, "signing again", base},
		{p.demand, "and demand beside it", base + 2},
		{p.end, "it ends", base + 2},
	}
	for _, s := range steps {
		s.do()
		if got := runtime.GOMAXPROCS(0); got != s.want {
			t.Fatalf("%s: GOMAXPROCS %d, want %d", s.what, got, s.want)
		}
	}
}

// TestProcsGovernorLowersWhenIdle: the countdown a demand starts lowers GOMAXPROCS by itself;
// after stop nothing raises it again.
func TestProcsGovernorLowersWhenIdle(t *testing.T) {
	p, changes := testGovernor(t, time.Millisecond)
	p.begin()
	p.demand()
	if n := <-changes; n != p.base+2 {
		t.Fatalf("raised to %d, want %d", n, p.base+2)
	}
	select {
	case n := <-changes:
		if n != p.base {
			t.Fatalf("lowered to %d, want %d", n, p.base)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GOMAXPROCS was not lowered after the demand went idle")
	}
	p.stop()
	p.demand()
	p.end()
	if got := runtime.GOMAXPROCS(0); got != p.base {
		t.Fatalf("after stop a demand raised GOMAXPROCS to %d", got)
	}
}

// TestProcsGovernorOnlyRaises: no governor when the raise would not be one; a nil governor and
// signatures through it still work.
func TestProcsGovernorOnlyRaises(t *testing.T) {
	cur := runtime.GOMAXPROCS(0)
	for _, n := range []int{0, 1, cur} {
		if p := newProcsGovernor(n, slog.New(slog.DiscardHandler)); p != nil && n <= cur {
			t.Errorf("newProcsGovernor(%d) at GOMAXPROCS %d: a governor, want none", n, cur)
		}
	}
	var p *procsGovernor
	p.begin()
	p.demand()
	p.end()
	p.stop()
	if got := runtime.GOMAXPROCS(0); got != cur {
		t.Fatalf("a nil governor changed GOMAXPROCS to %d", got)
	}
}

// TestSignWorkersCountSignaturesForTheGovernor: a signature through the workers is no longer
// counted running once it returned, and by itself it leaves GOMAXPROCS alone.
func TestSignWorkersCountSignaturesForTheGovernor(t *testing.T) {
	m, _ := testMerchant(t)
	p, changes := testGovernor(t, time.Hour)
	for _, inline := range []bool{false, true} {
		w := newSignWorkers(1, p, inline)
		if _, err := w.sign(m, nil, []byte("msg")); err != nil {
			t.Fatal(err)
		}
		if n := p.active.Load(); n != 0 {
			t.Fatalf("inline %v: %d signatures still counted running after it returned", inline, n)
		}
		select {
		case n := <-changes:
			t.Fatalf("inline %v: a signature alone set GOMAXPROCS %d", inline, n)
		default:
		}
		w.stop()
	}
}

// TestDemandDuringASignatureRaises: a signature through the workers is counted running while it
// runs, so that demand beside it raises GOMAXPROCS. Demand is reported in a loop while
// signatures run, until one lands during a signature (each takes about a millisecond).
func TestDemandDuringASignatureRaises(t *testing.T) {
	m, _ := testMerchant(t)
	for _, inline := range []bool{false, true} {
		p, changes := testGovernor(t, time.Hour)
		w := newSignWorkers(1, p, inline)
		raised := false
		for try := 0; try < 100 && !raised; try++ {
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := w.sign(m, nil, []byte("msg")); err != nil {
					t.Error(err)
				}
			}()
			for waiting := true; waiting; {
				select {
				case <-done:
					waiting = false
				default:
					p.demand()
				}
			}
			select {
			case n := <-changes:
				raised = n == p.base+2
			default:
			}
		}
		w.stop()
		if !raised {
			t.Fatalf("inline %v: demand during 100 signatures never raised GOMAXPROCS", inline)
		}
		runtime.GOMAXPROCS(p.base)
	}
}
