package credentials

import (
	"errors"
	"fmt"
	"time"
)

// ErrForceRefreshLimit is wrapped by Stale errors when WeChat keeps returning the rejected
// token and no force refresh is allowed (ForceInterval not yet elapsed, ForcePerDay used up,
// or force refreshes disabled).
var ErrForceRefreshLimit = errors.New("force-refresh limit reached")

// forceWindow is the rolling window that ForcePerDay applies to.
const forceWindow = 24 * time.Hour

// staleMemo remembers a Stale failure for one rejected token, so that callers retrying on
// 40001 in a loop do not trigger a fetch each.
type staleMemo struct {
	rejected string
	until    time.Time
	err      error
}

// TokenRejected reports whether a WeChat errcode means "this access_token is no longer good":
// 40001 (invalid or not latest), 40014 (invalid) and 42001 (expired). Such answers should be
// reported with Tokens.Stale and the call retried once with the returned token
// (docs/protocol/xpay.md §4.3). It is the one home of these codes.
func TokenRejected(errcode int) bool {
	return errcode == 40001 || errcode == 40014 || errcode == 42001
}

// Stale is called when a WeChat call made with the token rejected was answered 40001, 40014
// or 42001. If the cache already holds a different, unexpired token (someone refreshed
// meanwhile), Stale returns it without fetching. Otherwise it fetches in normal mode and, if
// WeChat still returns rejected, forces a refresh when ForceInterval and ForcePerDay allow;
// else it returns an error wrapping ErrForceRefreshLimit. Concurrent Stale calls for the same
// rejected token share one procedure: at most one normal and one force fetch.
//
// After such a limit error, further Stale calls for the same token fail the same way without
// fetching until ForceInterval has passed.
func (t *Tokens) Stale(rejected string) (string, error) {
	sawRejected := false // a completed normal fetch already returned the rejected token
	for {
		t.mu.Lock()
		now := t.clock()
		if t.validLocked(now) && t.token != rejected {
			tok := t.token
			t.mu.Unlock()
			return tok, nil
		}
		if m := t.memo; m.err != nil && m.rejected == rejected && now.Before(m.until) {
			t.mu.Unlock()
			return "", m.err
		}
		f := t.flight
		if f == nil {
			f = t.startLocked(true, rejected, sawRejected)
		}
		tok, err := t.wait(f)
		switch {
		case err != nil:
			return "", err
		case tok != rejected:
			return tok, nil
		case f.stale && f.rejected == rejected:
			// Cannot happen (a stale flight never succeeds with the rejected token); guard
			// against looping anyway.
			return "", errors.New("credentials: refresh returned the rejected access_token")
		}
		// We joined a plain fetch that returned the rejected token: run our own procedure,
		// going straight to the force step.
		sawRejected = true
	}
}

// staleRefresh is the body of a stale flight.
func (t *Tokens) staleRefresh(rejected string, skipNormal bool) (string, error) {
	if !skipNormal {
		tok, err := t.fetchOnce(false)
		if err != nil {
			return "", err
		}
		if tok != rejected {
			return tok, nil
		}
	}
	t.mu.Lock()
	now := t.clock()
	if err := t.reserveForceLocked(now); err != nil {
		return "", t.failStaleLocked(rejected, now, fmt.Errorf(
			"credentials: access_token rejected but WeChat still returns it: %w", err))
	}
	t.mu.Unlock()
	tok, err := t.fetchOnce(true)
	if err != nil {
		return "", err
	}
	if tok == rejected {
		t.mu.Lock()
		return "", t.failStaleLocked(rejected, t.clock(), errors.New(
			"credentials: force refresh returned the rejected access_token"))
	}
	return tok, nil
}

// failStaleLocked records a Stale failure, releases t.mu and returns err.
func (t *Tokens) failStaleLocked(rejected string, now time.Time, err error) error {
	t.memo = staleMemo{rejected: rejected, until: now.Add(t.forceInterval), err: err}
	t.lastErr = err.Error()
	t.mu.Unlock()
	return err
}

// reserveForceLocked records a force attempt at now, or explains why none is allowed.
func (t *Tokens) reserveForceLocked(now time.Time) error {
	if t.forcePerDay < 0 {
		return fmt.Errorf("%w: force refresh is disabled", ErrForceRefreshLimit)
	}
	drop := 0
	for drop < len(t.forceTimes) && now.Sub(t.forceTimes[drop]) >= forceWindow {
		drop++
	}
	t.forceTimes = append(t.forceTimes[:0], t.forceTimes[drop:]...)
	if n := len(t.forceTimes); n > 0 {
		if since := now.Sub(t.forceTimes[n-1]); since < t.forceInterval {
			return fmt.Errorf("%w: last force refresh %v ago, minimum interval %v",
				ErrForceRefreshLimit, since, t.forceInterval)
		}
	}
	if len(t.forceTimes) >= t.forcePerDay {
		return fmt.Errorf("%w: %d force refreshes in the last 24h (limit %d)",
			ErrForceRefreshLimit, len(t.forceTimes), t.forcePerDay)
	}
	t.forceTimes = append(t.forceTimes, now)
	return nil
}
