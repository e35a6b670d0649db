package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/redistest"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/store"
)

// storeConfig writes a minimal config whose [store] section is section and returns its path.
func storeConfig(t *testing.T, dir, name, section string) string {
	t.Helper()
	text := fmt.Sprintf("[[app]]\nname = \"s\"\nappid = \"wx00000000000000f1\"\nsecret = \"store-test-secret\"\n[store]\n%s\n", section)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openStoreAt(t *testing.T, path string) store.Store {
	t.Helper()
	cfg, err := policies.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreExportImportCommand moves a disk store to Redis with the CLI: logged-in users and
// delivered events come along, session keys only with -secrets, in a file only its owner reads.
func TestStoreExportImportCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	diskCfg := storeConfig(t, dir, "disk.toml", `kind = "disk"`)
	s := openStoreAt(t, diskCfg)
	if err := s.PutSession(ctx, "wx00000000000000f1", "o-user", "c2Vzc2lvbi1rZXktZXhwb3J0"); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, "r1", "ev1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, c); err != nil {
		t.Fatal(err)
	}
	// While a process holds the store, the export is refused and names why.
	if _, _, err := runCmd(t, "store", "export", "-config", diskCfg); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("export of a store in use: %v", err)
	}
	s.Close()

	stdout, stderr, err := runCmd(t, "store", "export", "-config", diskCfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "session") || !strings.Contains(stdout, `"delivered"`) || !strings.Contains(stderr, "add -secrets") {
		t.Fatalf("export without -secrets:\n%s\n%s", stdout, stderr)
	}
	out := filepath.Join(dir, "state.jsonl")
	if _, _, err := runCmd(t, "store", "export", "-config", diskCfg, "-secrets", "-out", out); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v, want mode 0600", fi.Mode(), err)
	}

	srv := redistest.Start(t)
	redisCfg := storeConfig(t, dir, "redis.toml", fmt.Sprintf("kind = \"redis\"\nredis_url = %q", srv.URL()))
	if _, stderr, err := runCmd(t, "store", "import", "-config", redisCfg, "-in", out); err != nil || !strings.Contains(stderr, "imported 3 records") {
		t.Fatalf("import: %v %s", err, stderr)
	}
	r := openStoreAt(t, redisCfg)
	defer r.Close()
	key, ok, err := r.AppendSession(ctx, nil, "wx00000000000000f1", []byte("o-user"))
	if err != nil || !ok || string(key) != "c2Vzc2lvbi1rZXktZXhwb3J0" {
		t.Fatalf("session after import: %q %v %v", key, ok, err)
	}
	if c, err := r.Claim(ctx, "r2", "ev1"); err != nil || c.Verdict != store.AlreadyDelivered {
		t.Fatalf("delivered event after import: %v %v", c.Verdict, err)
	}

	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"type":"replay","key":"k","expires_at":"2099-01-01T00:00:00Z"}`+"\n"+`{"type":"replay","bogus":1}`+"\n"), 0o600)
	if _, _, err := runCmd(t, "store", "import", "-config", redisCfg, "-in", bad); err == nil || !strings.Contains(err.Error(), "record 2") {
		t.Fatalf("import of a bad line: %v", err)
	}
	if _, _, err := runCmd(t, "store", "export", "-config", storeConfig(t, dir, "mem.toml", `kind = "memory"`)); err == nil || !strings.Contains(err.Error(), "nothing to export") {
		t.Fatalf("export of the memory kind: %v", err)
	}
}

// TestServeRefusesABrokenStore: a damaged store file or an unreachable Redis stops serve with an
// error naming the file or the address; nothing falls back to memory, and the file is kept.
func TestServeRefusesABrokenStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "wxgate-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "wxgate-data", "wxgate.db")
	if err := os.WriteFile(db, []byte(strings.Repeat("garbage ", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := storeConfig(t, dir, "disk.toml", "")
	if _, _, err := runCmd(t, "serve", "-config", cfg); err == nil || !strings.Contains(err.Error(), db) {
		t.Fatalf("serve with a damaged store file: %v", err)
	}
	if b, _ := os.ReadFile(db); string(b) != strings.Repeat("garbage ", 2000) {
		t.Fatal("the damaged file was changed")
	}
	down := redistest.Start(t)
	down.Kill()
	cfg = storeConfig(t, dir, "redis.toml", fmt.Sprintf("kind = \"redis\"\nredis_url = \"redis://:pw-secret@%s\"", down.Addr()))
	_, _, err := runCmd(t, "serve", "-config", cfg)
	if err == nil || !strings.Contains(err.Error(), down.Addr()) || strings.Contains(err.Error(), "pw-secret") {
		t.Fatalf("serve with Redis unreachable: %v", err)
	}
}
