package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestShutdownRightAfterStart: a Server shut down before its serving goroutines reached
// fasthttp's Serve still stops, and its listeners are closed. (fasthttp's Shutdown only closes
// the listeners Serve has already taken; one taken later kept accepting, and Shutdown waited for
// it forever.)
func TestShutdownRightAfterStart(t *testing.T) {
	g := benchGateway(t)
	for i := range 50 {
		ls, err := Listen(g.current().cfg.Server)
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(g)
		srv.Start(ls)
		done := make(chan error, 1)
		go func() { done <- srv.Shutdown() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: shutdown: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Shutdown right after Start did not return", i)
		}
		for name, ln := range map[string]net.Listener{"app": ls.App, "callback": ls.Callback, "admin": ls.Admin} {
			if err := ln.Close(); err == nil {
				t.Fatalf("round %d: the %s listener was still open after Shutdown", i, name)
			}
		}
	}
}

// scriptedListener answers Accept from a script of errors, then with its real listener; after
// the script, permanent (when set) is returned instead.
type scriptedListener struct {
	net.Listener
	mu        sync.Mutex
	script    []error
	permanent error
	calls     int
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls++
	if len(l.script) > 0 {
		err := l.script[0]
		l.script = l.script[1:]
		l.mu.Unlock()
		return nil, err
	}
	perm := l.permanent
	l.mu.Unlock()
	if perm != nil {
		return nil, perm
	}
	return l.Listener.Accept()
}

// TestKeepAcceptingRidesOutTemporaryErrors: EMFILE, ENFILE and aborted connections are retried
// (and counted); a permanent error and Close end Accept.
func TestKeepAcceptingRidesOutTemporaryErrors(t *testing.T) {
	real, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	enfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENFILE)}
	aborted := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}
	sl := &scriptedListener{Listener: real, script: []error{emfile, enfile, aborted, emfile}}
	var failures atomic.Uint64
	logs := &bytes.Buffer{}
	ln := newKeepAccepting(sl, "callback listener", &failures, newRateLog(slog.New(slog.NewTextHandler(logs, nil)), time.Now))
	go func() {
		if c, err := net.Dial("tcp", real.Addr().String()); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept gave up on a temporary error: %v", err)
	}
	c.Close()
	if failures.Load() != 4 {
		t.Fatalf("counted %d failures, want 4", failures.Load())
	}
	if n := strings.Count(logs.String(), "accepting a connection failed"); n != 1 {
		t.Fatalf("want one rate-limited log line for 4 failures, got %d:\n%s", n, logs)
	}
	sl.mu.Lock()
	sl.permanent = errors.New("listener broken")
	sl.mu.Unlock()
	if _, err := ln.Accept(); err == nil || !strings.Contains(err.Error(), "listener broken") {
		t.Fatalf("a permanent error must end Accept, got %v", err)
	}
	// Close ends a backoff in progress.
	sl.mu.Lock()
	sl.permanent = nil
	sl.script = []error{emfile, emfile, emfile, emfile, emfile, emfile, emfile, emfile, emfile, emfile}
	sl.mu.Unlock()
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// TestStoppedListenerFailsHealth: a listener that stops accepting on its own fails /healthz,
// naming it, and closes Failed so that serve exits for its supervisor to restart it.
func TestStoppedListenerFailsHealth(t *testing.T) {
	g := benchGateway(t)
	ls, err := Listen(g.current().cfg.Server)
	if err != nil {
		t.Fatal(err)
	}
	broken := &scriptedListener{Listener: ls.Callback, permanent: errors.New("listener broken")}
	ls.Callback = broken
	srv := NewServer(g)
	srv.Start(ls)
	defer srv.Shutdown()
	select {
	case <-srv.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("Failed was not closed when the callback listener stopped")
	}
	if err := srv.Err(); err == nil || !strings.Contains(err.Error(), "callback listener") {
		t.Fatalf("Err: %v", err)
	}
	status, body, err := fasthttp.Get(nil, "http://"+ls.Admin.Addr().String()+"/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if status != 503 || !strings.Contains(string(body), "callback listener") {
		t.Fatalf("/healthz: %d %s", status, body)
	}
}

// TestGatewayClose: Close stops the signing threads (a signature asked for afterwards fails at
// once instead of waiting for a thread that is gone) and may be called twice.
func TestGatewayClose(t *testing.T) {
	g := merchantGateway(t)
	m := g.current().merchants["pk"]
	if _, aerr := g.rsaSign(m, nil, []byte("before")); aerr != nil {
		t.Fatalf("a signature before Close: %v", aerr)
	}
	g.Close()
	g.Close()
	done := make(chan *apiError, 1)
	go func() { _, aerr := g.rsaSign(m, nil, []byte("after")); done <- aerr }()
	select {
	case aerr := <-done:
		if aerr == nil {
			t.Fatal("a signature after Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a signature after Close hangs")
	}
}
