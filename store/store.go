package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Kinds of store, as [store] kind names them.
const (
	KindDisk   = "disk"
	KindRedis  = "redis"
	KindMemory = "memory"
)

// ErrUnavailable wraps every failure to reach the store's engine (Redis down or too slow, the
// disk refusing a write). Callers answer 503 wxgate.store_unavailable on it.
var ErrUnavailable = errors.New("the store is unavailable")

// Store is wxgate's shared state: session keys per (app, openid) and what the callback door must
// remember across restarts and instances. Every method is safe for concurrent use.
type Store interface {
	// PutSession stores sessionKey for (app, openid) for the session TTL, replacing any older
	// key: the newest login wins. It returns once the key is durable for the kind (disk: on
	// disk; redis: acknowledged by Redis).
	PutSession(ctx context.Context, app, openid, sessionKey string) error
	// AppendSession appends the session_key of (app, openid) to dst; false when there is none.
	// openid is a []byte so that a hot path hands over a slice of its request as it is.
	AppendSession(ctx context.Context, dst []byte, app string, openid []byte) ([]byte, bool, error)

	// Claim is the first step of delivering a verified notification: it records replay (the
	// signed timestamp and nonce, or "" when the protocol has none) as used and, unless the event
	// was delivered already or is being delivered right now, claims eventID for the caller.
	Claim(ctx context.Context, replay, eventID string) (Claim, error)
	// Delivered records that the claimed event reached the app, for DeliveredTTL.
	Delivered(ctx context.Context, c Claim) error
	// Release gives up a claim after a failed delivery: the event may come again (WeChat
	// retries), and its replay key is forgotten so that the retry is not taken for a replay.
	Release(ctx context.Context, c Claim) error
	// Answered ends a claim whose event the app answered with a reply that was relayed to
	// WeChat (message pushes that need the app's own answer): the replay key stays recorded, so
	// this very request cannot be replayed, but the event is not marked delivered, so WeChat's
	// retry of it (newly signed) is forwarded again and gets the app's answer again.
	Answered(ctx context.Context, c Claim) error

	// Check reports whether the store answers now (for /readyz).
	Check(ctx context.Context) error
	// Stats describes the store for /metrics.
	Stats() Stats
	// Close releases what the store holds. Pending writes are finished first.
	Close() error
}

// Verdict is what Claim decided.
type Verdict int

const (
	// Failed: Claim returned an error and claimed nothing (the zero value, so that a caller
	// that ignores the error never takes it for a claim).
	Failed Verdict = iota
	// Claimed: the caller delivers the event, then calls Delivered or Release.
	Claimed
	// Replayed: these signed values were used before; refuse the request.
	Replayed
	// AlreadyDelivered: the app accepted this event before; acknowledge WeChat, do not forward.
	AlreadyDelivered
	// InFlight: another request (on this or another instance) is delivering the event now;
	// answer WeChat with a failure so it retries later.
	InFlight
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case Failed:
		return "failed"
	case Claimed:
		return "claimed"
	case Replayed:
		return "replayed"
	case AlreadyDelivered:
		return "already delivered"
	case InFlight:
		return "in flight"
	}
	return "unknown"
}

// Claim is the answer of Store.Claim, handed back to Delivered or Release.
type Claim struct {
	Verdict Verdict
	replay  string // the replay record's key, "" when none
	event   string // the event record's key
	token   string // what the claim wrote, so that only this claim releases it
}

// Stats describe a store for /metrics and `wxgate check`.
type Stats struct {
	Kind string
	// Up is false while the store cannot be reached (redis) or written (disk).
	Up bool
	// Sessions counts the stored session keys; -1 when the kind cannot count them cheaply.
	Sessions int64
	// Errors counts operations that failed with ErrUnavailable since start.
	Errors uint64
}

// Options tune a store; the zero value of each field gives its default.
type Options struct {
	// SessionTTL is how long a session_key is kept after its login; default 72h.
	SessionTTL time.Duration
	// MaxSessions caps the memory kind's session table; default 2,000,000.
	MaxSessions int
	// ReplayTTL is how long a callback's signed timestamp and nonce are remembered: past it the
	// timestamp check refuses the callback anyway. Default 10 min.
	ReplayTTL time.Duration
	// DeliveredTTL is how long a delivered event id is remembered; default 25h, past WeChat's
	// whole retry schedule (24h4m).
	DeliveredTTL time.Duration
	// ClaimTTL bounds a claim whose holder died before Delivered or Release (kill -9): past it
	// WeChat's retry is delivered by whoever gets it. Default 30 s; set it above the forward
	// timeout.
	ClaimTTL time.Duration
	// Timeout bounds every operation on a remote store; default 500 ms.
	Timeout time.Duration
	// Clock returns the current time (memory and disk kinds); default time.Now.
	Clock func() time.Time
}

// Defaults of Options.
const (
	DefaultSessionTTL   = 72 * time.Hour
	DefaultMaxSessions  = 2_000_000
	DefaultReplayTTL    = 10 * time.Minute
	DefaultDeliveredTTL = 25 * time.Hour
	DefaultClaimTTL     = 30 * time.Second
	DefaultTimeout      = 500 * time.Millisecond
)

func (o Options) withDefaults() Options {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&o.SessionTTL, DefaultSessionTTL)
	setDur(&o.ReplayTTL, DefaultReplayTTL)
	setDur(&o.DeliveredTTL, DefaultDeliveredTTL)
	setDur(&o.ClaimTTL, DefaultClaimTTL)
	setDur(&o.Timeout, DefaultTimeout)
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// ReplayKey is the replay record of a callback: a digest of its parts (the source, the app or
// merchant, and the signed values), each ended by a zero byte so that ("ab", "c") and ("a", "bc")
// differ.
func ReplayKey(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// deliveredMark is the value of an event record once the app accepted the event; while it is
// being delivered the record holds the claim's token instead.
const deliveredMark = "delivered"

// maxEventID is the longest event id stored as it is; longer ids are stored as a digest.
const maxEventID = 128

// eventKey returns the record key of an event id.
func eventKey(id string) string {
	if len(id) <= maxEventID {
		return id
	}
	return "sha256:" + ReplayKey([]byte(id))
}
