package proxy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// logLine is one JSON log line.
type logLine map[string]any

// str is the string value of key ("" when absent or not a string).
func (l logLine) str(key string) string {
	s, _ := l[key].(string)
	return s
}

// logLines parses the JSON lines of text; a line that is not a JSON object fails the test.
func logLines(t *testing.T, text string) []logLine {
	t.Helper()
	var out []logLine
	for line := range strings.Lines(text) {
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, l)
	}
	return out
}

// logCursor reads the lines a gateway logged since the last read.
type logCursor struct {
	logs *syncBuffer
	seen int
}

// next returns the lines logged since the last call.
func (c *logCursor) next(t *testing.T) []logLine {
	t.Helper()
	text := c.logs.String()
	lines := logLines(t, text[c.seen:])
	c.seen = len(text)
	return lines
}

// wantLine finds the line with msg whose fields hold want ("*": present and not empty; other
// values: contained in the field's text), or fails the test listing the lines there were.
func wantLine(t *testing.T, lines []logLine, msg string, want map[string]string) logLine {
	t.Helper()
next:
	for _, l := range lines {
		if l.str("msg") != msg {
			continue
		}
		for k, v := range want {
			got := fmt.Sprint(l[k])
			if l[k] == nil || got == "" || v != "*" && !strings.Contains(got, v) {
				continue next
			}
		}
		return l
	}
	t.Fatalf("no %q line with %v among:\n%v", msg, want, lines)
	return nil
}

// configuredSecrets are every secret value of cfg.
func configuredSecrets(cfg *policies.Config) []string {
	var out []string
	add := func(s policies.Secret) {
		if s.IsSet() {
			out = append(out, s.Value())
		}
	}
	add(cfg.Forward.Secret)
	add(cfg.Store.RedisURL)
	for _, a := range cfg.Apps {
		add(a.Secret)
		if a.Xpay != nil {
			add(a.Xpay.AppKey)
			add(a.Xpay.SandboxAppKey)
		}
		if a.Push != nil {
			add(a.Push.Token)
			add(a.Push.EncodingAESKey)
		}
	}
	for _, m := range cfg.Merchants {
		add(m.APIv3Key)
		add(m.APIv2Key)
	}
	return out
}

