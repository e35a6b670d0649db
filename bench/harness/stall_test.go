package harness

import (
	"testing"
	"time"
)

// TestStallProbeCountsOversleeps checks that the probe records at most one oversleep per tick
// of the time it ran, at least one, and none after end.
func TestStallProbeCountsOversleeps(t *testing.T) {
	p := startStallProbe()
	time.Sleep(50 * time.Millisecond) // the span measured, not a synchronisation
	h := p.end()
	n := h.Count()
	if n == 0 || n > 50 {
		t.Fatalf("%d oversleeps recorded in 50 ms of 1 ms sleeps, want 1..50", n)
	}
	if h.Quantile(0) < 0 {
		t.Fatalf("a negative oversleep: %v", h.Quantile(0))
	}
	time.Sleep(5 * time.Millisecond)
	if h.Count() != n {
		t.Fatalf("the probe recorded after end: %d, then %d", n, h.Count())
	}
}
