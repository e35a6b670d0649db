package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DiskFile is the name of the disk kind's file inside [store] dir.
const DiskFile = "wxgate.db"

// diskFormat is written in every store file; a file holding another value is refused.
const diskFormat = "wxgate-store/1"

// Buckets of the store file.
var (
	bucketMeta     = []byte("meta")     // "format" -> diskFormat; "sessions" -> count (uint64)
	bucketSessions = []byte("sessions") // app 0x00 openid -> expiry (uint64 Unix ns) + session_key
	bucketReplays  = []byte("replays")  // replay key -> expiry
	bucketEvents   = []byte("events")   // delivered event key -> expiry
	bucketExpiry   = []byte("expiry")   // expiry + kind byte + key -> nothing: what to sweep, in order
)

var (
	metaFormat   = []byte("format")
	metaSessions = []byte("sessions")
)

// Kind bytes of the expiry index.
const (
	expSession byte = 's'
	expReplay  byte = 'r'
	expEvent   byte = 'e'
)

// diskSweepEvery is how often expired records are removed; diskSweepBatch bounds one
// transaction of the sweep, so that writers wait little behind it.
const (
	diskSweepEvery = time.Minute
	diskSweepBatch = 5000
)

// diskBatchDelay is how long a write waits for others to share its fsync.
const diskBatchDelay = 2 * time.Millisecond

// OpenDisk opens (or creates) the store file in dir. The file is locked: a second process
// opening the same dir gets an error after one second rather than sharing it.
func OpenDisk(dir string, opts Options) (Store, error) {
	opts = opts.withDefaults()
	e, err := openDiskEngine(dir)
	if err != nil {
		return nil, err
	}
	e.clock = opts.Clock
	e.startSweeper()
	return newLocalStore(KindDisk, opts, e), nil
}

// diskEngine keeps the state in a bbolt file: a B+tree in one file, written with
// copy-on-write pages and fsync at every commit, so a crash (kill -9, power loss) leaves the
// last committed state. Reads are memory-mapped and take no lock that a writer holds.
type diskEngine struct {
	db       *bolt.DB
	path     string
	clock    func() time.Time
	sessions atomic.Int64
	stop     chan struct{}
	swept    sync.WaitGroup
}

func openDiskEngine(dir string) (e *diskEngine, err error) {
	if dir == "" {
		return nil, errors.New("store dir is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, DiskFile)
	// bbolt panics on some damaged files rather than failing; a damaged file is an error here.
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("store file %s is damaged (%v); move it away to start with an empty store, or restore a backup", path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store file %s is locked by another process (another wxgate with the same [store] dir?)", path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("store file %s is not a wxgate store or is damaged (%v); move it away to start with an empty store, or restore a backup", path, err)
	case err != nil:
		return nil, fmt.Errorf("store file %s: %w", path, err)
	}
	db.MaxBatchDelay = diskBatchDelay
	e = &diskEngine{db: db, path: path, stop: make(chan struct{})}
	if err := e.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return e, nil
}

// init creates the buckets of a new file, or checks the format of an existing one.
func (e *diskEngine) init() error {
	return e.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if hasAnyBucket(tx) {
				return fmt.Errorf("store file %s holds data that is not a wxgate store; move it away or point [store] dir elsewhere", e.path)
			}
			for _, name := range [][]byte{bucketMeta, bucketSessions, bucketReplays, bucketEvents, bucketExpiry} {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("store file %s: %w", e.path, err)
				}
			}
			return tx.Bucket(bucketMeta).Put(metaFormat, []byte(diskFormat))
		}
		if f := meta.Get(metaFormat); string(f) != diskFormat {
			return fmt.Errorf("store file %s has format %q, this wxgate reads %q; use the wxgate that wrote it (wxgate store export) or move the file away", e.path, truncated(f), diskFormat)
		}
		for _, name := range [][]byte{bucketSessions, bucketReplays, bucketEvents, bucketExpiry} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("store file %s lacks its %q bucket: it is damaged; restore a backup or move it away", e.path, name)
			}
		}
		if v := meta.Get(metaSessions); len(v) == 8 {
			e.sessions.Store(int64(binary.BigEndian.Uint64(v)))
		}
		return nil
	})
}

func hasAnyBucket(tx *bolt.Tx) bool {
	found := false
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { found = true; return nil })
	return found
}

func truncated(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// sessionKeyOf is the key of (app, openid) in the sessions bucket.
func sessionKeyOf(app, openid string) []byte {
	k := make([]byte, 0, len(app)+1+len(openid))
	k = append(k, app...)
	k = append(k, 0)
	return append(k, openid...)
}

func expiryKey(exp int64, kind byte, key []byte) []byte {
	k := make([]byte, 9, 9+len(key))
	binary.BigEndian.PutUint64(k, uint64(exp))
	k[8] = kind
	return append(k, key...)
}

func (e *diskEngine) putSession(app, openid, sessionKey string, exp time.Time) error {
	key := sessionKeyOf(app, openid)
	val := make([]byte, 8, 8+len(sessionKey))
	binary.BigEndian.PutUint64(val, uint64(exp.UnixNano()))
	val = append(val, sessionKey...)
	err := e.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		added, err := putExpiring(tx, b, expSession, key, val)
		if err != nil || !added {
			return err
		}
		return e.addSessions(tx, 1)
	})
	return e.wrap("write a session key", err)
}

