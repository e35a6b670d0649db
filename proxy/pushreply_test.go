package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/internal/redistest"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/store"
)

// replyApp is an app server answering the events wxgate forwards with its own reply, in the
// way the test sets: answering, late, garbage... It verifies every event's signature.
type replyApp struct {
	url string
	mu  sync.Mutex
	// answer is how the next events are answered.
	answer func(ctx *fasthttp.RequestCtx, ev event.Event)
	ids    map[string]int // events per id
	// deadlines are the X-Wxgate-Reply-Deadline-Ms values seen.
	deadlines []string
	bad       int
	release   chan struct{} // closed at cleanup: frees late answers
}

func startReplyApp(t *testing.T) *replyApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replyApp{url: "http://" + ln.Addr().String() + "/events", ids: map[string]int{}, release: make(chan struct{})}
	srv := &fasthttp.Server{Handler: r.handle, ReadTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { close(r.release); srv.Shutdown() })
	return r
}

func (r *replyApp) handle(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	var ev event.Event
	r.mu.Lock()
	if event.Verify(testForwardSecret, string(ctx.Request.Header.Peek(event.HeaderSignature)), body, time.Now(), event.DefaultTolerance) != nil ||
		json.Unmarshal(body, &ev) != nil {
		r.bad++
		r.mu.Unlock()
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		return
	}
	r.ids[ev.ID]++
	r.deadlines = append(r.deadlines, string(ctx.Request.Header.Peek(proxy.HeaderReplyDeadline)))
	answer := r.answer
	r.mu.Unlock()
	answer(ctx, ev)
}

func (r *replyApp) set(f func(ctx *fasthttp.RequestCtx, ev event.Event)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *replyApp) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

// answerWith answers every event with status and body.
func answerWith(status int, body string) func(*fasthttp.RequestCtx, event.Event) {
	return func(ctx *fasthttp.RequestCtx, _ event.Event) {
		ctx.SetStatusCode(status)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(body)
	}
}

// startReplyEnv starts the emulator and wxgate with every forward_url pointing at a replyApp.
func startReplyEnv(t *testing.T) (*testEnv, *replyApp) {
	app := startReplyApp(t)
	re := regexp.MustCompile(`forward_url = "[^"]*"`)
	e := startEnv(t, func(s string) string { return re.ReplaceAllString(s, `forward_url = "`+app.url+`"`) })
	return e, app
}

const iosReply = `{"result_code":1,"result_info":"delivered","evidence":"order po-1 delivered at 2026-12-05T10:00:00+08:00"}`

