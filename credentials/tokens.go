package credentials

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/ratelimit"
)

// FetchFunc obtains a token from WeChat. force asks for force_refresh=true.
type FetchFunc func(force bool) (token string, expiresIn time.Duration, err error)

// TokenOptions tunes a Tokens cache. The zero value gives WeChat's documented defaults.
type TokenOptions struct {
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// RefreshBefore is the window before expiry inside which Get still returns the cached token
	// but starts one background refresh; default 5m (stable_token hands out a new token during
	// the last 5 minutes of the old one).
	RefreshBefore time.Duration
	// ForceInterval is the minimum gap between force refreshes; default 30s (WeChat ignores
	// closer ones).
	ForceInterval time.Duration
	// ForcePerDay caps force refreshes in any rolling 24 hours; default 20 (WeChat's daily
	// limit). A negative value disables force refreshes.
	ForcePerDay int
	// FetchesPerMinute paces every call of the FetchFunc (normal and forced) with
	// go.uber.org/ratelimit, so that a failure loop cannot burn WeChat's quota; default 600.
	FetchesPerMinute int
}

// Defaults used for zero TokenOptions fields.
const (
	DefaultRefreshBefore    = 5 * time.Minute
	DefaultForceInterval    = 30 * time.Second
	DefaultForcePerDay      = 20
	DefaultFetchesPerMinute = 600
)

// backgroundRetry is the minimum gap between two background refreshes of the same cached
// token, so that a failing or unchanged refresh inside the RefreshBefore window is not
// retried on every Get.
const backgroundRetry = 10 * time.Second

// TokenStatus is a snapshot of a Tokens cache for health checks and metrics. It never
// contains the token itself.
type TokenStatus struct {
	// HasToken reports whether an unexpired token is cached.
	HasToken bool
	// ExpiresAt is when the cached token expires (zero when none was ever fetched).
	ExpiresAt time.Time
	// Fetches counts every call of the FetchFunc, forced ones included.
	Fetches int
	// ForceRefreshes counts the calls with force=true.
	ForceRefreshes int
	// LastError is the text of the most recent failure; it is cleared by the next successful
	// fetch.
	LastError string
}

// Tokens caches the access_token of one app. It is safe for concurrent use. Only one fetch is
// in flight at any time; concurrent callers wait for it and share its result or error.
//
// Force refreshes are limited per Tokens value only: several wxgate instances sharing an app
// must rely on stable_token's normal mode (which returns the same token to everyone) and keep
// force refreshes rare.
type Tokens struct {
	fetch         FetchFunc
	clock         func() time.Time
	refreshBefore time.Duration
	forceInterval time.Duration
	forcePerDay   int
	perMinute     int // FetchesPerMinute with the default applied: the limiter's rate
	limiter       ratelimit.Limiter

	mu             sync.Mutex
	token          string
	expiresAt      time.Time
	flight         *flight     // the fetch in progress, if any
	waiting        int         // callers blocked on flight (observability for tests)
	nextBackground time.Time   // earliest start of the next background refresh
	forceTimes     []time.Time // force attempts in the last 24h, oldest first
	memo           staleMemo   // last Stale failure that must not be retried at once
	fetches        int
	forces         int
	lastErr        string
}

// flight is one fetch procedure; its result is published by closing done.
type flight struct {
	done     chan struct{}
	stale    bool   // a Stale procedure: normal fetch, then force if still rejected
	rejected string // the rejected token, for stale flights
	token    string
	err      error
}

// NewTokens returns an empty cache that obtains tokens with fetch. It panics if fetch is nil.
func NewTokens(fetch FetchFunc, opts TokenOptions) *Tokens {
	if fetch == nil {
		panic("credentials: NewTokens needs a FetchFunc")
	}
	t := &Tokens{
		fetch:         fetch,
		clock:         opts.Clock,
		refreshBefore: opts.RefreshBefore,
		forceInterval: opts.ForceInterval,
		forcePerDay:   opts.ForcePerDay,
	}
	if t.clock == nil {
		t.clock = time.Now
	}
	if t.refreshBefore <= 0 {
		t.refreshBefore = DefaultRefreshBefore
	}
	if t.forceInterval <= 0 {
		t.forceInterval = DefaultForceInterval
	}
	if t.forcePerDay == 0 {
		t.forcePerDay = DefaultForcePerDay
	}
	t.perMinute = opts.FetchesPerMinute
	if t.perMinute <= 0 {
		t.perMinute = DefaultFetchesPerMinute
	}
	t.limiter = ratelimit.New(t.perMinute, ratelimit.Per(time.Minute))
	return t
}

