package proxy

import (
	"bufio"
	"encoding/json"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/policies"
)

// dyingServer is a raw HTTP/1.1 server on loopback: it answers 200 to /ok, and on /die reads the
// whole request, counts it and closes the connection without answering (a server that took the
// request and then died).
type dyingServer struct {
	addr  string
	dies  atomic.Int32 // /die requests read in full
	conns atomic.Int32 // connections accepted
}

func startDyingServer(t *testing.T) *dyingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &dyingServer{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go s.serve(c)
		}
	}()
	return s
}

func (s *dyingServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		if string(req.URI().Path()) == "/die" {
			s.dies.Add(1)
			return
		}
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
			return
		}
	}
}

// TestIdleRetryNeverResends: a request that may have reached the server is never sent twice,
// on a new connection or on a reused one (checked for an idle close and found open, or too
// recently used to be checked), through the upstream client and the forwarder alike.
func TestIdleRetryNeverResends(t *testing.T) {
	clients := []struct {
		name string
		// send makes one client (checking reused connections idle for at least after) and
		// returns a function that sends one request to path on srv and reports whether it failed.
		send func(t *testing.T, srv *dyingServer, after time.Duration) func(path string) bool
	}{
		{"upstream", func(t *testing.T, srv *dyingServer, after time.Duration) func(string) bool {
			u, err := newUpstream("http://"+srv.addr, policies.Upstream{Timeout: 2 * time.Second, MaxConnsPerHost: 4, MaxIdleDuration: time.Minute, MaxResponseBytes: 1 << 20}, nil)
			if err != nil {
				t.Fatal(err)
			}
			u.client.Dial = checkIdle((&fasthttp.TCPDialer{}).Dial, after)
			g := benchGateway(t)
			return func(path string) bool {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI(u.base + path)
				req.Header.SetMethod(fasthttp.MethodPost)
				req.SetBodyString(`{"order_id":"o-1"}`)
				aerr := g.do(u, "/xpay/query_order", req, resp)
				if aerr != nil && aerr.Code != CodeUpstreamUnreach {
					t.Fatalf("%s: %s, want %s", path, aerr.Code, CodeUpstreamUnreach)
				}
				return aerr != nil
			}
		}},
		{"forwarder", func(t *testing.T, srv *dyingServer, after time.Duration) func(string) bool {
			f := newForwarder("forward-secret-0123456789", 2*time.Second, 4, time.Now)
			f.client.DialTimeout = nil
			f.client.Dial = checkIdle((&fasthttp.TCPDialer{}).Dial, after)
			n := 0
			return func(path string) bool {
				n++
				ev := &event.Event{ID: "ev-" + string(rune('0'+n)), Source: event.SourceWeChatPayV3, Type: "T", Data: json.RawMessage(`{}`)}
				ok, _, _ := f.forward("http://"+srv.addr+path, ev)
				return !ok
			}
		}},
	}
	cases := []struct {
		name   string
		reused bool          // an answered request first, so /die goes out on a pooled connection
		after  time.Duration // the idle check's threshold: 0 checks every reuse
	}{
		{"new connection", false, idleCheckAfter},
		{"reused, checked and open", true, 0},
		{"reused, not checked", true, idleCheckAfter},
	}
	for _, cl := range clients {
		for _, c := range cases {
			t.Run(cl.name+"/"+c.name, func(t *testing.T) {
				srv := startDyingServer(t)
				send := cl.send(t, srv, c.after)
				if c.reused && send("/ok") {
					t.Fatal("/ok failed")
				}
				if !send("/die") {
					t.Fatal("a request the server took and died on was reported a success")
				}
				if n := srv.dies.Load(); n != 1 {
					t.Fatalf("the server read the request %d times, want 1", n)
				}
				if n := srv.conns.Load(); n != 1 {
					t.Fatalf("%d connections, want 1", n)
				}
			})
		}
	}
}

// TestPeerClosed: the idle check tells an open connection from one whose peer closed it, reset
// it, or sent bytes nobody asked for.
func TestPeerClosed(t *testing.T) {
	for _, c := range []struct {
		name   string
		peer   func(net.Conn) // what the peer does to its end
		closed bool
	}{
		{"open", func(net.Conn) {}, false},
		{"closed (FIN)", func(p net.Conn) { p.Close() }, true},
		{"reset (RST)", func(p net.Conn) { p.(*net.TCPConn).SetLinger(0); p.Close() }, true},
		{"unsolicited bytes", func(p net.Conn) { p.Write([]byte("x")) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			peer, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			c.peer(peer)
			raw, err := conn.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			if !c.closed {
				if peerClosed(raw) {
					t.Fatal("an open connection was taken for closed")
				}
				return
			}
			// What the peer did reaches this end asynchronously: wait for it to be seen.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			deadline := time.After(5 * time.Second)
			for !peerClosed(raw) {
				select {
				case <-tick.C:
				case <-deadline:
					t.Fatal("the peer's close was not seen")
				}
			}
		})
	}
}
