package credentials

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeClock is an injectable clock that only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const (
	testAppID  = "wx0123456789abcdef"
	testSecret = "s3cr3t-APPSECRET-0123456789abcdef"
)

// fakeWeChat is a minimal stable_token endpoint on 127.0.0.1 that follows WeChat's documented
// behaviour: normal mode returns the current token and rotates it only during its last
// 5 minutes; force mode always rotates.
type fakeWeChat struct {
	clock *fakeClock
	url   string

	mu       sync.Mutex
	gate     chan struct{} // when set, every request waits for one receive before answering
	token    string
	expiry   time.Time
	seq      int
	normal   int
	force    int
	failNext int      // answer this many next requests with errcode -1
	issued   []string // every token ever handed out
}

func newFakeWeChat(t *testing.T, clock *fakeClock) *fakeWeChat {
	t.Helper()
	w := &fakeWeChat{clock: clock}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &fasthttp.Server{Handler: w.handle}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
	})
	w.url = "http://" + ln.Addr().String()
	return w
}

// client returns a StableTokenClient for this server with its own connection pool.
func (w *fakeWeChat) client(secret string) *StableTokenClient {
	return &StableTokenClient{
		Client:  &fasthttp.Client{},
		BaseURL: w.url,
		AppID:   testAppID,
		Secret:  secret,
		Timeout: 5 * time.Second,
	}
}

func (w *fakeWeChat) handle(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != "/cgi-bin/stable_token" || !ctx.IsPost() ||
		string(ctx.Request.Header.ContentType()) != "application/json" {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		w.reply(ctx, map[string]any{"errcode": 47001, "errmsg": "data format error"})
		return
	}
	w.mu.Lock()
	gate := w.gate
	w.mu.Unlock()
	if gate != nil {
		<-gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	switch {
	case w.failNext > 0:
		w.failNext--
		w.reply(ctx, map[string]any{"errcode": -1, "errmsg": "system error"})
	case req.GrantType != "client_credential":
		w.reply(ctx, map[string]any{"errcode": 40002, "errmsg": "invalid grant_type"})
	case req.AppID != testAppID:
		w.reply(ctx, map[string]any{"errcode": 40013, "errmsg": "invalid appid"})
	case req.Secret != testSecret:
		// Echo the secret back, as a careless upstream might: the client must scrub it.
		w.reply(ctx, map[string]any{"errcode": 40125, "errmsg": "invalid appsecret " + req.Secret})
	default:
		if req.ForceRefresh {
			w.force++
			w.rotateLocked(now)
		} else {
			w.normal++
			if w.token == "" || !now.Before(w.expiry.Add(-5*time.Minute)) {
				w.rotateLocked(now)
			}
		}
		w.reply(ctx, map[string]any{
			"access_token": w.token,
			"expires_in":   int(w.expiry.Sub(now) / time.Second),
		})
	}
}

func (w *fakeWeChat) reply(ctx *fasthttp.RequestCtx, v any) {
	b, _ := json.Marshal(v)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(b)
}

func (w *fakeWeChat) rotateLocked(now time.Time) {
	w.seq++
	w.token = fmt.Sprintf("ACCESS_TOKEN_%d_%x", w.seq, now.UnixNano())
	w.expiry = now.Add(7200 * time.Second)
	w.issued = append(w.issued, w.token)
}

// rotate simulates another party (e.g. another instance) force-refreshing the token.
func (w *fakeWeChat) rotate() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotateLocked(w.clock.Now())
	return w.token
}

func (w *fakeWeChat) counts() (normal, force int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.normal, w.force
}

func (w *fakeWeChat) issuedTokens() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.issued...)
}

// hold makes requests wait for release; it returns the release channel.
func (w *fakeWeChat) hold() chan<- struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate = make(chan struct{})
	return w.gate
}

// unhold lets requests through without waiting.
func (w *fakeWeChat) unhold() {
	w.mu.Lock()
	w.gate = nil
	w.mu.Unlock()
}

func (w *fakeWeChat) setFailNext(n int) {
	w.mu.Lock()
	w.failNext = n
	w.mu.Unlock()
}

// waitFor spins (yielding, never sleeping) until cond holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}