// TestPushReplySafeModeEndToEnd: an iOS refund inquiry pushed in safe mode (JSON) reaches the app,
// whose reply WeChat (the emulator) gets encrypted and signed and reads back exactly; a late,
// garbage, malformed, empty or failed reply is a failure answer, never "success"; WeChat's retry
// of an answered event is forwarded and answered again, an exact replay is refused.
func TestPushReplySafeModeEndToEnd(t *testing.T) {
	e, app := startReplyEnv(t)
	const appID = "wx00000000000000a1"
	q := emulator.IOSRefundQuery{OpenID: "o-ios-1", PayOrderID: "po-1", ProductID: "vip_month", Count: 1, ProvideStatus: 1}
	created := time.Now()
	build := func() emulator.Notification {
		t.Helper()
		n, err := e.emu.BuildIOSRefundQuery(appID, q, "", emulator.NotifyOptions{Timestamp: created})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	app.set(answerWith(200, iosReply))
	n := build()
	acked, status, body, err := e.emu.Deliver(n)
	if err != nil || !acked {
		t.Fatalf("answered inquiry: acked %v, HTTP %d %s, %v", acked, status, body, err)
	}
	if bytes.Contains(body, []byte("evidence")) || !bytes.Contains(body, []byte(`"MsgSignature":`)) {
		t.Fatalf("safe-mode answer is not the encrypted envelope: %s", body)
	}
	reply, err := e.emu.OpenPushAnswer(n, status, body)
	if err != nil || string(reply) != iosReply {
		t.Fatalf("opened answer %q, %v; want the app's reply byte for byte", reply, err)
	}
	ans, err := emulator.ParseIOSRefundAnswer("json", reply)
	if err != nil || ans.ResultCode != 1 {
		t.Fatalf("answer %+v, %v", ans, err)
	}
	app.mu.Lock()
	deadline := app.deadlines[0]
	app.mu.Unlock()
	if deadline != "2000" { // min([forward] timeout 2s, WeChat's 3 s - 0.5 s)
		t.Fatalf("X-Wxgate-Reply-Deadline-Ms = %q, want 2000", deadline)
	}
	var evID string
	app.mu.Lock()
	for id := range app.ids {
		evID = id
	}
	app.mu.Unlock()

	// The exact request again (a replay): refused, not forwarded.
	if acked, status, _, _ := e.emu.Deliver(n); acked || status != fasthttp.StatusUnauthorized {
		t.Fatalf("replayed inquiry: acked %v, HTTP %d; want 401", acked, status)
	}
	// WeChat's retry, newly signed: the same event id, forwarded again and answered again.
	if acked, status, body, err := e.emu.Deliver(build()); !acked {
		t.Fatalf("retried inquiry: acked %v, HTTP %d %s, %v", acked, status, body, err)
	}
	if c := app.count(evID); c != 2 {
		t.Fatalf("event %s forwarded %d times, want 2 (first answer and WeChat's retry)", evID, c)
	}

	// While the app is still answering, WeChat's next ask (on this or another instance) gets a
	// failure at once, and the app sees the event once.
	held := make(chan struct{})
	app.set(func(ctx *fasthttp.RequestCtx, _ event.Event) {
		<-held
		ctx.SetBodyString(iosReply)
	})
	first := make(chan bool, 1)
	go func() {
		acked, _, _, _ := e.emu.Deliver(build())
		first <- acked
	}()
	for deadline := time.Now().Add(10 * time.Second); app.count(evID) < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the held inquiry never reached the app")
		}
		time.Sleep(2 * time.Millisecond)
	}
	acked, status, body, _ = e.emu.Deliver(build())
	if acked || status != fasthttp.StatusInternalServerError || !bytes.Contains(body, []byte("being forwarded right now")) {
		t.Fatalf("ask while the app answers: acked %v, HTTP %d %s", acked, status, body)
	}
	close(held)
	if !<-first || app.count(evID) != 3 {
		t.Fatalf("the held inquiry: answered %v, forwarded %d times", false, app.count(evID))
	}

	late := func(ctx *fasthttp.RequestCtx, _ event.Event) {
		<-app.release // answers only after the test: far past any deadline
		ctx.SetBodyString(iosReply)
	}
	failures := []struct {
		name   string
		answer func(*fasthttp.RequestCtx, event.Event)
		why    string
	}{
		{"late", late, "did not answer within"},
		{"garbage", answerWith(200, "<html>oops</html>"), "not a JSON object"},
		{"no evidence", answerWith(200, `{"result_code":0,"result_info":"ok"}`), "evidence"},
		{"bad result_code", answerWith(200, `{"result_code":"1","evidence":"x"}`), "result_code"},
		{"result_code 2", answerWith(200, `{"result_code":2,"evidence":"x"}`), "result_code"},
		{"result_info not a string", answerWith(200, `{"result_code":1,"result_info":5,"evidence":"x"}`), "result_info"},
		{"empty evidence", answerWith(200, `{"result_code":1,"evidence":""}`), "evidence"},
		{"evidence not a string", answerWith(200, `{"result_code":1,"evidence":1}`), "evidence"},
		{"empty", answerWith(200, ""), "without a reply body"},
		{"plain success", answerWith(200, "success"), "not a JSON object"},
		{"app error", answerWith(500, iosReply), "HTTP 500"},
		{"app refusal with a valid reply", answerWith(400, iosReply), "HTTP 400"},
		{"too large", answerWith(200, `{"result_code":1,"evidence":"`+strings.Repeat("x", 17<<10)+`"}`), "over 16384 bytes"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			app.set(f.answer)
			n := build()
			acked, status, body, err := e.emu.Deliver(n)
			if err != nil || acked {
				t.Fatalf("acked %v, HTTP %d %s, %v; want a failure", acked, status, body, err)
			}
			var fail struct {
				ErrCode int
				ErrMsg  string
			}
			if status != fasthttp.StatusInternalServerError || json.Unmarshal(body, &fail) != nil || fail.ErrCode == 0 || !strings.Contains(fail.ErrMsg, f.why) {
				t.Fatalf("failure answer HTTP %d %s; want 500 with ErrCode != 0 naming %q", status, body, f.why)
			}
			// The claim was released: WeChat's next ask is forwarded and answered.
			app.set(answerWith(200, iosReply))
			if acked, status, body, err := e.emu.Deliver(build()); !acked {
				t.Fatalf("ask after the failure: acked %v, HTTP %d %s, %v", acked, status, body, err)
			}
		})
	}
	if got := e.metric(t, `wxgate_callbacks_total{source="message_push",outcome="forward_failed"}`); got != float64(len(failures)+1) {
		t.Fatalf("forward_failed push callbacks = %v, want %d", got, len(failures)+1)
	}
}

