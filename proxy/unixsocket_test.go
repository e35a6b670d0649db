package proxy

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// TestListenUnixSocket: the app listener binds unix:PATH with the configured mode, serves HTTP
// there, and removes the file when closed.
func TestListenUnixSocket(t *testing.T) {
	for _, mode := range []os.FileMode{0o660, 0o600, 0o666} {
		path := filepath.Join(t.TempDir(), "app.sock")
		cfg := policies.Server{AppListen: "unix:" + path, AppSocketMode: fmt.Sprintf("%04o", uint32(mode)), CallbackListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0"}
		ls, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != mode {
			t.Fatalf("socket file %v %v, want a socket with mode %v", fi.Mode(), err, mode)
		}
		srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString("over the socket") }}
		go srv.Serve(ls.App)
		c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return net.Dial("unix", path) }}
		status, body, err := c.Get(nil, "http://wxgate/x")
		if err != nil || status != 200 || string(body) != "over the socket" {
			t.Fatalf("GET over the socket: %d %q %v", status, body, err)
		}
		srv.Shutdown()
		ls.Callback.Close()
		ls.Admin.Close()
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Fatalf("the socket file is still there after the listener closed: %v", err)
		}
	}
}

// TestListenUnixStaleSocket: a socket file nobody listens on (a crashed wxgate's) is replaced; a
// socket someone listens on and a file that is not a socket are left alone and refused.
func TestListenUnixStaleSocket(t *testing.T) {
	dir := t.TempDir()

	stale := filepath.Join(dir, "stale.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false) // as a killed process leaves it
	old.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Fatalf("setup: the stale file should exist: %v", err)
	}
	ln, err := listenUnix(stale, 0o660)
	if err != nil {
		t.Fatalf("a stale socket file should be replaced: %v", err)
	}
	ln.Close()

	live := filepath.Join(dir, "live.sock")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := listenUnix(live, 0o660); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Fatalf("a live socket: want a refusal, got %v", err)
	}
	go func() {
		if c, err := other.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", live)
	if err != nil {
		t.Fatalf("the live socket was disturbed: %v", err)
	}
	c.Close()

	regular := filepath.Join(dir, "app.sock")
	if err := os.WriteFile(regular, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(regular, 0o660); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("a regular file: want a refusal, got %v", err)
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "not a socket" {
		t.Fatalf("the regular file was touched: %q %v", b, err)
	}
}
