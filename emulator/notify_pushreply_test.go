package emulator

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

const (
	replyAppID  = "wx00000000000000f1"
	replyToken  = "reply-token"
	replyAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	replyBody   = `{"result_code":1,"result_info":"delivered","evidence":"order po-9 delivered"}`
)

// answerServer answers every push with answer(), a function the test swaps.
func answerServer(t *testing.T, answer *atomic.Pointer[func() (int, string)]) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		status, body := (*answer.Load())()
		ctx.SetStatusCode(status)
		ctx.SetBodyString(body)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String() + "/push"
}

// envelope encrypts msg for appID and signs it with token, at ts.
func envelope(t *testing.T, token, appID, msg string, ts int64) string {
	t.Helper()
	c, err := signer.NewPushCrypter(replyAESKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := c.Encrypt([16]byte{9}, []byte(msg), appID)
	tss := strconv.FormatInt(ts, 10)
	b, _ := json.Marshal(map[string]any{"Encrypt": enc, "MsgSignature": signer.PushSignature(token, tss, "n1", enc), "TimeStamp": ts, "Nonce": "n1"})
	return string(b)
}

// TestPushAnswerCheckedAsWeChat: the emulator counts an iOS refund inquiry as answered only for
// the business reply, encrypted for the app's appid and signed with its token, fresh; forged,
// foreign, stale, plaintext, "success" and malformed answers leave it unanswered. Queued through
// the control endpoint, it is asked again until answered.
func TestPushAnswerCheckedAsWeChat(t *testing.T) {
	var answer atomic.Pointer[func() (int, string)]
	set := func(status int, body string) {
		f := func() (int, string) { return status, body }
		answer.Store(&f)
	}
	url := answerServer(t, &answer)
	e, err := New(Config{RetryScale: 0.0001, Apps: []App{{AppID: replyAppID, Secret: "s", PushURL: url, PushToken: replyToken, PushAESKey: replyAESKey}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown() })
	now := time.Now().Unix()
	cases := []struct {
		name   string
		status int
		body   string
		acked  bool
	}{
		{"genuine", 200, envelope(t, replyToken, replyAppID, replyBody, now), true},
		{"forged signature", 200, envelope(t, "other-token", replyAppID, replyBody, now), false},
		{"another appid", 200, envelope(t, replyToken, "wx00000000000000f2", replyBody, now), false},
		{"stale", 200, envelope(t, replyToken, replyAppID, replyBody, now-600), false},
		{"not encrypted", 200, replyBody, false},
		{"success", 200, "success", false},
		{"ErrCode 0", 200, `{"ErrCode":0,"ErrMsg":"success"}`, false},
		{"no evidence", 200, envelope(t, replyToken, replyAppID, `{"result_code":0}`, now), false},
		{"HTTP 500", 500, envelope(t, replyToken, replyAppID, replyBody, now), false},
	}
	for _, c := range cases {
		set(c.status, c.body)
		n, err := e.BuildIOSRefundQuery(replyAppID, IOSRefundQuery{OpenID: "o", PayOrderID: "po-9", ProvideStatus: 1}, "", NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		acked, _, _, err := e.Deliver(n)
		if err != nil || acked != c.acked {
			t.Errorf("%s: acked %v (%v), want %v", c.name, acked, err, c.acked)
		}
	}

	// The control endpoint queues one; "success" is not an answer, so WeChat asks again.
	set(200, "success")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(ln)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(fmt.Sprintf("http://%s/_emulator/xpay/ios_refund_query?appid=%s", ln.Addr(), replyAppID))
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"openid":"o","pay_order_id":"po-9","provide_status":1}`)
	if err := fasthttp.Do(req, resp); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("control: %v %d %s", err, resp.StatusCode(), resp.Body())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := e.Deliveries()
		if len(ds) == 1 && ds[0].Attempts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unanswered inquiry was not asked again: %+v", ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
	set(200, envelope(t, replyToken, replyAppID, replyBody, time.Now().Unix()))
	ds, err := e.WaitDeliveries(1, 10*time.Second)
	if err != nil || !ds[0].Acked || ds[0].Notification.Answer != EventIOSRefundQuery {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
}
