package loadgen

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startServer serves h on a loopback port and returns its address.
func startServer(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, CloseOnShutdown: true}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	// Shutdown closes only a listener Serve has taken; closing ln too ends a Serve not there yet.
	t.Cleanup(func() { srv.Shutdown(); ln.Close(); <-done })
	return ln.Addr().String()
}

func TestRunCountsAnswersAndFailures(t *testing.T) {
	var n atomic.Int64
	addr := startServer(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/flaky":
			if n.Add(1)%3 == 0 {
				ctx.Error("boom", fasthttp.StatusInternalServerError)
				return
			}
		case "/wrong":
			ctx.SetBodyString("errcode 1")
			return
		}
		ctx.SetBodyString("ok")
	})
	run := func(path string, check Checker) *Result {
		t.Helper()
		res, err := Run(context.Background(), Config{
			Addr: addr, Conns: 4, Duration: 250 * time.Millisecond, Check: check,
			Build: func(conn int, req *fasthttp.Request) bool {
				req.SetRequestURI("http://" + addr + path)
				return true
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests == 0 || res.Latency.Count() != res.Requests || res.RPS() <= 0 {
			t.Fatalf("%s: %d requests, %d latencies, %.0f/s", path, res.Requests, res.Latency.Count(), res.RPS())
		}
		if res.Elapsed > 2*time.Second {
			t.Fatalf("%s: the run lasted %v, past its 250ms (+ in-flight) bound", path, res.Elapsed)
		}
		return res
	}
	ok := func(resp *fasthttp.Response) error {
		if string(resp.Body()) != "ok" {
			return errors.New("answer is not ok")
		}
		return nil
	}
	if res := run("/ok", ok); res.Errors != 0 {
		t.Errorf("/ok: %d errors: %v", res.Errors, res.Samples)
	}
	res := run("/flaky", nil)
	if res.Errors == 0 || res.Errors > res.Requests/2 || len(res.Samples) == 0 || !strings.Contains(res.Samples[0], "HTTP 500") {
		t.Errorf("/flaky: %d errors of %d, samples %v", res.Errors, res.Requests, res.Samples)
	}
	if res := run("/wrong", ok); res.Errors != res.Requests {
		t.Errorf("/wrong: %d errors of %d: the check must refuse every answer", res.Errors, res.Requests)
	}
}

func TestRunStopsWhenBuildersAreExhausted(t *testing.T) {
	addr := startServer(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusNoContent) })
	var sent [3]int
	res, err := Run(context.Background(), Config{
		Addr: addr, Conns: 3, Duration: 5 * time.Second,
		Build: func(conn int, req *fasthttp.Request) bool {
			if sent[conn] == 20 {
				return false
			}
			sent[conn]++
			req.SetRequestURI("http://" + addr + "/")
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 60 || res.Errors != 0 {
		t.Fatalf("%d requests, %d errors (%v); want 60 and 0", res.Requests, res.Errors, res.Samples)
	}
	if res.Elapsed >= 5*time.Second {
		t.Fatalf("elapsed %v: exhausted builders must end the run early", res.Elapsed)
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more: every request fails to connect
	var n atomic.Int64
	res, err := Run(context.Background(), Config{
		Addr: addr, Conns: 2, Duration: time.Second, Timeout: 200 * time.Millisecond,
		Build: func(conn int, req *fasthttp.Request) bool {
			req.SetRequestURI("http://" + addr + "/")
			return n.Add(1) <= 10
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 10 || res.Errors != 10 {
		t.Fatalf("%d requests, %d errors; want 10 failed connects", res.Requests, res.Errors)
	}
}

func TestRunRefusesUnboundedOrRemoteRuns(t *testing.T) {
	build := func(int, *fasthttp.Request) bool { return false }
	for _, c := range []Config{
		{Addr: "10.1.2.3:80", Conns: 1, Duration: time.Second, Build: build},
		{Addr: "example.com:80", Conns: 1, Duration: time.Second, Build: build},
		{Addr: "127.0.0.1:80", Conns: 0, Duration: time.Second, Build: build},
		{Addr: "127.0.0.1:80", Conns: 1, Duration: time.Hour, Build: build},
		{Addr: "127.0.0.1:80", Conns: 1, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) accepted", c)
		}
	}
	for _, a := range []string{"127.0.0.1:1", "[::1]:1", "localhost:1", "127.9.9.9:1"} {
		if err := CheckLoopback(a); err != nil {
			t.Errorf("CheckLoopback(%s): %v", a, err)
		}
	}
}

func TestPacedRunKeepsItsRateAndCountsQueueing(t *testing.T) {
	fast := startServer(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	slow := startServer(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(20 * time.Millisecond) // a server slower than the pace asked of it
		ctx.SetBodyString("ok")
	})
	run := func(addr string, rate float64, conns int) *Result {
		t.Helper()
		res, err := Run(context.Background(), Config{
			Addr: addr, Conns: conns, Duration: 500 * time.Millisecond, Rate: rate,
			Build: func(conn int, req *fasthttp.Request) bool { req.SetRequestURI("http://" + addr + "/"); return true },
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// 200/s for 0.5 s schedules at most 100 requests (plus one per connection at time zero).
	if res := run(fast, 200, 4); res.Requests == 0 || res.Requests > 104 || res.Errors != 0 {
		t.Errorf("paced at 200/s for 0.5 s: %d requests, %d errors", res.Requests, res.Errors)
	}
	// One connection asked for 100/s from a server answering in 20 ms: requests fall ever further
	// behind their schedule, and the paced latency shows that wait; the closed loop does not.
	closed, paced := run(slow, 0, 1), run(slow, 100, 1)
	if cp, pp := closed.Latency.Quantile(0.99), paced.Latency.Quantile(0.99); pp < 3*cp {
		t.Errorf("paced p99 %v vs closed-loop p99 %v: the wait behind slow answers is not counted", pp, cp)
	}
	// That wait is the send lag: requests went out ever later than due; a closed loop has none.
	if lag := paced.Lag.Quantile(0.99); lag < 20*time.Millisecond || closed.Lag.Count() != 0 {
		t.Errorf("paced send lag p99 %v (want at least one slow answer, 20ms), closed-loop lag samples %d (want 0)", lag, closed.Lag.Count())
	}
	// Without the lag, each request took the server's 20 ms: the service time stays near it
	// while the latency grows; in the closed loop the two are the same samples.
	if sp, pp := paced.Service.Quantile(0.99), paced.Latency.Quantile(0.99); sp < 20*time.Millisecond || 3*sp > pp {
		t.Errorf("paced service p99 %v, latency p99 %v: want at least 20 ms, and under a third of the latency", sp, pp)
	}
	if closed.Service.Count() != closed.Latency.Count() || closed.Service.Quantile(0.99) != closed.Latency.Quantile(0.99) {
		t.Errorf("closed loop: service %d samples p99 %v, latency %d samples p99 %v; want the same", closed.Service.Count(),
			closed.Service.Quantile(0.99), closed.Latency.Count(), closed.Latency.Quantile(0.99))
	}
}

func TestPacedRunSendsOnAnyFreeConnection(t *testing.T) {
	var n atomic.Int64
	addr := startServer(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond) // the first answer is slow; every other one is instant
			ctx.SetStatusCode(fasthttp.StatusAccepted)
		}
	})
	res, err := Run(context.Background(), Config{
		Addr: addr, Conns: 2, Duration: 500 * time.Millisecond, Rate: 50,
		Build: func(conn int, req *fasthttp.Request) bool { req.SetRequestURI("http://" + addr + "/"); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	// While one connection waits 300 ms, the other sends every request due: none of the instant
	// answers waited behind the slow one (pacing per connection would have delayed about a third).
	fast := res.ByStatus[fasthttp.StatusOK]
	if fast == nil || fast.Count() < 15 || res.ByStatus[fasthttp.StatusAccepted] == nil {
		t.Fatalf("by status %v; want one slow answer and at least 15 instant ones", res.ByStatus)
	}
	if p99 := fast.Quantile(0.99); p99 > 150*time.Millisecond {
		t.Errorf("p99 of the instant answers %v: requests waited for the busy connection", p99)
	}
	// From its sending, the slow answer took its 300 ms; the instant ones far less.
	if slow, fastSent := res.ServiceByStatus[fasthttp.StatusAccepted], res.ServiceByStatus[fasthttp.StatusOK]; slow == nil || fastSent == nil ||
		slow.Count() != 1 || slow.Max() < 300*time.Millisecond || fastSent.Count() != fast.Count() || fastSent.Quantile(0.5) > 150*time.Millisecond {
		t.Errorf("service by status: slow %v, instant %v; want one answer of at least 300 ms and %d fast ones", slow, fastSent, fast.Count())
	}
}

func TestRunSplitsLatencyByStatus(t *testing.T) {
	var n atomic.Int64
	addr := startServer(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1)%2 == 0 {
			ctx.Error("busy", fasthttp.StatusServiceUnavailable)
			return
		}
		ctx.SetBodyString("ok")
	})
	var sent atomic.Int64
	res, err := Run(context.Background(), Config{
		Addr: addr, Conns: 2, Duration: 5 * time.Second,
		Build: func(conn int, req *fasthttp.Request) bool {
			req.SetRequestURI("http://" + addr + "/")
			return sent.Add(1) <= 40
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ok, busy := res.ByStatus[200], res.ByStatus[503]
	if ok == nil || busy == nil || ok.Count() != 20 || busy.Count() != 20 || res.Errors != 20 {
		t.Fatalf("by status %v, %d errors; want 20 answers of 200 and 20 of 503 (the errors)", res.ByStatus, res.Errors)
	}
	// A closed loop sends each request when due: the service times are the same samples.
	for _, code := range []int{200, 503} {
		if s, l := res.ServiceByStatus[code], res.ByStatus[code]; s == nil || s.Count() != l.Count() || s.Quantile(0.99) != l.Quantile(0.99) {
			t.Errorf("status %d: service by status %v, latency %v; want the same samples", code, s, l)
		}
	}
}

// TestWarmOpensEveryConnectionBeforeTheRun checks Config.Warm: each connection sends its
// warm-up request before the run, the warm-ups are not counted, and no measured request opens
// a connection (the measured latencies then never include a TCP handshake).
func TestWarmOpensEveryConnectionBeforeTheRun(t *testing.T) {
	const conns = 8
	var warmups, measured, opened atomic.Int64
	var measuredBeforeAllWarm atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/warm" {
				warmups.Add(1)
				ctx.SetStatusCode(fasthttp.StatusNotFound) // a warm-up's answer does not matter
				return
			}
			if warmups.Load() < conns {
				measuredBeforeAllWarm.Store(true)
			}
			measured.Add(1)
		},
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				opened.Add(1)
			}
		},
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Shutdown(); ln.Close(); <-done })
	addr := ln.Addr().String()
	for _, rate := range []float64{0, 400} {
		warmups.Store(0)
		measured.Store(0)
		opened.Store(0)
		res, err := Run(context.Background(), Config{
			Addr: addr, Conns: conns, Duration: 200 * time.Millisecond, Rate: rate,
			Warm:  func(_ int, req *fasthttp.Request) bool { req.SetRequestURI("/warm"); return true },
			Build: func(_ int, req *fasthttp.Request) bool { req.SetRequestURI("/"); return true },
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := warmups.Load(); got != conns {
			t.Errorf("rate %v: %d warm-up requests, want %d (one per connection)", rate, got, conns)
		}
		if res.Requests == 0 || res.Errors != 0 || int64(res.Requests) != measured.Load() {
			t.Errorf("rate %v: counted %d requests (%d failed), the server answered %d measured ones", rate, res.Requests, res.Errors, measured.Load())
		}
		if got := opened.Load(); got != conns {
			t.Errorf("rate %v: %d connections opened, want %d: measured requests opened connections", rate, got, conns)
		}
		if measuredBeforeAllWarm.Load() {
			t.Errorf("rate %v: a measured request came before every connection was warm", rate)
		}
	}
}
