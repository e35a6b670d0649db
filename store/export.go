package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
	bolt "go.etcd.io/bbolt"
)

// Record is one exported piece of state, one JSON line of `wxgate store export`.
type Record struct {
	// Type is "session", "replay" or "delivered".
	Type string `json:"type"`
	// App and OpenID name a session; SessionKey is its key, present only in an export made
	// with secrets.
	App        string `json:"app,omitempty"`
	OpenID     string `json:"openid,omitempty"`
	SessionKey string `json:"session_key,omitempty"`
	// Key is a replay record's key or a delivered event's key.
	Key       string    `json:"key,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Record types.
const (
	RecordSession   = "session"
	RecordReplay    = "replay"
	RecordDelivered = "delivered"
)

// ErrNothingToExport is the memory kind's answer to Export: its state is the running process's.
var ErrNothingToExport = errors.New("the memory store keeps nothing outside the running process: there is nothing to export or import")

// Exporter is implemented by the disk and redis stores: `wxgate store export` and `import`
// move state between them without asking users to log in again.
type Exporter interface {
	// Export calls fn for every unexpired record; session keys are included only when
	// withSecrets is true.
	Export(ctx context.Context, withSecrets bool, fn func(Record) error) error
	// Import writes recs, skipping those expired; an existing newer session is replaced.
	Import(ctx context.Context, recs []Record) error
}

// AsExporter returns s's Exporter, or ErrNothingToExport for the memory kind.
func AsExporter(s Store) (Exporter, error) {
	if l, ok := s.(*localStore); ok && l.kind == KindMemory {
		return nil, ErrNothingToExport
	}
	if e, ok := s.(Exporter); ok {
		return e, nil
	}
	return nil, ErrNothingToExport
}

// Export walks the store file.
func (s *localStore) Export(_ context.Context, withSecrets bool, fn func(Record) error) error {
	d, ok := s.engine.(*diskEngine)
	if !ok {
		return ErrNothingToExport
	}
	now := s.opts.Clock().UnixNano()
	return d.db.View(func(tx *bolt.Tx) error {
		walk := func(bucket []byte, rec func(k, v []byte) *Record) error {
			return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
				if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) <= now {
					return nil
				}
				r := rec(k, v)
				if r == nil {
					return nil
				}
				r.ExpiresAt = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
				return fn(*r)
			})
		}
		if withSecrets {
			err := walk(bucketSessions, func(k, v []byte) *Record {
				app, openid, ok := strings.Cut(string(k), "\x00")
				if !ok {
					return nil
				}
				return &Record{Type: RecordSession, App: app, OpenID: openid, SessionKey: string(v[8:])}
			})
			if err != nil {
				return err
			}
		}
		if err := walk(bucketReplays, func(k, _ []byte) *Record { return &Record{Type: RecordReplay, Key: string(k)} }); err != nil {
			return err
		}
		return walk(bucketEvents, func(k, _ []byte) *Record { return &Record{Type: RecordDelivered, Key: string(k)} })
	})
}

// Import writes recs into the store file in one transaction.
func (s *localStore) Import(_ context.Context, recs []Record) error {
	d, ok := s.engine.(*diskEngine)
	if !ok {
		return ErrNothingToExport
	}
	now := s.opts.Clock()
	return d.db.Update(func(tx *bolt.Tx) error {
		for i, r := range recs {
			if !r.ExpiresAt.After(now) {
				continue
			}
			val := binary.BigEndian.AppendUint64(nil, uint64(r.ExpiresAt.UnixNano()))
			var err error
			switch r.Type {
			case RecordSession:
				if r.App == "" || r.OpenID == "" || r.SessionKey == "" {
					return fmt.Errorf("record %d: a session needs app, openid and session_key (was the export made with -secrets?)", i+1)
				}
				var added bool
				added, err = putExpiring(tx, tx.Bucket(bucketSessions), expSession, sessionKeyOf(r.App, r.OpenID), append(val, r.SessionKey...))
				if err == nil && added {
					err = d.addSessions(tx, 1)
				}
			case RecordReplay:
				_, err = putExpiring(tx, tx.Bucket(bucketReplays), expReplay, []byte(r.Key), val)
			case RecordDelivered:
				_, err = putExpiring(tx, tx.Bucket(bucketEvents), expEvent, []byte(r.Key), val)
			default:
				return fmt.Errorf("record %d: unknown type %q", i+1, r.Type)
			}
			if err != nil {
				return fmt.Errorf("record %d: %w", i+1, err)
			}
		}
		return nil
	})
}

// Export scans every node of the Redis deployment for this prefix's keys.
func (s *redisStore) Export(ctx context.Context, withSecrets bool, fn func(Record) error) error {
	seen := map[string]bool{} // a cluster's replicas answer the scan too
	for _, node := range s.client.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(s.prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return s.failed("scan keys", err)
			}
			for _, key := range e.Elements {
				if seen[key] {
					continue
				}
				seen[key] = true
				if err := s.exportKey(ctx, node, key, withSecrets, fn); err != nil {
					return err
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

func (s *redisStore) exportKey(ctx context.Context, node rueidis.Client, key string, withSecrets bool, fn func(Record) error) error {
	rest := strings.TrimPrefix(key, s.prefix)
	var r Record
	switch {
	case strings.HasPrefix(rest, "s:"):
		if !withSecrets {
			return nil
		}
		app, openid, ok := strings.Cut(rest[2:], ":")
		if !ok {
			return nil
		}
		r = Record{Type: RecordSession, App: app, OpenID: openid}
	case strings.HasPrefix(rest, "r:"):
		r = Record{Type: RecordReplay, Key: rest[2:]}
	case strings.HasPrefix(rest, "e:"):
		r = Record{Type: RecordDelivered, Key: rest[2:]}
	default:
		return nil
	}
	res := s.client.DoMulti(ctx, s.client.B().Get().Key(key).Build(), s.client.B().Pttl().Key(key).Build())
	val, err := res[0].ToString()
	if rueidis.IsRedisNil(err) {
		return nil // expired since the scan
	}
	if err != nil {
		return s.failed("read "+key, err)
	}
	if r.Type == RecordDelivered && val != deliveredMark {
		return nil // a claim in flight, not a delivery
	}
	ttl, err := res[1].AsInt64() // ms; negative: no expiry or gone
	if err != nil || ttl <= 0 {
		return nil
	}
	if r.Type == RecordSession {
		r.SessionKey = val
	}
	r.ExpiresAt = s.opts.Clock().Add(time.Duration(ttl) * time.Millisecond).UTC()
	return fn(r)
}

// Import writes recs with their absolute expiry, pipelined.
func (s *redisStore) Import(ctx context.Context, recs []Record) error {
	now := s.opts.Clock()
	var cmds rueidis.Commands
	for i, r := range recs {
		if !r.ExpiresAt.After(now) {
			continue
		}
		var key, val string
		switch r.Type {
		case RecordSession:
			if r.App == "" || r.OpenID == "" || r.SessionKey == "" {
				return fmt.Errorf("record %d: a session needs app, openid and session_key (was the export made with -secrets?)", i+1)
			}
			key, val = s.sessionKey(r.App, r.OpenID), r.SessionKey
		case RecordReplay:
			key, val = s.prefix+"r:"+r.Key, "imported"
		case RecordDelivered:
			key, val = s.prefix+"e:"+r.Key, deliveredMark
		default:
			return fmt.Errorf("record %d: unknown type %q", i+1, r.Type)
		}
		cmds = append(cmds, s.client.B().Set().Key(key).Value(val).Pxat(r.ExpiresAt).Build())
	}
	if len(cmds) == 0 {
		return nil
	}
	for _, res := range s.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return s.failed("import records", err)
		}
	}
	return nil
}
