package credentials

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokensStale(t *testing.T) {
	cases := []struct {
		name       string
		rejected   func(w *fakeWeChat, cached string) string
		rotate     bool // another party rotates the token at WeChat before Stale
		wantSame   bool // Stale returns the token that was cached
		wantNormal int  // normal fetches by Stale
		wantForce  int
	}{
		{
			name:     "cache already holds a different token",
			rejected: func(*fakeWeChat, string) string { return "ACCESS_TOKEN_OLD" },
			wantSame: true,
		},
		{
			name:       "normal fetch returns a new token",
			rejected:   func(_ *fakeWeChat, cached string) string { return cached },
			rotate:     true,
			wantNormal: 1,
		},
		{
			name:       "WeChat returns the rejected token: one force fetch",
			rejected:   func(_ *fakeWeChat, cached string) string { return cached },
			wantNormal: 1,
			wantForce:  1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock()
			w := newFakeWeChat(t, clk)
			tk := newTestTokens(w, clk, TokenOptions{})
			cached, err := tk.Get()
			if err != nil {
				t.Fatal(err)
			}
			rejected := c.rejected(w, cached)
			if c.rotate {
				w.rotate()
			}
			tok, err := tk.Stale(rejected)
			if err != nil {
				t.Fatalf("Stale: %v", err)
			}
			if (tok == cached) != c.wantSame || tok == rejected {
				t.Fatalf("Stale = %q (cached %q, rejected %q)", tok, cached, rejected)
			}
			if got, _ := tk.Get(); got != tok {
				t.Fatalf("Get after Stale = %q, want %q", got, tok)
			}
			n, f := w.counts()
			if n-1 != c.wantNormal || f != c.wantForce {
				t.Fatalf("Stale fetched normal=%d force=%d, want %d, %d", n-1, f, c.wantNormal, c.wantForce)
			}
			if s := tk.Status(); s.ForceRefreshes != c.wantForce {
				t.Fatalf("status = %+v", s)
			}
		})
	}
}

func TestTokensStaleSingleFlight(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	tk := newTestTokens(w, clk, TokenOptions{})
	rejected, err := tk.Get()
	if err != nil {
		t.Fatal(err)
	}

	release := w.hold()
	const callers = 100
	done := make(chan struct{})
	var toks []string
	var errs []error
	go func() {
		toks, errs = getAll(callers, func() (string, error) { return tk.Stale(rejected) })
		close(done)
	}()
	waitFor(t, "all Stale callers to wait", func() bool { return tk.waitingCount() == callers })
	release <- struct{}{} // the normal fetch (answers the rejected token again)
	release <- struct{}{} // the force fetch
	<-done
	for i := range callers {
		if errs[i] != nil || toks[i] == rejected || toks[i] != toks[0] {
			t.Fatalf("caller %d: %q, %v", i, toks[i], errs[i])
		}
	}
	if n, f := w.counts(); n != 2 || f != 1 {
		t.Fatalf("normal=%d force=%d, want 2 (Get + Stale) and 1", n, f)
	}
	w.unhold()
	// Late callers with the same rejected token are served from the cache.
	if tok, err := tk.Stale(rejected); err != nil || tok != toks[0] {
		t.Fatalf("late Stale = %q, %v", tok, err)
	}
	if n, f := w.counts(); n != 2 || f != 1 {
		t.Fatalf("late Stale fetched: normal=%d force=%d", n, f)
	}
}

// staleUntilLimited makes WeChat keep answering the cached token and calls Stale with it.
func staleOnce(t *testing.T, tk *Tokens) (string, error) {
	t.Helper()
	cur, err := tk.Get()
	if err != nil {
		t.Fatal(err)
	}
	return tk.Stale(cur)
}

