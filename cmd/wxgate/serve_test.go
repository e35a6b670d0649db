package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// brokenListener fails every Accept with a permanent error.
type brokenListener struct{ net.Listener }

func (brokenListener) Accept() (net.Conn, error) { return nil, errors.New("listener broken") }

// TestServeExitsWhenAListenerStops: serve returns an error (exit status 1) when a listener stops
// on its own, and nil when it is asked to stop.
func TestServeExitsWhenAListenerStops(t *testing.T) {
	cfg, err := policies.Parse([]byte(`
[server]
app_listen = "127.0.0.1:0"
callback_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[[app]]
name = "door"
appid = "wx00000000000000e5"
secret = "serve-test-app-secret"
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name  string
		stops bool
	}{{"listener stops", true}, {"asked to stop", false}} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := proxy.NewGateway(cfg, proxy.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ls, err := proxy.Listen(cfg.Server)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.stops {
				ls.Callback = brokenListener{ls.Callback}
			} else {
				cancel()
			}
			srv := proxy.NewServer(g)
			srv.Start(ls)
			done := make(chan error, 1)
			go func() { done <- serveUntil(ctx, srv, log, nil, nil) }()
			select {
			case err := <-done:
				if tc.stops && (err == nil || !strings.Contains(err.Error(), "callback listener")) {
					t.Fatalf("want an error naming the callback listener, got %v", err)
				}
				if !tc.stops && err != nil {
					t.Fatalf("a requested stop returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not return")
			}
		})
	}
}
