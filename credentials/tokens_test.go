package credentials

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastFetches keeps the rate limiter out of the way in tests that are not about pacing.
const fastFetches = 6_000_000

func newTestTokens(w *fakeWeChat, clk *fakeClock, opts TokenOptions) *Tokens {
	opts.Clock = clk.Now
	if opts.FetchesPerMinute == 0 {
		opts.FetchesPerMinute = fastFetches
	}
	return NewTokens(w.client(testSecret).Fetch, opts)
}

func (t *Tokens) waitingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waiting
}

func (t *Tokens) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flight == nil
}

// getAll runs n concurrent calls of call and returns their results once all are done.
func getAll(n int, call func() (string, error)) ([]string, []error) {
	toks, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = call() })
	}
	wg.Wait()
	return toks, errs
}

func TestTokensGetCachesUntilExpiry(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	tk := newTestTokens(w, clk, TokenOptions{})

	steps := []struct {
		name      string
		advance   time.Duration
		wantNew   bool
		wantFetch int
	}{
		{"first Get fetches", 0, true, 1},
		{"cached", time.Minute, false, 1},
		{"still cached before the refresh window", 7200*time.Second - 10*time.Minute, false, 1},
		{"after expiry a new token is fetched", 10 * time.Minute, true, 2},
	}
	prev := ""
	for _, st := range steps {
		clk.Advance(st.advance)
		tok, err := tk.Get()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if (tok != prev) != st.wantNew {
			t.Errorf("%s: token changed=%v, want %v", st.name, tok != prev, st.wantNew)
		}
		if n, _ := w.counts(); n != st.wantFetch {
			t.Errorf("%s: %d fetches, want %d", st.name, n, st.wantFetch)
		}
		prev = tok
	}
	s := tk.Status()
	if !s.HasToken || s.Fetches != 2 || s.ForceRefreshes != 0 || s.LastError != "" {
		t.Errorf("status = %+v", s)
	}
	if want := clk.Now().Add(7200 * time.Second); !s.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", s.ExpiresAt, want)
	}
}

func TestTokensGetSingleFlight(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	release := w.hold()
	tk := newTestTokens(w, clk, TokenOptions{})

	const callers = 100
	done := make(chan struct{})
	var toks []string
	var errs []error
	go func() {
		toks, errs = getAll(callers, tk.Get)
		close(done)
	}()
	waitFor(t, "all callers to wait on one fetch", func() bool { return tk.waitingCount() == callers })
	release <- struct{}{}
	<-done
	for i := range callers {
		if errs[i] != nil || toks[i] != toks[0] || toks[0] == "" {
			t.Fatalf("caller %d: %q, %v (caller 0: %q)", i, toks[i], errs[i], toks[0])
		}
	}
	if n, f := w.counts(); n != 1 || f != 0 {
		t.Errorf("fetches normal=%d force=%d, want 1, 0", n, f)
	}
}

func TestTokensBackgroundRefresh(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	tk := newTestTokens(w, clk, TokenOptions{RefreshBefore: 5 * time.Minute})
	first, err := tk.Get()
	if err != nil {
		t.Fatal(err)
	}

	// Inside the window: the cached token comes back at once while one refresh runs.
	release := w.hold()
	clk.Advance(7200*time.Second - 4*time.Minute)
	for range 10 {
		if tok, err := tk.Get(); err != nil || tok != first {
			t.Fatalf("Get inside window = %q, %v; want the cached token", tok, err)
		}
	}
	if tk.idle() {
		t.Fatal("no background refresh started")
	}
	release <- struct{}{}
	waitFor(t, "the background refresh", func() bool { return tk.idle() && tk.Status().Fetches == 2 })
	w.unhold()

	second, err := tk.Get()
	if err != nil || second == first {
		t.Fatalf("after refresh Get = %q, %v; want a new token", second, err)
	}
	if n, _ := w.counts(); n != 2 {
		t.Errorf("normal fetches = %d, want 2 (one background refresh only)", n)
	}
	if !tk.idle() {
		t.Error("a fresh token started another refresh")
	}
}