func TestTokensForceLimits(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	tk := newTestTokens(w, clk, TokenOptions{ForceInterval: 30 * time.Second, ForcePerDay: 2})

	if _, err := staleOnce(t, tk); err != nil {
		t.Fatalf("first force: %v", err)
	}
	_, err := staleOnce(t, tk)
	if !errors.Is(err, ErrForceRefreshLimit) || !strings.Contains(err.Error(), "minimum interval") {
		t.Fatalf("force within ForceInterval: err = %v", err)
	}
	if !strings.Contains(err.Error(), "force-refresh limit reached") {
		t.Fatalf("error does not say the limit was reached: %v", err)
	}
	// Retrying callers get the same answer without further fetches.
	n0, _ := w.counts()
	for range 5 {
		if _, err2 := staleOnce(t, tk); err2 != err {
			t.Fatalf("repeated Stale: %v", err2)
		}
	}
	if n, _ := w.counts(); n != n0 {
		t.Fatalf("repeated Stale fetched %d times", n-n0)
	}

	clk.Advance(31 * time.Second)
	if _, err := staleOnce(t, tk); err != nil {
		t.Fatalf("second force: %v", err)
	}
	clk.Advance(31 * time.Second)
	if _, err := staleOnce(t, tk); !errors.Is(err, ErrForceRefreshLimit) ||
		!strings.Contains(err.Error(), "2 force refreshes in the last 24h") {
		t.Fatalf("third force on the same day: err = %v", err)
	}
	clk.Advance(24 * time.Hour)
	// By now the cached token expired; a fresh one is fetched first, then rejected.
	if _, err := staleOnce(t, tk); err != nil {
		t.Fatalf("force after 24h: %v", err)
	}
	if _, f := w.counts(); f != 3 {
		t.Fatalf("force fetches = %d, want 3", f)
	}
	if s := tk.Status(); s.ForceRefreshes != 3 {
		t.Fatalf("status = %+v", s)
	}
}

func TestTokensForceDisabled(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	tk := newTestTokens(w, clk, TokenOptions{ForcePerDay: -1})
	if _, err := staleOnce(t, tk); !errors.Is(err, ErrForceRefreshLimit) {
		t.Fatalf("err = %v", err)
	}
	if _, f := w.counts(); f != 0 {
		t.Fatalf("force fetches = %d", f)
	}
}

func TestTokensStaleJoinsPlainFetch(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	tk := newTestTokens(w, clk, TokenOptions{})
	cur, _ := tk.Get()
	// The cache expires while WeChat still hands out cur (a clock skew between us and
	// WeChat); a Get fetch is in flight when Stale(cur) arrives.
	release := w.hold()
	w.mu.Lock()
	w.expiry = w.expiry.Add(time.Hour)
	w.mu.Unlock()
	clk.Advance(7200 * time.Second)
	getDone := make(chan error)
	go func() { _, err := tk.Get(); getDone <- err }()
	waitFor(t, "Get to wait", func() bool { return tk.waitingCount() == 1 })
	staleDone := make(chan string)
	go func() { tok, _ := tk.Stale(cur); staleDone <- tok }()
	waitFor(t, "Stale to wait", func() bool { return tk.waitingCount() == 2 })
	release <- struct{}{} // the Get fetch returns cur again
	if err := <-getDone; err != nil {
		t.Fatal(err)
	}
	release <- struct{}{} // Stale goes straight to force
	if tok := <-staleDone; tok == cur || tok == "" {
		t.Fatalf("Stale = %q", tok)
	}
	if n, f := w.counts(); n != 2 || f != 1 {
		t.Fatalf("normal=%d force=%d, want 2, 1", n, f)
	}
}

// TestTokensForceLimitBoundaries forces a refresh exactly at each limit's edge: a whole
// ForceInterval after the last force, and a whole forceWindow after a force that used up
// ForcePerDay. Both are allowed; a nanosecond earlier is refused.
func TestTokensForceLimitBoundaries(t *testing.T) {
	const interval = 30 * time.Second
	cases := []struct {
		name    string
		perDay  int
		advance time.Duration // clock time between the first force and the second
		wantErr string        // "": the second force is allowed
	}{
		{"a whole ForceInterval later", 20, interval, ""},
		{"just inside ForceInterval", 20, interval - time.Nanosecond, "minimum interval"},
		{"a force exactly forceWindow old no longer counts", 1, forceWindow, ""},
		{"a force just inside forceWindow still counts", 1, forceWindow - time.Nanosecond, "1 force refreshes in the last 24h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock()
			w := newFakeWeChat(t, clk)
			tk := newTestTokens(w, clk, TokenOptions{ForceInterval: interval, ForcePerDay: c.perDay})
			if _, err := staleOnce(t, tk); err != nil {
				t.Fatalf("first force: %v", err)
			}
			clk.Advance(c.advance)
			_, err := staleOnce(t, tk)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("force %v after the first: %v", c.advance, err)
				}
				if _, f := w.counts(); f != 2 {
					t.Fatalf("force fetches = %d, want 2", f)
				}
				return
			}
			if !errors.Is(err, ErrForceRefreshLimit) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("force %v after the first: err = %v, want the limit %q", c.advance, err, c.wantErr)
			}
			if _, f := w.counts(); f != 1 {
				t.Fatalf("force fetches = %d, want 1", f)
			}
		})
	}
}
