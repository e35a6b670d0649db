// Package loadgen is a closed-loop HTTP load generator for loopback benchmarks: a fixed number
// of connections, each sending its next request as soon as the previous one was answered, for a
// fixed time. It records a latency histogram, the request rate and every failure (a transport
// error, a non-2xx answer, or an answer the scenario's check refuses).
//
// It only ever targets loopback addresses (127.0.0.0/8, ::1, localhost), and every run is
// bounded in time.
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits that keep a run bounded.
const (
	MaxConns    = 4096
	MaxDuration = 10 * time.Minute
	MaxRate     = 1_000_000 // requests per second of a paced run
)

// Builder fills req (already reset) with the next request of connection conn (0..Conns-1); a
// request URI without a host is sent with the target's address as its Host. It
// returns false when that connection has nothing more to send, which ends it early. Each
// connection calls its Builder from one goroutine; different connections call it concurrently.
type Builder func(conn int, req *fasthttp.Request) bool

// Checker judges a 2xx answer; an error counts the request as failed (e.g. a WeChat errcode
// other than 0, or a signature that does not verify).
type Checker func(resp *fasthttp.Response) error

// Config describes one run.
type Config struct {
	Addr     string        // host:port of the target; the host must be a loopback address
	TLS      *tls.Config   // nil for plain HTTP
	Conns    int           // connections, each with one request in flight
	Duration time.Duration // how long the run lasts (at most MaxDuration)
	Timeout  time.Duration // per request; 5 s when zero
	Build    Builder
	Check    Checker // optional
	// Rate, when positive, makes the run open-loop: requests are scheduled at that many per second
	// in all, evenly spaced, and each is sent by the first connection free to send it. Its latency
	// is measured from its scheduled time, so a request that waited because every connection was
	// busy counts that wait (no coordinated omission), while one slow answer does not delay the
	// requests the other connections can send. Zero: closed loop, each connection sending as fast
	// as it is answered.
	Rate float64
	// Warm, when set, builds one request each connection sends before the run starts (answered
	// or not, it is not counted), so that no measured request pays for opening its connection.
	// The run's clock and its schedule start once every connection has sent it.
	Warm Builder
}

// Result is what a run measured.
type Result struct {
	Requests uint64        // requests completed, failed ones included
	Errors   uint64        // failed requests
	Samples  []string      // up to five distinct failure descriptions
	Elapsed  time.Duration // from the start to the last answer
	Latency  Histogram     // every request's latency, failed ones included
	// ByStatus is the latency of the answers of each HTTP status; transport errors under 0.
	ByStatus map[int]*Histogram
	// Lag, in an open-loop run, is how late each request was sent after its due time: every
	// connection busy, or the load generator itself waiting for a CPU.
	Lag Histogram
	// Service is each request's time from its sending to its answer: the latency without the
	// send lag (the same as Latency in a closed loop).
	Service Histogram
	// ServiceByStatus is Service split like ByStatus.
	ServiceByStatus map[int]*Histogram
}

// mergeByStatus adds the histograms of src into dst, creating those dst lacks.
func mergeByStatus(dst, src map[int]*Histogram) {
	for code, h := range src {
		if dst[code] == nil {
			dst[code] = &Histogram{}
		}
		dst[code].Merge(h)
	}
}

// Merge adds another run of the same load to r: counts, elapsed time, every histogram, and
// failure samples while there are fewer than five.
func (r *Result) Merge(o *Result) {
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	r.Latency.Merge(&o.Latency)
	r.Lag.Merge(&o.Lag)
	r.Service.Merge(&o.Service)
	for _, s := range o.Samples {
		if len(r.Samples) < 5 {
			r.Samples = append(r.Samples, s)
		}
	}
	if r.ByStatus == nil {
		r.ByStatus = map[int]*Histogram{}
	}
	if r.ServiceByStatus == nil {
		r.ServiceByStatus = map[int]*Histogram{}
	}
	mergeByStatus(r.ByStatus, o.ByStatus)
	mergeByStatus(r.ServiceByStatus, o.ServiceByStatus)
}

// RPS returns the completed requests per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// maxSamples bounds the failure descriptions kept.
const maxSamples = 5

// Run performs the run described by cfg; it returns early, with what was measured so far, when
// ctx is done.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	workers := make([]*worker, cfg.Conns)
	var wg, warmed sync.WaitGroup
	var start time.Time
	var sched *schedule
	begin := make(chan struct{}) // closed when start and sched are set
	for i := range workers {
		w := &worker{id: i, cfg: &cfg, timeout: timeout, client: newClient(cfg, timeout)}
		workers[i] = w
		wg.Add(1)
		warmed.Add(1)
		go func() {
			defer wg.Done()
			w.warm()
			warmed.Done()
			<-begin
			w.sched = sched
			w.run(ctx, start)
		}()
	}
	warmed.Wait()
	start = time.Now()
	if cfg.Rate > 0 {
		sched = &schedule{start: start, period: time.Duration(float64(time.Second) / cfg.Rate)}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	close(begin)
	wg.Wait()
	res := &Result{ByStatus: map[int]*Histogram{}, ServiceByStatus: map[int]*Histogram{}}
	seen := map[string]bool{}
	for _, w := range workers {
		w.client.CloseIdleConnections()
		res.Requests += w.requests
		res.Errors += w.errors
		res.Latency.Merge(&w.hist)
		res.Lag.Merge(&w.lag)
		res.Service.Merge(&w.service)
		mergeByStatus(res.ByStatus, w.byStatus)
		mergeByStatus(res.ServiceByStatus, w.serviceByStatus)
		res.Elapsed = max(res.Elapsed, w.last)
		for _, s := range w.samples {
			if !seen[s] && len(res.Samples) < maxSamples {
				seen[s] = true
				res.Samples = append(res.Samples, s)
			}
		}
	}
	return res, nil
}

