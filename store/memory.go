package store

import (
	"sync"
	"time"
)

// maxRecorded bounds the replay keys and the delivered event ids the memory kind keeps each.
const maxRecorded = 1_000_000

// OpenMemory returns a store that keeps everything in this process: nothing survives a
// restart and nothing is shared with another instance.
func OpenMemory(opts Options) Store {
	opts = opts.withDefaults()
	return newLocalStore(KindMemory, opts, &memoryEngine{
		sessions:  NewSessions(SessionOptions{TTL: opts.SessionTTL, MaxEntries: opts.MaxSessions, Clock: opts.Clock}),
		replays:   newTTLMap(maxRecorded),
		delivered: newTTLMap(maxRecorded),
	})
}

// memoryEngine keeps session keys in the sharded Sessions table and callback records in two
// bounded maps.
type memoryEngine struct {
	sessions *Sessions

	mu        sync.Mutex
	replays   *ttlMap
	delivered *ttlMap
}

func (m *memoryEngine) putSession(app, openid, sessionKey string, _ time.Time) error {
	m.sessions.Put(app, openid, sessionKey) // the table applies the same TTL from the same clock
	return nil
}

func (m *memoryEngine) appendSession(dst []byte, app string, openid []byte, _ time.Time) ([]byte, bool, error) {
	out, ok := m.sessions.AppendKey(dst, app, string(openid)) // the conversion does not escape
	return out, ok, nil
}

func (m *memoryEngine) seen(replay, event string, now time.Time) (bool, bool, error) {
	ns := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	_, replayed := m.replays.get(replay, ns)
	_, delivered := m.delivered.get(event, ns)
	return replayed && replay != "", delivered, nil
}

func (m *memoryEngine) record(now time.Time, replay string, replayExp time.Time, event string, eventExp time.Time) error {
	ns := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if replay != "" {
		m.replays.set(replay, "", replayExp.UnixNano(), ns)
	}
	if event != "" {
		m.delivered.set(event, deliveredMark, eventExp.UnixNano(), ns)
	}
	return nil
}

func (m *memoryEngine) sessionCount() int64 { return int64(m.sessions.Len()) }

func (m *memoryEngine) close() error { return nil }
