package proxy_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/wxgate/wxgate/event"
)

// testForwardSecret is [forward] secret in testdata/gateway.toml.
const testForwardSecret = "test-forward-secret-0123456789"

// receiver is the app's event endpoint: a real fasthttp server that checks X-Wxgate-Signature the
// way an app must, records every event, and can be switched down (answers 503).
type receiver struct {
	t   *testing.T
	url string
	mu  sync.Mutex
	cnd *sync.Cond
	got []event.Event
	ids map[string]int // deliveries per event id
	bad int            // requests whose signature failed
	up  bool
	// downStatus is what the app answers while down (503 unless set).
	downStatus int
	// downHits counts requests refused while down, per event id.
	downHits map[string]int
	opts     receiverOptions
	srv      *fasthttp.Server
}

// receiverOptions make the app's event endpoint behave like particular apps.
type receiverOptions struct {
	idleTimeout time.Duration // how long an idle keep-alive connection is kept; 0: fasthttp's default
	answer      []byte        // the body of the answer to an accepted event
	status      int           // the status of that answer (200 unless set)
	// hold, when set, makes every request wait until it is closed; arrived (buffered) then
	// receives each held request's event id as it arrives.
	hold    chan struct{}
	arrived chan string
}

// startReceiverWith starts a receiver with options.
func startReceiverWith(t *testing.T, opts receiverOptions) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, url: "http://" + ln.Addr().String() + "/events", ids: map[string]int{}, downHits: map[string]int{}, up: true, opts: opts}
	r.cnd = sync.NewCond(&r.mu)
	srv := &fasthttp.Server{Handler: r.handle, ReadTimeout: 5 * time.Second, IdleTimeout: opts.idleTimeout}
	r.srv = srv
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return r
}

func (r *receiver) handle(ctx *fasthttp.RequestCtx) {
	if r.opts.hold != nil {
		select {
		case r.opts.arrived <- string(ctx.Request.Header.Peek(event.HeaderEventID)):
		default:
		}
		<-r.opts.hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		r.downHits[string(ctx.Request.Header.Peek(event.HeaderEventID))]++
		r.cnd.Broadcast()
		ctx.SetStatusCode(cmp.Or(r.downStatus, fasthttp.StatusServiceUnavailable))
		return
	}
	body := ctx.PostBody()
	if err := event.Verify(testForwardSecret, string(ctx.Request.Header.Peek(event.HeaderSignature)), body, time.Now(), event.DefaultTolerance); err != nil {
		r.bad++
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		r.cnd.Broadcast()
		return
	}
	var ev event.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || string(ctx.Request.Header.Peek(event.HeaderEventID)) != ev.ID {
		r.bad++
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		r.cnd.Broadcast()
		return
	}
	r.got = append(r.got, ev)
	r.ids[ev.ID]++
	ctx.SetStatusCode(cmp.Or(r.opts.status, fasthttp.StatusOK))
	ctx.SetBody(r.opts.answer)
	r.cnd.Broadcast()
}

// setUp switches the app on or off.
func (r *receiver) setUp(up bool) {
	r.mu.Lock()
	r.up = up
	r.mu.Unlock()
}

// waitEvents waits until n events arrived (or fails the test after the timeout).
func (r *receiver) waitEvents(n int, timeout time.Duration) []event.Event {
	r.t.Helper()
	r.waitFor(func() bool { return len(r.got) >= n }, timeout, fmt.Sprintf("%d events", n))
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.got...)
}

// waitDownHits waits until each of n events was refused at least times times while the app
// was down.
func (r *receiver) waitDownHits(n, times int, timeout time.Duration) {
	r.t.Helper()
	r.waitFor(func() bool {
		refused := 0
		for _, c := range r.downHits {
			if c >= times {
				refused++
			}
		}
		return refused >= n
	}, timeout, fmt.Sprintf("%d events refused %d times each", n, times))
}

// waitFor waits (on the condition variable, woken by every request) until cond holds.
func (r *receiver) waitFor(cond func() bool, timeout time.Duration, what string) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		r.mu.Lock()
		r.cnd.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond() && time.Now().Before(deadline) {
		r.cnd.Wait()
	}
	if !cond() {
		r.t.Fatalf("timed out waiting for %s", what)
	}
}

// snapshot returns the events, deliveries per id and bad requests so far.
func (r *receiver) snapshot() ([]event.Event, map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := map[string]int{}
	for k, v := range r.ids {
		ids[k] = v
	}
	return append([]event.Event(nil), r.got...), ids, r.bad
}

// openConns is the number of connections the app's server holds open now.
func (r *receiver) openConns() int32 { return r.srv.GetOpenConnectionsCount() }
