package proxy

import (
	"net"
	"testing"
	"time"
)

// TestShutdownRightAfterStart: a Server shut down before its serving goroutines reached
// fasthttp's Serve still stops, and its listeners are closed. (fasthttp's Shutdown only closes
// the listeners Serve has already taken; one taken later kept accepting, and Shutdown waited for
// it forever.)
func TestShutdownRightAfterStart(t *testing.T) {
	g := benchGateway(t)
	for i := range 50 {
		ls, err := Listen(g.cfg.Server)
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