func (cfg *Config) validate() error {
	switch {
	case cfg.Build == nil:
		return errors.New("loadgen: no Build function")
	case cfg.Conns <= 0 || cfg.Conns > MaxConns:
		return fmt.Errorf("loadgen: %d connections, want 1..%d", cfg.Conns, MaxConns)
	case cfg.Duration <= 0 || cfg.Duration > MaxDuration:
		return fmt.Errorf("loadgen: duration %v, want up to %v", cfg.Duration, MaxDuration)
	case cfg.Rate < 0 || cfg.Rate > MaxRate:
		return fmt.Errorf("loadgen: rate %.0f/s, want 0 (closed loop) up to %d/s", cfg.Rate, MaxRate)
	}
	return CheckLoopback(cfg.Addr)
}

// CheckLoopback returns an error unless addr (host:port) names a loopback address.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("loadgen: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("loadgen: %q is not a loopback address; load is only ever sent to this machine", addr)
}

// newClient returns a client holding exactly one connection to the target.
func newClient(cfg Config, timeout time.Duration) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                      cfg.Addr,
		Name:                      "wxbench",
		IsTLS:                     cfg.TLS != nil,
		TLSConfig:                 cfg.TLS,
		MaxConns:                  1,
		ReadTimeout:               timeout,
		WriteTimeout:              timeout,
		MaxConnWaitTimeout:        timeout,
		MaxIdemponentCallAttempts: 1,
		DisablePathNormalizing:    true,
		ReadBufferSize:            16 << 10,
		WriteBufferSize:           16 << 10,
		MaxResponseBodySize:       4 << 20,
	}
}

// worker is one connection of a run.
type worker struct {
	id       int
	cfg      *Config
	timeout  time.Duration
	client   *fasthttp.HostClient
	hist     Histogram
	requests uint64
	errors   uint64
	samples  []string
	last     time.Duration // time of the last answer since the run started
	byStatus map[int]*Histogram
	// serviceByStatus is byStatus counted from the sending.
	serviceByStatus map[int]*Histogram
	sched           *schedule // nil in a closed loop
	lag             Histogram
	service         Histogram
}

// schedule hands out the send times of an open-loop run: the k-th request is due at
// start + k*period, whichever connection takes it.
type schedule struct {
	start  time.Time
	period time.Duration
	taken  atomic.Int64
}

// take returns the due time of the next request not yet taken by any connection.
func (s *schedule) take() time.Time {
	return s.start.Add(s.period * time.Duration(s.taken.Add(1)-1))
}

// warm sends the run's warm-up request (Config.Warm), if any, and forgets its answer.
func (w *worker) warm() {
	if w.cfg.Warm == nil {
		return
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if !w.cfg.Warm(w.id, req) {
		return
	}
	w.address(req)
	_ = w.client.DoTimeout(req, resp, w.timeout)
}

// address sends req to the run's target: its Addr as Host when the Builder set none, over TLS
// when the run has a TLS config.
func (w *worker) address(req *fasthttp.Request) {
	if len(req.URI().Host()) == 0 {
		req.URI().SetHost(w.cfg.Addr)
	}
	if w.cfg.TLS != nil {
		req.URI().SetScheme("https")
	}
}

func (w *worker) run(ctx context.Context, start time.Time) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	w.byStatus, w.serviceByStatus = map[int]*Histogram{}, map[int]*Histogram{}
	var pace *time.Timer
	if w.sched != nil {
		pace = time.NewTimer(time.Hour)
		defer pace.Stop()
	}
	for ctx.Err() == nil {
		var scheduled time.Time
		if w.sched != nil {
			scheduled = w.sched.take()
			if wait := time.Until(scheduled); wait > 0 {
				pace.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-pace.C:
				}
			}
		}
		req.Reset()
		if !w.cfg.Build(w.id, req) {
			return
		}
		w.address(req)
		resp.Reset()
		sent := time.Now()
		t0 := sent
		if !scheduled.IsZero() {
			t0 = scheduled
			w.lag.Record(sent.Sub(scheduled))
		}
		err := w.client.DoTimeout(req, resp, w.timeout)
		now := time.Now()
		w.hist.Record(now.Sub(t0))
		w.service.Record(now.Sub(sent))
		code := 0
		if err == nil {
			code = resp.StatusCode()
		}
		if w.byStatus[code] == nil {
			w.byStatus[code], w.serviceByStatus[code] = &Histogram{}, &Histogram{}
		}
		w.byStatus[code].Record(now.Sub(t0))
		w.serviceByStatus[code].Record(now.Sub(sent))
		w.requests++
		w.last = now.Sub(start)
		if err == nil {
			err = w.judge(resp)
		}
		if err != nil {
			w.errors++
			if len(w.samples) < maxSamples {
				w.samples = append(w.samples, err.Error())
			}
		}
	}
}

// judge returns why resp is a failure, or nil.
func (w *worker) judge(resp *fasthttp.Response) error {
	if code := resp.StatusCode(); code < 200 || code > 299 {
		body := resp.Body()
		if len(body) > 160 {
			body = body[:160]
		}
		return fmt.Errorf("HTTP %d: %s", code, body)
	}
	if w.cfg.Check != nil {
		return w.cfg.Check(resp)
	}
	return nil
}
