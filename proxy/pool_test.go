package proxy_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
)

// shortIdle stands in for the 5 s after which Node and Apache close an idle connection (and for
// WeChat's own idle close): short enough for a test, far above the idle check's 200 ms.
const shortIdle = 300 * time.Millisecond

// waitUntil polls cond a few milliseconds apart until it holds; past timeout the test fails.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// v3Event is a newly signed APIv3 payment notification with id for merchant pk, as WeChat sends
// it to wxgate's callback door.
func (e *testEnv) v3Event(t *testing.T, id string) emulator.Notification {
	t.Helper()
	n, err := e.emu.BuildV3Notification("1900000001", "TRANSACTION.SUCCESS",
		[]byte(`{"mchid":"1900000001","appid":"wx00000000000000a1","out_trade_no":"`+id+`"}`),
		e.callbackURL+"/callbacks/wechatpay/pk", emulator.NotifyOptions{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// deliverOnce has WeChat make one attempt to deliver n and fails the test unless it was
// acknowledged.
func (e *testEnv) deliverOnce(t *testing.T, n emulator.Notification) {
	t.Helper()
	if acked, status, body, err := e.emu.Deliver(n); !acked {
		t.Fatalf("event %s not acknowledged on WeChat's first attempt: %d %s %v", n.ID, status, body, err)
	}
}

// eachDeliveredOnce fails the test unless the app got exactly the events ids, each once.
func (e *testEnv) eachDeliveredOnce(t *testing.T, ids ...string) {
	t.Helper()
	_, got, bad := e.recv.snapshot()
	if len(got) != len(ids) || bad != 0 {
		t.Fatalf("the app got %v (%d bad), want each of %v once", got, bad, ids)
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("event %s reached the app %d times", id, got[id])
		}
	}
}

// TestForwardRetriesConnectionAppClosedIdle: the app closes its idle keep-alive connection (as
// Node and Apache do after 5 s) between two events; the second is still delivered on WeChat's
// first attempt, sent again on a new connection because nothing had been sent on the old one.
func TestForwardRetriesConnectionAppClosedIdle(t *testing.T) {
	e := startEnvWith(t, envOptions{receiver: receiverOptions{idleTimeout: shortIdle}})
	e.deliverOnce(t, e.v3Event(t, "idle-fwd-1"))
	waitUntil(t, waitTime, "the app to close its idle connection", func() bool { return e.recv.openConns() == 0 })
	e.deliverOnce(t, e.v3Event(t, "idle-fwd-2"))
	e.eachDeliveredOnce(t, "idle-fwd-1", "idle-fwd-2")
}

// TestUpstreamRetriesConnectionWeChatClosedIdle: WeChat closes idle pooled connections (plain
// HTTP to api.weixin.qq.com, TLS to api.mch.weixin.qq.com, where the close comes with a
// close_notify); the next call still succeeds, and WeChat saw it once.
func TestUpstreamRetriesConnectionWeChatClosedIdle(t *testing.T) {
	e := startEnvWith(t, envOptions{emulatorIdle: shortIdle})
	e.warmToken()
	for _, c := range []struct {
		name, method, path string
		body               []byte
		headers            []string
		want               int
	}{
		{"weixin over HTTP", "POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"idle-000001"}`), nil, 200},
		{"mch over TLS", "GET", "/v3/pay/transactions/out-trade-no/idle-none?mchid=1900000001", nil, []string{proxy.HeaderMerchant, "pk"}, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, _, _ := strings.Cut(c.path, "?")
			if a := e.do(c.method, c.path, c.body, c.headers...); a.Status != c.want {
				t.Fatalf("first call: %d %s", a.Status, a.Body)
			}
			before := e.emu.Calls(path)
			waitUntil(t, waitTime, "WeChat to close its idle connections", func() bool { return e.emu.OpenConnections() == 0 })
			if a := e.do(c.method, c.path, c.body, c.headers...); a.Status != c.want {
				t.Fatalf("call after WeChat's idle close: %d %s", a.Status, a.Body)
			}
			if n := e.emu.Calls(path) - before; n != 1 {
				t.Fatalf("WeChat saw the call %d times, want 1", n)
			}
		})
	}
}

// TestForwardAcceptsAnyBodyWith2xx: a 2xx is an acceptance whatever its body, here 1 MiB (beyond
// what is drained, so its connection is closed); the next event goes out normally.
func TestForwardAcceptsAnyBodyWith2xx(t *testing.T) {
	e := startEnvWith(t, envOptions{receiver: receiverOptions{answer: bytes.Repeat([]byte("x"), 1<<20)}})
	e.deliverOnce(t, e.v3Event(t, "big-answer-1"))
	e.deliverOnce(t, e.v3Event(t, "big-answer-2"))
	e.eachDeliveredOnce(t, "big-answer-1", "big-answer-2")
}

// TestForwardMaxConnsFailsAtOnce: with [forward] max_conns = 2 and two events held by the app, a
// third distinct event is refused to WeChat at once, saying why, and delivered on WeChat's retry
// once the app has caught up.
func TestForwardMaxConnsFailsAtOnce(t *testing.T) {
	hold, arrived := make(chan struct{}), make(chan string, 8)
	var release sync.Once
	releaseApp := func() { release.Do(func() { close(hold) }) }
	e := startEnvWith(t, envOptions{
		edit:     func(s string) string { return strings.Replace(s, "[forward]\n", "[forward]\nmax_conns = 2\n", 1) },
		receiver: receiverOptions{hold: hold, arrived: arrived},
	})
	t.Cleanup(releaseApp) // runs before the servers' shutdowns (registered after them), should the test fail
	type result struct {
		id     string
		acked  bool
		status int
		err    error
	}
	held := make(chan result, 2)
	for i := 1; i <= 2; i++ {
		n := e.v3Event(t, fmt.Sprintf("held-%d", i))
		go func() {
			acked, status, _, err := e.emu.Deliver(n)
			held <- result{n.ID, acked, status, err}
		}()
	}
	for i := 0; i < 2; i++ {
		select {
		case <-arrived:
		case <-time.After(waitTime):
			t.Fatal("the held events did not reach the app")
		}
	}
	third := e.v3Event(t, "over-cap")
	acked, status, body, err := e.emu.Deliver(third)
	if acked || err != nil || status != 500 || !bytes.Contains(body, []byte("max_conns")) {
		t.Fatalf("third event while two are held: acked %v, %d %s %v; want a failure naming max_conns", acked, status, body, err)
	}
	select {
	case r := <-held:
		t.Fatalf("held event answered before the app was released: %+v", r)
	default:
	}
	releaseApp()
	for i := 0; i < 2; i++ {
		if r := <-held; !r.acked {
			t.Fatalf("held event after release: %+v", r)
		}
	}
	e.deliverOnce(t, third) // WeChat's retry
	e.eachDeliveredOnce(t, "held-1", "held-2", "over-cap")
}

// TestTokenFetchRetriesConnectionWeChatClosedIdle: the access_token client's pooled connection
// that WeChat closed while idle is noticed too: the refresh after a stale token succeeds, and the
// call through wxgate with it.
func TestTokenFetchRetriesConnectionWeChatClosedIdle(t *testing.T) {
	e := startEnvWith(t, envOptions{emulatorIdle: shortIdle})
	e.warmToken()
	appID := e.cfg.Apps[0].AppID
	waitUntil(t, waitTime, "WeChat to close its idle connections", func() bool { return e.emu.OpenConnections() == 0 })
	fetches := e.emu.TokenFetches(appID)
	e.emu.ExpireTokens(appID)
	if a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"idle-token-01"}`)); a.Status != 200 || a.errcode(t) == 42001 {
		t.Fatalf("a call needing a new token after WeChat's idle close: %d %s", a.Status, a.Body)
	}
	if got := e.emu.TokenFetches(appID) - fetches; got != 1 {
		t.Fatalf("%d token fetches, want 1", got)
	}
}

// TestAppRefusalIsNotDelivery: whatever the app answers other than a 2xx (a 4xx it means or a
// 5xx it suffers), WeChat is not acknowledged and the event stays WeChat's to retry; the retry
// after the app accepts is acknowledged and reaches the app once.
func TestAppRefusalIsNotDelivery(t *testing.T) {
	for _, status := range []int{400, 404, 409, 500, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e := startEnv(t, nil)
			e.recv.mu.Lock()
			e.recv.downStatus = status
			e.recv.mu.Unlock()
			e.recv.setUp(false)
			id := "refused-" + strconv.Itoa(status)
			if acked, got, body, err := e.emu.Deliver(e.v3Event(t, id)); acked || err != nil {
				t.Fatalf("the app answered %d but WeChat was acknowledged: %d %s %v", status, got, body, err)
			}
			e.recv.setUp(true)
			e.deliverOnce(t, e.v3Event(t, id)) // WeChat's retry, newly signed, same id
			e.eachDeliveredOnce(t, id)
		})
	}
}

// TestAnyTwoHundredIsAcceptance: every 2xx the app may answer, 200 to 299, is an acceptance.
func TestAnyTwoHundredIsAcceptance(t *testing.T) {
	for _, status := range []int{200, 202, 204, 299} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e := startEnvWith(t, envOptions{receiver: receiverOptions{status: status}})
			id := "accepted-" + strconv.Itoa(status)
			e.deliverOnce(t, e.v3Event(t, id))
			e.eachDeliveredOnce(t, id)
		})
	}
}