// TestLogLines runs the flows an operator must see in the log (JSON, level debug, access log
// on) and checks each refusal and failure line with its fields; then that no line of the whole
// log holds a configured secret, a session_key or a full openid.
func TestLogLines(t *testing.T) {
	logs := &syncBuffer{}
	e := startEnvWith(t, envOptions{logs: logs})
	cur := &logCursor{logs: logs}
	appID := e.cfg.Apps[0].AppID
	var openids, sessionKeys []string
	secrets := configuredSecrets(e.cfg)

	t.Run("login and xpay, access lines with request ids", func(t *testing.T) {
		openid := e.login("log-alice")
		key, ok := e.emu.SessionKey(appID, openid)
		if !ok {
			t.Fatal("the emulator has no session_key for the login")
		}
		openids, sessionKeys = append(openids, openid), append(sessionKeys, key)
		e.emu.Credit(appID, 0, openid, 100)
		a := e.do("POST", "/xpay/currency_pay", []byte(`{"openid":"`+openid+`","env":0,"user_ip":"127.0.0.1","amount":10,"order_id":"log-pay-0001","payitem":"[]","remark":""}`),
			proxy.HeaderRequestID, "app-chosen-id-42")
		if a.Status != 200 || a.errcode(t) != 0 {
			t.Fatalf("currency_pay: %d %s", a.Status, a.Body)
		}
		if a.Header[proxy.HeaderRequestID] != "app-chosen-id-42" {
			t.Fatalf("the app's request id was not echoed: %q", a.Header[proxy.HeaderRequestID])
		}
		lines := cur.next(t)
		wantLine(t, lines, "request", map[string]string{"listener": "app", "method": "GET", "path": "/sns/jscode2session", "status": "200", "request_id": "*", "peer": "127.0.0.1", "duration_ms": "*", "bytes": "*"})
		wantLine(t, lines, "request", map[string]string{"path": "/xpay/currency_pay", "status": "200", "request_id": "app-chosen-id-42"})
		for _, l := range lines {
			if strings.Contains(l.str("path"), "?") {
				t.Errorf("an access line holds a query string: %v", l)
			}
		}
	})

	t.Run("bad request: the error JSON and the answer carry the same id", func(t *testing.T) {
		a := e.do("POST", "/xpay/query_order", []byte(`{"env":5}`), proxy.HeaderRequestID, "bad id with spaces")
		id := a.Header[proxy.HeaderRequestID]
		var body struct {
			Error struct{ Code, RequestID string } `json:"error"`
		}
		_ = json.Unmarshal(a.Body, &body)
		body.Error.RequestID = a.json(t)["error"].(map[string]any)["request_id"].(string)
		if id == "" || id == "bad id with spaces" || body.Error.RequestID != id {
			t.Fatalf("request id %q, error JSON's %q: %s", id, body.Error.RequestID, a.Body)
		}
		wantLine(t, cur.next(t), "request", map[string]string{"status": "400", "request_id": id})
	})

	t.Run("JSAPI order, paid: the callback is forwarded", func(t *testing.T) {
		e.payJSAPI(t, "pk", "log-order-1", 100)
		e.recv.waitEvents(1, waitTime)
		waitUntil(t, waitTime, "the callback's access line", func() bool { return strings.Contains(logs.String(), `"listener":"callback"`) })
		lines := cur.next(t)
		wantLine(t, lines, "callback forwarded", map[string]string{"source": "wechatpay.v3", "name": "pk", "notification_id": "*", "host": "127.0.0.1"})
		wantLine(t, lines, "request", map[string]string{"listener": "callback", "path": "/callbacks/wechatpay/pk", "status": "204"})
	})

	t.Run("WeChat Pay answer that fails verification", func(t *testing.T) {
		e.emu.SendSignTest(1)
		a := e.do("GET", "/v3/pay/transactions/out-trade-no/log-order-1?mchid=1900000001", nil, proxy.HeaderMerchant, "pk")
		if a.Status != 502 || a.wxgateError(t) != proxy.CodeResponseSignature {
			t.Fatalf("SIGNTEST answer: %d %s", a.Status, a.Body)
		}
		wantLine(t, cur.next(t), "WeChat Pay answer failed verification and was not passed on", map[string]string{
			"api": "/v3/pay/transactions/out-trade-no/*", "merchant": "pk", "serial": "*", "reason": "SIGNTEST", "request_id": "*"})
	})

	t.Run("message push and APIv2 notification", func(t *testing.T) {
		n := safePushXML(t, e, "shop", appID, []byte(`<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><FromUserName><![CDATA[o-log]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[log_demo]]></Event></xml>`))
		if acked, status, body, err := e.emu.Deliver(n); !acked {
			t.Fatalf("push: %d %s %v", status, body, err)
		}
		v2 := []signer.Param{{Key: "appid", Value: appID}, {Key: "mch_id", Value: "1900000001"}, {Key: "result_code", Value: "SUCCESS"},
			{Key: "out_trade_no", Value: "log-v2-1"}, {Key: "transaction_id", Value: "4200000000000777"}, {Key: "total_fee", Value: "1"}, {Key: "nonce_str", Value: "n1"}}
		n, err := e.emu.BuildV2PayNotification("1900000001", v2, e.callbackURL+"/callbacks/wechatpay-v2/pk")
		if err != nil {
			t.Fatal(err)
		}
		if acked, status, body, err := e.emu.Deliver(n); !acked {
			t.Fatalf("v2: %d %s %v", status, body, err)
		}
		lines := cur.next(t)
		wantLine(t, lines, "callback forwarded", map[string]string{"source": "message_push", "name": "shop"})
		wantLine(t, lines, "callback forwarded", map[string]string{"source": "wechatpay.v2", "name": "pk", "notification_id": "pay_4200000000000777"})
	})

	// Each kind of refused callback has its line: source, name, reason, peer, request id, and
	// the notification id when there is one.
	refusals := []struct {
		name string
		send func(t *testing.T)
		want map[string]string
	}{
		{"forged APIv3 signature", func(t *testing.T) {
			a := e.doURL("POST", e.callbackURL+"/callbacks/wechatpay/pk", []byte(`{"id":"forged-log-1"}`),
				"Wechatpay-Timestamp", fmt.Sprint(time.Now().Unix()), "Wechatpay-Nonce", "n1", "Wechatpay-Serial", "00", "Wechatpay-Signature", "AAAA", "Request-ID", "wx-req-77")
			if a.Status != 401 {
				t.Fatalf("forged: %d %s", a.Status, a.Body)
			}
		}, map[string]string{"source": "wechatpay.v3", "name": "pk", "reason": "signature verification failed", "notification_id": "forged-log-1", "wechat_request_id": "wx-req-77"}},
		{"unknown merchant", func(t *testing.T) {
			if a := e.doURL("POST", e.callbackURL+"/callbacks/wechatpay/nobody", []byte(`{}`)); a.Status != 404 {
				t.Fatalf("unknown merchant: %d %s", a.Status, a.Body)
			}
		}, map[string]string{"source": "wechatpay.v3", "name": "nobody", "reason": "no merchant named nobody"}},
		{"replayed APIv3 notification", func(t *testing.T) {
			n := e.v3Event(t, "log-replay-1")
			e.deliverOnce(t, n)
			if acked, _, _, _ := e.emu.Deliver(clone(n)); acked {
				t.Fatal("a replay was acknowledged")
			}
		}, map[string]string{"source": "wechatpay.v3", "name": "pk", "reason": "replayed", "notification_id": "log-replay-1"}},
		{"push with a bad msg_signature", func(t *testing.T) {
			n := safePushXML(t, e, "shop", appID, []byte(`<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[x]]></Event></xml>`))
			n.URL = strings.Replace(n.URL, "msg_signature=", "msg_signature=0", 1)
			if acked, _, _, _ := e.emu.Deliver(n); acked {
				t.Fatal("a forged push was acknowledged")
			}
		}, map[string]string{"source": "message_push", "name": "shop", "reason": "msg_signature mismatch"}},
		{"stale push", func(t *testing.T) {
			n := safePushXMLAt(t, e, []byte(`<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[y]]></Event></xml>`), time.Now().Add(-time.Hour))
			if acked, _, _, _ := e.emu.Deliver(n); acked {
				t.Fatal("a stale push was acknowledged")
			}
		}, map[string]string{"source": "message_push", "name": "shop", "reason": "timestamp"}},
		{"handshake with a bad signature", func(t *testing.T) {
			ts := fmt.Sprint(time.Now().Unix())
			if a := e.doURL("GET", e.callbackURL+"/callbacks/message/shop?signature=00&timestamp="+ts+"&nonce=n1&echostr=1", nil); a.Status != 401 {
				t.Fatalf("handshake: %d", a.Status)
			}
		}, map[string]string{"source": "message_push", "name": "shop", "reason": "handshake signature mismatch"}},
		{"tampered APIv2 notification", func(t *testing.T) {
			v2 := []signer.Param{{Key: "appid", Value: appID}, {Key: "mch_id", Value: "1900000001"}, {Key: "result_code", Value: "SUCCESS"},
				{Key: "out_trade_no", Value: "log-v2-2"}, {Key: "transaction_id", Value: "4200000000000888"}, {Key: "total_fee", Value: "101"}, {Key: "nonce_str", Value: "n2"}}
			n, err := e.emu.BuildV2PayNotification("1900000001", v2, e.callbackURL+"/callbacks/wechatpay-v2/pk")
			if err != nil {
				t.Fatal(err)
			}
			n.Body = []byte(strings.Replace(string(n.Body), "101", "999", 1))
			if acked, _, _, _ := e.emu.Deliver(n); acked {
				t.Fatal("a tampered v2 notification was acknowledged")
			}
		}, map[string]string{"source": "wechatpay.v2", "name": "pk", "reason": "sign"}},
	}
	for _, r := range refusals {
		t.Run("refused: "+r.name, func(t *testing.T) {
			r.send(t)
			want := map[string]string{"peer": "127.0.0.1", "request_id": "*"}
			for k, v := range r.want {
				want[k] = v
			}
			l := wantLine(t, cur.next(t), "callback refused", want)
			if l.str("level") != "WARN" {
				t.Errorf("refusal logged at %s", l.str("level"))
			}
		})
	}

	t.Run("failed forward", func(t *testing.T) {
		e.recv.setUp(false)
		defer e.recv.setUp(true)
		n := e.v3Event(t, "log-fwd-1")
		if acked, _, _, _ := e.emu.Deliver(n); acked {
			t.Fatal("acknowledged while the app is down")
		}
		wantLine(t, cur.next(t), "forward to the app failed; WeChat will retry", map[string]string{
			"source": "wechatpay.v3", "name": "pk", "host": "127.0.0.1", "reason": "the app answered HTTP 503", "duration_ms": "*", "notification_id": "log-fwd-1", "level": "ERROR"})
	})

	t.Run("token fetch failure", func(t *testing.T) {
		const wrong = "wrong-app-secret-for-the-log-test"
		secrets = append(secrets, wrong)
		cfg := e.configWith(func(s string) string { return strings.Replace(s, "shop-app-secret-7f3a", wrong, 1) })
		_, appURL, adminURL := e.startGateway(cfg)
		a := e.doURL("POST", appURL+"/xpay/query_order", []byte(`{"env":0,"order_id":"log-tok-1"}`))
		if a.Status != 502 || a.wxgateError(t) != proxy.CodeTokenUnavailable {
			t.Fatalf("wrong secret: %d %s", a.Status, a.Body)
		}
		wantLine(t, cur.next(t), "access_token fetch failed", map[string]string{"app": "shop", "errcode": "40125", "errmsg": "invalid appsecret", "level": "ERROR"})
		m := string(e.doURL("GET", adminURL+"/metrics", nil).Body)
		for _, want := range []string{"wxgate_token_fetch_failures_total 1\n", `api="/cgi-bin/stable_token",error="errcode"} 1` + "\n"} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})

	t.Run("upstream TLS failure with its cause", func(t *testing.T) {
		cfg := e.configWith(func(s string) string {
			i := strings.Index(s, "ca_file = ")
			j := strings.IndexByte(s[i:], '\n')
			return s[:i] + s[i+j+1:]
		})
		_, appURL, adminURL := e.startGateway(cfg)
		a := e.doURL("POST", appURL+"/v3/pay/transactions/jsapi", jsapiBody(appID, "1900000001", "log-tls-1", 1), proxy.HeaderMerchant, "pk")
		if a.Status != 502 || a.wxgateError(t) != proxy.CodeUpstreamUnreach || !strings.Contains(string(a.Body), "TLS certificate not trusted") {
			t.Fatalf("untrusted CA: %d %s", a.Status, a.Body)
		}
		wantLine(t, cur.next(t), "call to WeChat failed", map[string]string{"api": "/v3/pay/transactions/jsapi", "error": "tls", "cause": "x509", "host": "127.0.0.1"})
		if m := string(e.doURL("GET", adminURL+"/metrics", nil).Body); !strings.Contains(m, `api="/v3/pay/transactions/jsapi",error="tls"} 1`+"\n") {
			t.Errorf("metrics do not count the TLS failure:\n%s", m)
		}
	})

	t.Run("a healthy store warns of nothing", func(t *testing.T) {
		// Claims were taken, released (the failed forward) and marked delivered above: none of
		// those store calls failed, so none may be reported as failing.
		for _, l := range logLines(t, logs.String()) {
			if strings.Contains(l.str("msg"), "could not be") {
				t.Errorf("a store warning with a healthy store: %v", l)
			}
		}
	})

	t.Run("no secret, session_key or openid in any line", func(t *testing.T) {
		text := logs.String()
		if testing.Verbose() {
			t.Log(text)
		}
		if len(logLines(t, text)) < 20 {
			t.Fatalf("too few lines to mean anything:\n%s", text)
		}
		for _, s := range append(append(secrets, sessionKeys...), openids...) {
			if len(s) < 8 {
				t.Fatalf("%q is too short to grep for", s)
			}
			if strings.Contains(text, s) {
				t.Errorf("the log holds %q", s)
			}
		}
	})
}