func TestTokensBackgroundRefreshFailureKeepsToken(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	tk := newTestTokens(w, clk, TokenOptions{})
	first, _ := tk.Get()

	w.setFailNext(1)
	clk.Advance(7200*time.Second - time.Minute)
	if tok, err := tk.Get(); err != nil || tok != first {
		t.Fatalf("Get = %q, %v", tok, err)
	}
	waitFor(t, "the failed refresh", func() bool { return tk.idle() && tk.Status().Fetches == 2 })
	if s := tk.Status(); !s.HasToken || !strings.Contains(s.LastError, "errcode -1") {
		t.Fatalf("status after failed refresh = %+v", s)
	}
	// Retries wait for backgroundRetry instead of firing on every Get.
	if tok, _ := tk.Get(); tok != first || !tk.idle() {
		t.Fatal("background refresh retried immediately")
	}
	clk.Advance(backgroundRetry)
	if tok, _ := tk.Get(); tok != first {
		t.Fatal("cached token not returned")
	}
	waitFor(t, "the retried refresh", func() bool { return tk.idle() && tk.Status().Fetches == 3 })
	if tok, _ := tk.Get(); tok == first || tk.Status().LastError != "" {
		t.Fatalf("retry did not install a new token: %+v", tk.Status())
	}
}

func TestTokensFetchErrorReachesAllWaitersThenRetries(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	release := w.hold()
	w.setFailNext(1)
	tk := newTestTokens(w, clk, TokenOptions{})

	const callers = 20
	done := make(chan struct{})
	var errs []error
	go func() {
		_, errs = getAll(callers, tk.Get)
		close(done)
	}()
	waitFor(t, "callers to wait", func() bool { return tk.waitingCount() == callers })
	release <- struct{}{}
	<-done
	for i, err := range errs {
		var we *WeChatError
		if !errors.As(err, &we) || we.Code != -1 {
			t.Fatalf("caller %d: err = %v, want WeChatError -1", i, err)
		}
	}
	if s := tk.Status(); s.HasToken || s.Fetches != 1 || s.LastError == "" {
		t.Fatalf("status = %+v", s)
	}

	w.unhold()
	tok, err := tk.Get()
	if err != nil || tok == "" {
		t.Fatalf("retry Get = %q, %v", tok, err)
	}
	if s := tk.Status(); s.Fetches != 2 || s.LastError != "" {
		t.Fatalf("status after retry = %+v", s)
	}
}

func TestTokensRejectsBadFetchResults(t *testing.T) {
	cases := []struct {
		name  string
		fetch FetchFunc
		want  string
	}{
		{"empty token", func(bool) (string, time.Duration, error) { return "", time.Hour, nil }, "empty access_token"},
		{"zero ttl", func(bool) (string, time.Duration, error) { return "tok", 0, nil }, "non-positive expires_in"},
		{"panic", func(bool) (string, time.Duration, error) { panic("boom") }, "panicked: boom"},
		{"error", func(bool) (string, time.Duration, error) { return "", 0, errors.New("net down") }, "net down"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := NewTokens(c.fetch, TokenOptions{FetchesPerMinute: fastFetches})
			_, err := tk.Get()
			if err == nil || !strings.Contains(err.Error(), c.want) ||
				!strings.HasPrefix(err.Error(), "credentials: fetch access_token") {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if s := tk.Status(); s.HasToken || s.LastError != err.Error() {
				t.Fatalf("status = %+v", s)
			}
		})
	}
}

func TestTokensFetchesArePaced(t *testing.T) {
	calls := 0
	fetch := func(bool) (string, time.Duration, error) {
		calls++
		return "", 0, errors.New("upstream down")
	}
	const perMinute = 1200 // one fetch per 50ms
	tk := NewTokens(fetch, TokenOptions{FetchesPerMinute: perMinute})
	start := time.Now()
	for range 5 {
		if _, err := tk.Get(); err == nil {
			t.Fatal("want error")
		}
	}
	// The first fetch is immediate, each following one waits for its slot.
	if elapsed, min := time.Since(start), 4*time.Minute/perMinute; elapsed < min {
		t.Fatalf("5 failing fetches took %v, want at least %v", elapsed, min)
	}
	if calls != 5 {
		t.Fatalf("calls = %d", calls)
	}
}

// TestNewTokensFetchRate checks the rate the fetch limiter is built with: a zero or negative
// FetchesPerMinute means the default (ratelimit.New(0) would divide by zero), any other is kept.
func TestNewTokensFetchRate(t *testing.T) {
	cases := []struct {
		name string
		set  int
		want int
	}{
		{"zero means the default", 0, DefaultFetchesPerMinute},
		{"negative means the default", -1, DefaultFetchesPerMinute},
		{"one a minute is kept", 1, 1},
		{"a fast rate is kept", fastFetches, fastFetches},
	}
	fetch := func(bool) (string, time.Duration, error) { return "tok", time.Hour, nil }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := NewTokens(fetch, TokenOptions{FetchesPerMinute: c.set})
			if tk.perMinute != c.want {
				t.Fatalf("FetchesPerMinute %d: limiter rate %d a minute, want %d", c.set, tk.perMinute, c.want)
			}
		})
	}
}
