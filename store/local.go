package store

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// engine is where a single-process store (memory or disk) keeps what must outlive a request:
// session keys, used replay keys and delivered event ids. Claims in flight are kept by
// localStore itself, in memory: only this process can hold them.
type engine interface {
	putSession(app, openid, sessionKey string, exp time.Time) error
	appendSession(dst []byte, app string, openid []byte, now time.Time) ([]byte, bool, error)
	// seen reports whether replay (when not "") is recorded, and whether event is delivered.
	seen(replay, event string, now time.Time) (replayed, delivered bool, err error)
	// record stores replay (when not "") until replayExp and event (when not "") as delivered
	// until eventExp, durably, in one step; now is the store's clock.
	record(now time.Time, replay string, replayExp time.Time, event string, eventExp time.Time) error
	sessionCount() int64
	close() error
}

// localStore is the memory and disk kinds: one process owns the state, so claims are decided
// under one lock and the engine is asked only what it has recorded.
type localStore struct {
	kind   string
	opts   Options
	engine engine
	errors atomic.Uint64
	up     atomic.Bool

	mu       sync.Mutex
	replays  *ttlMap // replay keys of claims in flight
	inFlight *ttlMap // event key -> claim token
	next     uint64  // the last claim token
}

// maxInFlight bounds the claims held at once; far above any forward concurrency.
const maxInFlight = 1 << 20

func newLocalStore(kind string, opts Options, e engine) *localStore {
	s := &localStore{kind: kind, opts: opts, engine: e, replays: newTTLMap(maxInFlight), inFlight: newTTLMap(maxInFlight)}
	s.up.Store(true)
	return s
}

// failed counts err if it is an engine failure, and returns it.
func (s *localStore) failed(err error) error {
	if err != nil {
		s.errors.Add(1)
		s.up.Store(false)
		return err
	}
	s.up.Store(true)
	return nil
}

func (s *localStore) PutSession(_ context.Context, app, openid, sessionKey string) error {
	return s.failed(s.engine.putSession(app, openid, sessionKey, s.opts.Clock().Add(s.opts.SessionTTL)))
}

func (s *localStore) AppendSession(_ context.Context, dst []byte, app string, openid []byte) ([]byte, bool, error) {
	out, ok, err := s.engine.appendSession(dst, app, openid, s.opts.Clock())
	if err != nil {
		return dst, false, s.failed(err)
	}
	return out, ok, nil
}

func (s *localStore) Claim(_ context.Context, replay, eventID string) (Claim, error) {
	now := s.opts.Clock()
	ns := now.UnixNano()
	c := Claim{replay: replay, event: eventKey(eventID)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.replays.get(replay, ns); busy && replay != "" {
		c.Verdict = Replayed
		return c, nil
	}
	replayed, delivered, err := s.engine.seen(replay, c.event, now)
	if err != nil {
		return Claim{}, s.failed(err)
	}
	switch _, busy := s.inFlight.get(c.event, ns); {
	case replayed:
		c.Verdict = Replayed
	case busy:
		c.Verdict = InFlight
	case delivered:
		// WeChat's retry of a delivered event: acknowledged, and its replay key recorded so
		// that this very request cannot be replayed either.
		c.Verdict = AlreadyDelivered
		if replay != "" {
			if err := s.engine.record(now, replay, now.Add(s.opts.ReplayTTL), "", time.Time{}); err != nil {
				return Claim{}, s.failed(err)
			}
		}
		return c, nil
	default:
		c.Verdict = Claimed
		s.next++
		c.token = strconv.FormatUint(s.next, 10)
		if replay != "" {
			s.replays.set(replay, c.token, ns+int64(s.opts.ClaimTTL), ns)
		}
		s.inFlight.set(c.event, c.token, ns+int64(s.opts.ClaimTTL), ns)
	}
	return c, nil
}

func (s *localStore) Delivered(_ context.Context, c Claim) error {
	now := s.opts.Clock()
	err := s.engine.record(now, c.replay, now.Add(s.opts.ReplayTTL), c.event, now.Add(s.opts.DeliveredTTL))
	s.forget(c)
	return s.failed(err)
}

func (s *localStore) Release(_ context.Context, c Claim) error {
	s.forget(c)
	return nil
}

func (s *localStore) Answered(_ context.Context, c Claim) error {
	now := s.opts.Clock()
	var err error
	if c.replay != "" {
		err = s.engine.record(now, c.replay, now.Add(s.opts.ReplayTTL), "", time.Time{})
	}
	s.forget(c)
	return s.failed(err)
}

// forget drops c's in-flight marks, if they are still c's.
func (s *localStore) forget(c Claim) {
	if c.token == "" {
		return
	}
	ns := s.opts.Clock().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.inFlight.get(c.event, ns); ok && v == c.token {
		s.inFlight.del(c.event)
	}
	if v, ok := s.replays.get(c.replay, ns); ok && v == c.token {
		s.replays.del(c.replay)
	}
}

func (s *localStore) Check(context.Context) error {
	if !s.up.Load() {
		return ErrUnavailable
	}
	return nil
}

func (s *localStore) Stats() Stats {
	return Stats{Kind: s.kind, Up: s.up.Load(), Sessions: s.engine.sessionCount(), Errors: s.errors.Load()}
}

func (s *localStore) Close() error { return s.engine.close() }