// TestRepeatedRefusalsRateLimited: forged notifications that differ only in the values they
// carry (serial, nonce) make one "callback refused" line per 10 s, while the metrics count
// every one; an unknown merchant name is limited the same way whatever the name.
func TestRepeatedRefusalsRateLimited(t *testing.T) {
	logs := &syncBuffer{}
	e := startEnvWith(t, envOptions{logs: logs})
	const n = 6
	for i := range n {
		a := e.doURL("POST", e.callbackURL+"/callbacks/wechatpay/pk", []byte(fmt.Sprintf(`{"id":"forged-%d"}`, i)),
			"Wechatpay-Timestamp", fmt.Sprint(time.Now().Unix()), "Wechatpay-Nonce", fmt.Sprint("n", i), "Wechatpay-Serial", fmt.Sprint(1000+i), "Wechatpay-Signature", "AAAA")
		if a.Status != 401 {
			t.Fatalf("forged %d: %d %s", i, a.Status, a.Body)
		}
		if a := e.doURL("POST", e.callbackURL+fmt.Sprintf("/callbacks/wechatpay/nobody-%d", i), []byte(`{}`)); a.Status != 404 {
			t.Fatalf("unknown merchant %d: %d", i, a.Status)
		}
	}
	var forged, unknown int
	for _, l := range logLines(t, logs.String()) {
		if l.str("msg") != "callback refused" {
			continue
		}
		if l.str("name") == "pk" {
			forged++
		} else {
			unknown++
		}
	}
	if forged != 1 || unknown != 1 {
		t.Errorf("%d lines for %d forged notifications and %d for %d unknown names, want 1 each:\n%s", forged, n, unknown, n, logs.String())
	}
	if got := e.metric(t, `wxgate_callbacks_total{source="wechatpay.v3",outcome="rejected"}`); got != 2*n {
		t.Errorf("metrics count %v refusals, want %d", got, 2*n)
	}
}