// TestPushReplyDeadlineCappedByWeChat: with a [forward] timeout longer than WeChat waits, the
// app is given WeChat's deadline less wxgate's half second (3 s - 0.5 s), not the timeout.
func TestPushReplyDeadlineCappedByWeChat(t *testing.T) {
	app := startReplyApp(t)
	re := regexp.MustCompile(`forward_url = "[^"]*"`)
	e := startEnv(t, func(s string) string {
		s = re.ReplaceAllString(s, `forward_url = "`+app.url+`"`)
		return strings.Replace(s, "[forward]\nsecret = \"test-forward-secret-0123456789\"\ntimeout = \"2s\"", "[forward]\nsecret = \"test-forward-secret-0123456789\"\ntimeout = \"10s\"", 1)
	})
	app.set(answerWith(200, iosReply))
	q := emulator.IOSRefundQuery{OpenID: "o-ios-9", PayOrderID: "po-9", ProductID: "vip_month", Count: 1, ProvideStatus: 1}
	n, err := e.emu.BuildIOSRefundQuery("wx00000000000000a1", q, "", emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acked, status, body, err := e.emu.Deliver(n); err != nil || !acked {
		t.Fatalf("inquiry: acked %v, HTTP %d %s, %v", acked, status, body, err)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.deadlines) != 1 || app.deadlines[0] != "2500" {
		t.Fatalf("X-Wxgate-Reply-Deadline-Ms = %q, want [2500] (min(10 s, 3 s - 0.5 s))", app.deadlines)
	}
	if got := e.metric(t, `wxgate_callbacks_total{source="message_push",outcome="forwarded"}`); got != 1 {
		t.Fatalf("an answered push counted %v times as forwarded, want 1", got)
	}
}

// TestPushReplyWithoutAppOrStore: WeChat gets the failure answer, naming why, when the app has
// no forward_url, and when the store is down (Redis killed); neither is ever an empty 200.
func TestPushReplyWithoutAppOrStore(t *testing.T) {
	q := emulator.IOSRefundQuery{OpenID: "o-ios-8", PayOrderID: "po-8", ProductID: "vip_month", Count: 1, ProvideStatus: 1}
	inquiry := func(e *testEnv) (int, []byte) {
		t.Helper()
		n, err := e.emu.BuildIOSRefundQuery("wx00000000000000a1", q, "", emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		acked, status, body, err := e.emu.Deliver(n)
		if err != nil || acked {
			t.Fatalf("acked %v, HTTP %d %s, %v; want a failure", acked, status, body, err)
		}
		return status, body
	}
	shopForward := regexp.MustCompile(`(secret = "shop-app-secret-7f3a"\n)forward_url = "[^"]*"\n`)
	e := startEnv(t, func(s string) string {
		if !shopForward.MatchString(s) {
			t.Fatal("the test config changed: no forward_url after the shop app's secret")
		}
		return shopForward.ReplaceAllString(s, "$1")
	})
	if status, body := inquiry(e); status != fasthttp.StatusInternalServerError || !bytes.Contains(body, []byte("no forward_url")) {
		t.Errorf("app without forward_url: HTTP %d %s", status, body)
	}

	app := startReplyApp(t)
	app.set(answerWith(200, iosReply))
	srv := redistest.Start(t)
	st, err := store.OpenRedis(store.RedisOptions{URL: srv.URL(), Prefix: "r:"}, store.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	re := regexp.MustCompile(`forward_url = "[^"]*"`)
	e = startEnvWith(t, envOptions{store: st, edit: func(s string) string { return re.ReplaceAllString(s, `forward_url = "`+app.url+`"`) }})
	srv.Kill()
	if status, body := inquiry(e); status != fasthttp.StatusInternalServerError || !bytes.Contains(body, []byte("store is unavailable")) {
		t.Errorf("store down: HTTP %d %s", status, body)
	}
}

// TestPushReplyXMLAndPlaintext: an XML safe-mode inquiry gets the app's JSON reply as the
// equivalent XML, encrypted; a plaintext-mode inquiry gets the reply as it is.
func TestPushReplyXMLAndPlaintext(t *testing.T) {
	e, app := startReplyEnv(t)
	app.set(answerWith(200, `{"result_code":0,"result_info":"not delivered <yet> ]]>","evidence":"po-2 never delivered"}`))
	msg := fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><FromUserName><![CDATA[ow]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[xpay_subscribe_ios_refund_query_notify]]></Event><OpenId><![CDATA[o-2]]></OpenId><pay_order_id><![CDATA[po-2]]></pay_order_id><provide_status>0</provide_status></xml>`, time.Now().Unix())
	n := safePushXML(t, e, "shop", "wx00000000000000a1", []byte(msg))
	n.Answer = emulator.EventIOSRefundQuery
	acked, status, body, err := e.emu.Deliver(n)
	if err != nil || !acked {
		t.Fatalf("XML inquiry: acked %v, HTTP %d %s, %v", acked, status, body, err)
	}
	if !bytes.HasPrefix(body, []byte("<xml><Encrypt><![CDATA[")) || !bytes.Contains(body, []byte("<TimeStamp>")) {
		t.Fatalf("XML answer is not the encrypted XML envelope: %s", body)
	}
	reply, err := e.emu.OpenPushAnswer(n, status, body)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := emulator.ParseIOSRefundAnswer("xml", reply)
	if err != nil || ans.ResultCode != 0 || ans.ResultInfo != "not delivered <yet> ]]>" || ans.Evidence != "po-2 never delivered" {
		t.Fatalf("XML answer %s -> %+v, %v", reply, ans, err)
	}

	// Plaintext mode (app drama has no EncodingAESKey): the reply as the app wrote it.
	app.set(answerWith(200, iosReply))
	n, err = e.emu.BuildIOSRefundQuery("wx00000000000000b2", emulator.IOSRefundQuery{OpenID: "o-3", PayOrderID: "po-3", ProvideStatus: 2}, "", emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	acked, status, body, err = e.emu.Deliver(n)
	if err != nil || !acked || string(body) != iosReply {
		t.Fatalf("plaintext inquiry: acked %v, HTTP %d %s, %v; want the reply as is", acked, status, body, err)
	}
}

// TestPushReplyOnlyForListedEvents: other pushes keep the plain acknowledgement, whatever the
// app's answer body.
func TestPushReplyOnlyForListedEvents(t *testing.T) {
	e, app := startReplyEnv(t)
	app.set(answerWith(200, iosReply))
	n, err := e.emu.BuildPushMessage("wx00000000000000a1", []byte(`{"ToUserName":"gh_s","FromUserName":"ow","CreateTime":1,"MsgType":"event","Event":"xpay_coin_pay_notify","OpenId":"o"}`), e.callbackURL+"/callbacks/message/shop", emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	acked, status, body, err := e.emu.Deliver(n)
	if err != nil || !acked || string(body) != `{"ErrCode":0,"ErrMsg":"success"}` {
		t.Fatalf("ordinary push: acked %v, HTTP %d %s, %v", acked, status, body, err)
	}
}

// TestPushReplyLogs: an unusable reply is logged at ERROR with why, the answered one at DEBUG;
// no line holds a configured secret or the reply's content.
func TestPushReplyLogs(t *testing.T) {
	app := startReplyApp(t)
	logs := &syncBuffer{}
	re := regexp.MustCompile(`forward_url = "[^"]*"`)
	e := startEnvWith(t, envOptions{logs: logs, edit: func(s string) string { return re.ReplaceAllString(s, `forward_url = "`+app.url+`"`) }})
	cur := &logCursor{logs: logs}
	ask := func() bool {
		t.Helper()
		n, err := e.emu.BuildIOSRefundQuery("wx00000000000000a1", emulator.IOSRefundQuery{OpenID: "o-log", PayOrderID: "po-log"}, "", emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		acked, _, _, err := e.emu.Deliver(n)
		if err != nil {
			t.Fatal(err)
		}
		return acked
	}
	app.set(answerWith(200, `{"result_code":0,"result_info":"secret-ish reply text"}`))
	if ask() {
		t.Fatal("a reply without evidence was relayed")
	}
	wantLine(t, cur.next(t), "the app's answer to a push could not be relayed; WeChat gets a failure and asks again", map[string]string{
		"source": "message_push", "name": "shop", "host": "127.0.0.1", "reason": `"evidence" is required`, "duration_ms": "*", "level": "ERROR"})
	app.set(answerWith(200, iosReply))
	if !ask() {
		t.Fatal("the reply was not relayed")
	}
	wantLine(t, cur.next(t), "push answered by the app", map[string]string{"source": "message_push", "name": "shop", "duration_ms": "*"})
	all := logs.String()
	for _, s := range append(configuredSecrets(e.cfg), "secret-ish reply text", "delivered at") {
		if strings.Contains(all, s) {
			t.Errorf("the log holds %q", s)
		}
	}
}