// Get returns the cached token. On a miss or after expiry it fetches one, sharing a single
// in-flight fetch with every concurrent caller. Inside the RefreshBefore window it returns the
// cached token and starts one background refresh.
func (t *Tokens) Get() (string, error) {
	t.mu.Lock()
	now := t.clock()
	if t.validLocked(now) {
		tok := t.token
		if t.flight == nil && !now.Before(t.expiresAt.Add(-t.refreshBefore)) &&
			!now.Before(t.nextBackground) {
			t.nextBackground = now.Add(backgroundRetry)
			t.startLocked(false, "", false)
		}
		t.mu.Unlock()
		return tok, nil
	}
	f := t.flight
	if f == nil {
		f = t.startLocked(false, "", false)
	}
	return t.wait(f)
}

// Status returns a snapshot of the cache state.
func (t *Tokens) Status() TokenStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TokenStatus{
		HasToken:       t.validLocked(t.clock()),
		ExpiresAt:      t.expiresAt,
		Fetches:        t.fetches,
		ForceRefreshes: t.forces,
		LastError:      t.lastErr,
	}
}

func (t *Tokens) validLocked(now time.Time) bool {
	return t.token != "" && now.Before(t.expiresAt)
}

// wait releases t.mu, which the caller holds, and blocks until f is done.
func (t *Tokens) wait(f *flight) (string, error) {
	t.waiting++
	t.mu.Unlock()
	<-f.done
	t.mu.Lock()
	t.waiting--
	t.mu.Unlock()
	return f.token, f.err
}

// startLocked registers a new flight and runs it in its own goroutine, so that no caller's
// lifetime is tied to the fetch.
func (t *Tokens) startLocked(stale bool, rejected string, skipNormal bool) *flight {
	f := &flight{done: make(chan struct{}), stale: stale, rejected: rejected}
	t.flight = f
	go t.run(f, skipNormal)
	return f
}

func (t *Tokens) run(f *flight, skipNormal bool) {
	if f.stale {
		f.token, f.err = t.staleRefresh(f.rejected, skipNormal)
	} else {
		f.token, f.err = t.fetchOnce(false)
	}
	t.mu.Lock()
	t.flight = nil
	t.mu.Unlock()
	close(f.done)
}

// fetchOnce calls the FetchFunc once, paced by the rate limiter, and stores a valid result.
func (t *Tokens) fetchOnce(force bool) (string, error) {
	t.limiter.Take()
	start := t.clock()
	tok, ttl, err := callFetch(t.fetch, force)
	switch {
	case err != nil:
	case tok == "":
		err = errors.New("empty access_token")
	case ttl <= 0:
		err = fmt.Errorf("non-positive expires_in %v", ttl)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fetches++
	if force {
		t.forces++
	}
	if err != nil {
		err = fmt.Errorf("credentials: fetch access_token (force=%t): %w", force, err)
		t.lastErr = err.Error()
		return "", err
	}
	// Expiry counts from the request start, so a slow answer never extends the lifetime.
	t.token, t.expiresAt, t.lastErr = tok, start.Add(ttl), ""
	return tok, nil
}

// callFetch turns a panicking FetchFunc into an error, so that waiters are always released.
func callFetch(fetch FetchFunc, force bool) (tok string, ttl time.Duration, err error) {
	defer func() {
		if r := recover(); r != nil {
			tok, ttl, err = "", 0, fmt.Errorf("FetchFunc panicked: %v", r)
		}
	}()
	return fetch(force)
}
