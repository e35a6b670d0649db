package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openDiskT(t *testing.T, dir string, opts Options) Store {
	t.Helper()
	s, err := OpenDisk(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDiskKeepsAcrossReopen: what a closed store held is what the next open serves.
func TestDiskKeepsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openDiskT(t, dir, Options{})
	if err := s.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	c := mustClaim(t, s, "r1", "ev1", Claimed)
	if err := s.Delivered(bg, c); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s, "r2", "ev2", Claimed) // in flight when the process stops: not kept
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDiskT(t, dir, Options{})
	defer s.Close()
	mustSession(t, s, "wxa", "o1", "key-1")
	mustClaim(t, s, "r1", "ev1", Replayed)
	mustClaim(t, s, "r3", "ev1", AlreadyDelivered)
	mustClaim(t, s, "r2", "ev2", Claimed)
	if n := s.Stats().Sessions; n != 1 {
		t.Fatalf("Stats.Sessions = %d after reopen, want 1", n)
	}
}

// TestDiskRefusesBadFiles: a file that is not this store's is an error naming it, and the
// file is left as it was (nothing is lost on the next start).
func TestDiskRefusesBadFiles(t *testing.T) {
	cases := []struct {
		name  string
		write func(t *testing.T, path string)
		want  string
	}{
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a wxgate store or is damaged"},
		{"another bbolt file", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err }); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, "holds data that is not a wxgate store"},
		{"another format version", func(t *testing.T, path string) {
			s := openDiskT(t, filepath.Dir(path), Options{})
			s.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaFormat, []byte("wxgate-store/9")) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, `has format "wxgate-store/9"`},
		{"truncated", func(t *testing.T, path string) {
			s := openDiskT(t, filepath.Dir(path), Options{})
			s.Close()
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		}, DiskFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, DiskFile)
			c.write(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := OpenDisk(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("OpenDisk accepted the file")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q should say %q and name %s", err, c.want, path)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(before) {
				t.Fatal("the refused file was changed")
			}
		})
	}
}

// TestDiskLocked: a second process (here: a second open) on the same dir is refused.
func TestDiskLocked(t *testing.T) {
	dir := t.TempDir()
	s := openDiskT(t, dir, Options{})
	defer s.Close()
	_, err := OpenDisk(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
}

// TestDiskUnwritableDir: a dir that cannot be created is an error naming it.
func TestDiskUnwritableDir(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data") // under a regular file: never creatable, even as root
	_, err := OpenDisk(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("OpenDisk(%s): %v", dir, err)
	}
}

// TestDiskSweep removes expired records and their index entries, and keeps the session count.
func TestDiskSweep(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	e, err := openDiskEngine(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e.db.Close()
	now := clock.Now()
	for i, exp := range []time.Duration{time.Minute, time.Hour} {
		if err := e.putSession("wxa", string(rune('a'+i)), "key", now.Add(exp)); err != nil {
			t.Fatal(err)
		}
	}
	// Renewed: its first expiry's index entry must not delete the renewed record.
	if err := e.putSession("wxa", "r", "key", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := e.putSession("wxa", "r", "key2", now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.record(now, "r1", now.Add(time.Minute), "ev1", now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := e.sweepOnce(now.Add(2 * time.Minute)); n != 2 { // session a, replay r1
		t.Fatalf("swept %d, want 2", n)
	}
	if got := e.sessionCount(); got != 2 {
		t.Fatalf("session count %d, want 2", got)
	}
	if _, ok, _ := e.appendSession(nil, "wxa", []byte("r"), now); !ok {
		t.Fatal("the renewed session was swept")
	}
	if n := e.sweepOnce(now.Add(24 * time.Hour)); n != 3 {
		t.Fatalf("swept %d, want 3", n)
	}
	err = e.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketReplays, bucketEvents, bucketExpiry} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("bucket %s holds %d keys after the sweep", b, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.sessionCount(); got != 0 {
		t.Fatalf("session count %d, want 0", got)
	}
}
