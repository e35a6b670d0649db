package signing

import (
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// testGovernor returns a governor raising GOMAXPROCS by two while signing, whose changes are
// sent on the returned channel; GOMAXPROCS is restored when the test ends.
func testGovernor(t *testing.T, idleAfter time.Duration) (*Governor, chan int) {
	t.Helper()
	base := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(base) })
	p := NewGovernor(base+2, slog.New(slog.DiscardHandler))
	if p == nil {
		t.Fatal("no governor for a raise above the current GOMAXPROCS")
	}
	p.idleAfter = idleAfter
	changes := make(chan int, 16)
	p.changed = func(n int) { changes <- n }
	return p, changes
}

// TestProcsGovernorFollowsSigning: GOMAXPROCS is raised while any signature runs and lowered
// only once none does.
func TestProcsGovernorFollowsSigning(t *testing.T) {
	p, _ := testGovernor(t, time.Hour)
	base := p.base
	steps := []struct {
		do   func()
		what string
		want int
	}{
		{p.begin, "first signature begins", base + 2},
		{p.begin, "second signature begins", base + 2},
		{p.end, "one of two ends", base + 2},
		{p.settle, "idle check with one running", base + 2},
		{p.end, "the last ends (countdown started)", base + 2},
		{p.settle, "idle check with none running", base},
		{p.settle, "idle check again", base},
		{p.begin, "signing again", base + 2},
		{p.end, "and ends", base + 2},
	}
	for _, s := range steps {
		s.do()
		if got := runtime.GOMAXPROCS(0); got != s.want {
			t.Fatalf("%s: GOMAXPROCS %d, want %d", s.what, got, s.want)
		}
	}
}

// TestProcsGovernorLowersWhenIdle: the countdown the last signature starts lowers GOMAXPROCS by
// itself; after stop nothing raises it again.
func TestProcsGovernorLowersWhenIdle(t *testing.T) {
	p, changes := testGovernor(t, time.Millisecond)
	p.begin()
	if n := <-changes; n != p.base+2 {
		t.Fatalf("raised to %d, want %d", n, p.base+2)
	}
	p.end()
	select {
	case n := <-changes:
		if n != p.base {
			t.Fatalf("lowered to %d, want %d", n, p.base)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GOMAXPROCS was not lowered after signing went idle")
	}
	p.Stop()
	p.begin()
	p.end()
	if got := runtime.GOMAXPROCS(0); got != p.base {
		t.Fatalf("after stop a signature raised GOMAXPROCS to %d", got)
	}
}

// TestProcsGovernorOnlyRaises: no governor when the raise would not be one; a nil governor and
// signatures through it still work.
func TestProcsGovernorOnlyRaises(t *testing.T) {
	cur := runtime.GOMAXPROCS(0)
	for _, n := range []int{0, 1, cur} {
		if p := NewGovernor(n, slog.New(slog.DiscardHandler)); p != nil && n <= cur {
			t.Errorf("NewGovernor(%d) at GOMAXPROCS %d: a governor, want none", n, cur)
		}
	}
	var p *Governor
	p.begin()
	p.end()
	p.Stop()
	if got := runtime.GOMAXPROCS(0); got != cur {
		t.Fatalf("a nil governor changed GOMAXPROCS to %d", got)
	}
}

// TestSignWorkersRaiseProcs: a signature through the workers runs with GOMAXPROCS raised.
func TestSignWorkersRaiseProcs(t *testing.T) {
	m, _ := testMerchant(t)
	p, changes := testGovernor(t, time.Hour)
	w := NewWorkers(1, p, false)
	defer w.Stop()
	if _, err := w.Sign(m, nil, []byte("msg")); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-changes:
		if n != p.base+2 {
			t.Fatalf("signing set GOMAXPROCS %d, want %d", n, p.base+2)
		}
	default:
		t.Fatal("a signature did not raise GOMAXPROCS")
	}
	if p.active != 0 {
		t.Fatalf("%d signatures still counted running after it returned", p.active)
	}
}
