package bareproxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// serve runs srv on a loopback port until the test ends and returns the address.
func serve(t *testing.T, srv *fasthttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	// Shutdown closes only a listener Serve has taken; closing ln too ends a Serve not there yet.
	t.Cleanup(func() { srv.Shutdown(); ln.Close(); <-done })
	return ln.Addr().String()
}

func TestPassesRequestsAndAnswersThrough(t *testing.T) {
	upstream := serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Seen", string(ctx.RequestURI())+" "+string(ctx.Request.Header.Peek("X-In")))
		ctx.SetStatusCode(fasthttp.StatusCreated)
		ctx.SetBody(append([]byte("echo:"), ctx.PostBody()...))
	}})
	p, err := New(Config{Upstream: "http://" + upstream})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, p.Server())
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/xpay/currency_pay?pay_sig=ab%2Fc&x=1")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.Set("X-In", "v")
	req.SetBodyString(`{"env":0}`)
	if err := fasthttp.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusCreated || string(resp.Body()) != `echo:{"env":0}` {
		t.Fatalf("answer %d %q", resp.StatusCode(), resp.Body())
	}
	if got := string(resp.Header.Peek("X-Seen")); got != "/xpay/currency_pay?pay_sig=ab%2Fc&x=1 v" {
		t.Fatalf("upstream saw %q: the request line and headers must pass unchanged", got)
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	p, err := New(Config{Upstream: "http://" + gone})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, p.Server())
	status, _, err := fasthttp.Get(nil, "http://"+addr+"/")
	if err != nil || status != fasthttp.StatusBadGateway {
		t.Fatalf("status %d err %v, want 502", status, err)
	}
}

func TestRejectsBadUpstreams(t *testing.T) {
	for _, u := range []string{"", "ftp://127.0.0.1:1", "http://127.0.0.1", "https://127.0.0.1:1"} {
		cfg := Config{Upstream: u}
		if u == "https://127.0.0.1:1" {
			cfg.CAFile = "/nonexistent/ca.pem"
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