// putExpiring stores key = val (val starts with its expiry) in b and indexes the expiry,
// replacing the index entry of an older value; it reports whether key is new.
func putExpiring(tx *bolt.Tx, b *bolt.Bucket, kind byte, key, val []byte) (bool, error) {
	idx := tx.Bucket(bucketExpiry)
	old := b.Get(key)
	if len(old) >= 8 {
		if err := idx.Delete(expiryKey(int64(binary.BigEndian.Uint64(old)), kind, key)); err != nil {
			return false, err
		}
	}
	if err := b.Put(key, val); err != nil {
		return false, err
	}
	return old == nil, idx.Put(expiryKey(int64(binary.BigEndian.Uint64(val)), kind, key), nil)
}

// addSessions moves the stored session count by n, in tx.
func (e *diskEngine) addSessions(tx *bolt.Tx, n int64) error {
	meta := tx.Bucket(bucketMeta)
	var cur int64
	if v := meta.Get(metaSessions); len(v) == 8 {
		cur = int64(binary.BigEndian.Uint64(v))
	}
	cur = max(cur+n, 0)
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(cur))
	if err := meta.Put(metaSessions, buf[:]); err != nil {
		return err
	}
	tx.OnCommit(func() { e.sessions.Store(cur) })
	return nil
}

func (e *diskEngine) appendSession(dst []byte, app string, openid []byte, now time.Time) ([]byte, bool, error) {
	var kbuf [128]byte
	key := append(append(append(kbuf[:0], app...), 0), openid...)
	found := false
	err := e.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get(key)
		if len(v) > 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano() {
			dst = append(dst, v[8:]...) // v is valid only inside the transaction
			found = true
		}
		return nil
	})
	return dst, found, e.wrap("read a session key", err)
}

func (e *diskEngine) seen(replay, event string, now time.Time) (replayed, delivered bool, err error) {
	ns := now.UnixNano()
	live := func(v []byte) bool { return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > ns }
	err = e.db.View(func(tx *bolt.Tx) error {
		replayed = replay != "" && live(tx.Bucket(bucketReplays).Get([]byte(replay)))
		delivered = live(tx.Bucket(bucketEvents).Get([]byte(event)))
		return nil
	})
	return replayed, delivered, e.wrap("read the callback records", err)
}

func (e *diskEngine) record(_ time.Time, replay string, replayExp time.Time, event string, eventExp time.Time) error {
	expVal := func(t time.Time) []byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano()))
		return b[:]
	}
	err := e.db.Batch(func(tx *bolt.Tx) error {
		if replay != "" {
			if _, err := putExpiring(tx, tx.Bucket(bucketReplays), expReplay, []byte(replay), expVal(replayExp)); err != nil {
				return err
			}
		}
		if event != "" {
			if _, err := putExpiring(tx, tx.Bucket(bucketEvents), expEvent, []byte(event), expVal(eventExp)); err != nil {
				return err
			}
		}
		return nil
	})
	return e.wrap("record a delivered callback", err)
}

func (e *diskEngine) sessionCount() int64 { return e.sessions.Load() }

// wrap names what failed and marks it as the store being unavailable.
func (e *diskEngine) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s in %s: %v", ErrUnavailable, what, e.path, err)
}

// startSweeper removes expired records now and every diskSweepEvery, until close.
func (e *diskEngine) startSweeper() {
	e.swept.Add(1)
	go func() {
		defer e.swept.Done()
		t := time.NewTicker(diskSweepEvery)
		defer t.Stop()
		for {
			for e.sweepOnce(e.clock()) == diskSweepBatch {
				select {
				case <-e.stop:
					return
				default:
				}
			}
			select {
			case <-e.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// sweepOnce removes up to diskSweepBatch records expired at now, oldest first, and returns
// how many it removed.
func (e *diskEngine) sweepOnce(now time.Time) int {
	var limit [8]byte
	binary.BigEndian.PutUint64(limit[:], uint64(now.UnixNano()))
	n := 0
	err := e.db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketExpiry)
		buckets := map[byte]*bolt.Bucket{expSession: tx.Bucket(bucketSessions), expReplay: tx.Bucket(bucketReplays), expEvent: tx.Bucket(bucketEvents)}
		// Keys first, deletes after: a cursor may skip an entry after a delete under it.
		var expired [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && len(expired) < diskSweepBatch && len(k) >= 9 && bytes.Compare(k[:8], limit[:]) <= 0; k, _ = c.Next() {
			expired = append(expired, bytes.Clone(k))
		}
		var sessions int64
		for _, k := range expired {
			if b := buckets[k[8]]; b != nil {
				key := k[9:]
				// The record may have been renewed since: only an unrenewed one goes.
				if v := b.Get(key); len(v) >= 8 && bytes.Equal(v[:8], k[:8]) {
					if err := b.Delete(key); err != nil {
						return err
					}
					if k[8] == expSession {
						sessions--
					}
				}
			}
			if err := idx.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		if sessions != 0 {
			return e.addSessions(tx, sessions)
		}
		return nil
	})
	if err != nil {
		return 0 // tried again at the next tick
	}
	return n
}

func (e *diskEngine) close() error {
	close(e.stop)
	e.swept.Wait()
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("close store file %s: %w", e.path, err)
	}
	return nil
}
