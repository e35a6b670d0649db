package emulator

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// uuidPattern is the form of APIv3 notification ids.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// transactionResource is a plaintext resource for the builder tests.
const transactionResource = `{"appid":"wx00000000000000k1","mchid":"1900000102","out_trade_no":"n1","trade_state":"SUCCESS"}`

// TestV3NotificationGenuine: a built notification verifies with the key its serial names —
// the public key for a public-key merchant, the newest platform certificate for a certificate
// merchant, or the public key when a certificate merchant's notification names it (migration)
// — and decrypts to the resource.
func TestV3NotificationGenuine(t *testing.T) {
	h, r := newNotifyHarness(t, 1)
	tests := []struct {
		name       string
		m          testMerchant
		serial     string
		wantSerial func() string
	}{
		{"public key merchant", h.mk, "", h.emu.PayPublicKeyID},
		{"certificate merchant", h.mp, "", func() string {
			certs := h.emu.platformCerts(h.clock.Now())
			return certs[len(certs)-1].serial
		}},
		{"certificate merchant, public key named", h.mp, h.emu.PayPublicKeyID(), h.emu.PayPublicKeyID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := h.emu.BuildV3Notification(tt.m.MchID, "TRANSACTION.SUCCESS", []byte(transactionResource),
				r.base+"/v3/"+tt.m.MchID, NotifyOptions{Serial: tt.serial})
			if err != nil {
				t.Fatal(err)
			}
			acked, got := deliver(t, h, r, n)
			if !acked || got.err != nil || string(got.plain) != transactionResource {
				t.Fatalf("acked %v, verification %v, plaintext %s", acked, got.err, got.plain)
			}
			if got.header["Wechatpay-Serial"] != tt.wantSerial() || got.header["Content-Type"] != "application/json" ||
				got.header["Wechatpay-Signature-Type"] != "WECHATPAY2-SHA256-RSA2048" || len(got.header["Wechatpay-Nonce"]) != 32 {
				t.Errorf("headers %v", got.header)
			}
			var env v3Notice
			if err := json.Unmarshal(got.body, &env); err != nil {
				t.Fatal(err)
			}
			res := env.Resource
			if env.ID != n.ID || !uuidPattern.MatchString(env.ID) || env.CreateTime != "2024-05-01T10:00:00+08:00" ||
				env.ResourceType != "encrypt-resource" || env.EventType != "TRANSACTION.SUCCESS" || env.Summary != "支付成功" ||
				res.OriginalType != "transaction" || res.AssociatedData != "transaction" || len(res.Nonce) != 12 {
				t.Errorf("envelope %s", got.body)
			}
		})
	}
	// A refund event: original_type and associated data "refund", WeChat Pay's summary; an id
	// given by the caller is kept.
	n, err := h.emu.BuildV3Notification(mchIDK, "REFUND.SUCCESS", []byte(`{"refund_status":"SUCCESS"}`), r.base+"/v3/"+mchIDK, NotifyOptions{ID: "EV-2018022511223320873"})
	if err != nil {
		t.Fatal(err)
	}
	if acked, got := deliver(t, h, r, n); !acked || !strings.Contains(string(got.body), `"id":"EV-2018022511223320873"`) ||
		!strings.Contains(string(got.body), `"summary":"退款成功","resource":{"original_type":"refund"`) ||
		!strings.Contains(string(got.body), `"associated_data":"refund"`) {
		t.Fatalf("refund notification: acked %v %v %s", acked, got.err, got.body)
	}
	if _, err := h.emu.BuildV3Notification("1900009999", "TRANSACTION.SUCCESS", nil, r.base, NotifyOptions{}); err == nil {
		t.Error("unknown merchant: no error")
	}
}

// TestV3NotificationForgeries: every forgery NotifyOptions make fails the check it targets, and
// WeChat does not count the 4xx answer as an acknowledgement.
func TestV3NotificationForgeries(t *testing.T) {
	h, r := newNotifyHarness(t, 1)
	build := func(opts NotifyOptions) Notification {
		t.Helper()
		n, err := h.emu.BuildV3Notification(mchIDK, "TRANSACTION.SUCCESS", []byte(transactionResource), r.base+"/v3/"+mchIDK, opts)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// A genuine notification with a fixed nonce, accepted once: the same timestamp and nonce
	// again is a replay.
	if acked, got := deliver(t, h, r, build(NotifyOptions{Nonce: "fixed-nonce"})); !acked || got.err != nil {
		t.Fatalf("genuine: acked %v %v", acked, got.err)
	}
	tampered := build(NotifyOptions{})
	tampered.Body = []byte(strings.Replace(string(tampered.Body), "支付成功", "支付失败", 1))
	tests := []struct {
		name string
		n    Notification
		want error
	}{
		{"foreign key", build(NotifyOptions{ForeignKey: true}), errSignature},
		{"SIGNTEST probe", build(NotifyOptions{SignTest: true}), signer.ErrSignatureProbe},
		{"unknown serial", build(NotifyOptions{Serial: "0123456789ABCDEF0123456789ABCDEF01234567"}), errUnknownSerial},
		{"old timestamp", build(NotifyOptions{Timestamp: startTime.Add(-6 * time.Minute)}), errSkew},
		{"future timestamp", build(NotifyOptions{Timestamp: startTime.Add(6 * time.Minute)}), errSkew},
		{"nonce replayed", build(NotifyOptions{Nonce: "fixed-nonce"}), errReplay},
		{"body changed after signing", tampered, errSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acked, status, _, err := h.emu.Deliver(tt.n)
			got := r.last()
			if err != nil || acked || status != 401 || !errors.Is(got.err, tt.want) {
				t.Fatalf("acked %v, HTTP %d, %v; receiver: %v, want %v", acked, status, err, got.err, tt.want)
			}
		})
	}
	if p := build(NotifyOptions{SignTest: true}).Header["Wechatpay-Signature"]; !strings.HasPrefix(p, signer.SignTestPrefix) {
		t.Errorf("probe signature %q", p)
	}
}

// pushMsg is an event for appA's pushes.
const pushMsg = `{"ToUserName":"gh_97417a04a28d","FromUserName":"oWxPay0000000000000000000000","CreateTime":1714112445,"MsgType":"event","Event":"xpay_coin_pay_notify","OpenId":"o-user-1","OutTradeNo":"t1"}`

// pushMsgXML is an XML event for appX's pushes.
const pushMsgXML = `<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName><CreateTime>1714112445</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[debug_demo]]></Event></xml>`

// TestPushMessageModes: in each mode and format a built push verifies and carries the event;
// the body has the mode's shape and the query its parameters.
func TestPushMessageModes(t *testing.T) {
	h, r := newNotifyHarness(t, 1)
	tests := []struct {
		name, appID, msg string
		encrypted        bool
		body             *regexp.Regexp // the body's shape
		openid           string
	}{
		{"JSON safe", appA.AppID, pushMsg, true, regexp.MustCompile(`^\{"ToUserName":"gh_97417a04a28d","Encrypt":"[A-Za-z0-9+/=]+"\}$`), "o-user-1"},
		{"XML compat", appX.AppID, pushMsgXML, true,
			regexp.MustCompile(`^<xml><ToUserName><!\[CDATA\[gh_97417a04a28d\]\]></ToUserName>.*<Event><!\[CDATA\[debug_demo\]\]></Event><Encrypt><!\[CDATA\[[A-Za-z0-9+/=]+\]\]></Encrypt></xml>$`),
			"o9AgO5Kd5ggOC-bXrbNODIiE3bGY"},
		{"JSON plain", appT.AppID, pushMsg, false, regexp.MustCompile(`^` + regexp.QuoteMeta(pushMsg) + `$`), "o-user-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := h.emu.BuildPushMessage(tt.appID, []byte(tt.msg), r.base+"/push/"+tt.appID, NotifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			acked, got := deliver(t, h, r, n)
			if !acked || got.err != nil || string(got.plain) != tt.msg {
				t.Fatalf("acked %v, verification %v, message %s", acked, got.err, got.plain)
			}
			q := got.query
			if !tt.body.Match(got.body) || q.Get("openid") != tt.openid || q.Get("timestamp") != strconv.FormatInt(startTime.Unix(), 10) || q.Get("nonce") == "" ||
				(q.Get("encrypt_type") == "aes") != tt.encrypted || (q.Get("msg_signature") != "") != tt.encrypted {
				t.Errorf("query %v body %s", q, got.body)
			}
			if n.ID != sha1Hex([]byte(tt.msg)) {
				t.Errorf("ID %s is not the event's digest", n.ID)
			}
		})
	}
	// The official plaintext vector (xpay.md §4.3): token AAAAA, timestamp 1714037059, nonce
	// 486452656.
	n, err := h.emu.BuildPushMessage(appT.AppID, []byte(pushMsg), "https://example.com/push?from=wx", NotifyOptions{Timestamp: time.Unix(1714037059, 0), Nonce: "486452656"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(n.URL, "https://example.com/push?from=wx&signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656&openid=o-user-1") {
		t.Errorf("URL %s", n.URL)
	}
	if _, err := h.emu.BuildPushMessage(appA.AppID, []byte("not json"), r.base, NotifyOptions{}); err == nil {
		t.Error("a JSON app's push of a non-JSON event: no error")
	}
	if _, err := h.emu.BuildPushMessage("wx-nobody", []byte(pushMsg), r.base, NotifyOptions{}); err == nil {
		t.Error("unknown app: no error")
	}
}

// TestPushMessageForgeries: each forgery fails the check it targets; Serial and SignTest are
// WeChat Pay's and refused.
func TestPushMessageForgeries(t *testing.T) {
	h, r := newNotifyHarness(t, 1)
	door := r.base + "/push/" + appA.AppID
	build := func(appID string, opts NotifyOptions) Notification {
		t.Helper()
		n, err := h.emu.BuildPushMessage(appID, []byte(pushMsg), door, opts)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if acked, got := deliver(t, h, r, build(appA.AppID, NotifyOptions{Nonce: "42"})); !acked || got.err != nil {
		t.Fatalf("genuine: acked %v %v", acked, got.err)
	}
	tests := []struct {
		name string
		n    Notification
		want error
	}{
		{"foreign token", build(appA.AppID, NotifyOptions{ForeignKey: true}), errPushSignature},
		{"old timestamp", build(appA.AppID, NotifyOptions{Timestamp: startTime.Add(-10 * time.Minute)}), errSkew},
		{"nonce replayed", build(appA.AppID, NotifyOptions{Nonce: "42"}), errReplay},
		{"another app's message", build(appY.AppID, NotifyOptions{}), errAppID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acked, status, body, err := h.emu.Deliver(tt.n)
			got := r.last()
			if err != nil || acked || status != 200 || string(body) != `{"ErrCode":1,"ErrMsg":"x"}` || !errors.Is(got.err, tt.want) {
				t.Fatalf("acked %v, HTTP %d %s, %v; receiver: %v, want %v", acked, status, body, err, got.err, tt.want)
			}
		})
	}
	for _, opts := range []NotifyOptions{{Serial: "X"}, {SignTest: true}} {
		if _, err := h.emu.BuildPushMessage(appA.AppID, []byte(pushMsg), door, opts); err == nil {
			t.Errorf("%+v: no error", opts)
		}
	}
}

// TestV2Notifications: pay notifications verify with their sign type and carry defaults;
// refund notifications decrypt to <root>; a changed document fails.
func TestV2Notifications(t *testing.T) {
	h, r := newNotifyHarness(t, 1)
	door := r.base + "/v2/" + mchIDP
	for _, signType := range []string{"", signer.V2SignHMACSHA256} {
		params := []signer.Param{p("result_code", "SUCCESS"), p("out_trade_no", "v2n-1"), p("total_fee", "101"), p("attach", "")}
		if signType != "" {
			params = append(params, p("sign_type", signType))
		}
		n, err := h.emu.BuildV2PayNotification(mchIDP, params, door)
		if err != nil {
			t.Fatal(err)
		}
		acked, got := deliver(t, h, r, n)
		if !acked || got.err != nil {
			t.Fatalf("sign type %q: acked %v %v %s", signType, acked, got.err, got.body)
		}
		d := v2Doc{params: got.params}
		if d.get("return_code") != "SUCCESS" || d.get("appid") != appIDP || d.get("mch_id") != mchIDP || d.get("nonce_str") == "" ||
			d.get("out_trade_no") != "v2n-1" || strings.Contains(string(got.body), "<attach>") || len(d.get("sign")) != map[string]int{"": 32, signer.V2SignHMACSHA256: 64}[signType] {
			t.Errorf("document %s", got.body)
		}
		forged := n
		forged.Body = []byte(strings.Replace(string(n.Body), "101", "999", 1))
		if acked, got := deliver(t, h, r, forged); acked || !errors.Is(got.err, errSignature) {
			t.Errorf("changed total_fee: acked %v %v", acked, got.err)
		}
		again, _ := h.emu.BuildV2PayNotification(mchIDP, params, door)
		if again.ID != n.ID || string(again.Body) == string(n.Body) {
			t.Errorf("a rebuild has ID %s (want %s) and the same nonce", again.ID, n.ID)
		}
	}
	info := []signer.Param{p("out_trade_no", "v2n-1"), p("refund_id", "50000000001"), p("refund_status", "SUCCESS"), p("refund_fee", "101")}
	n, err := h.emu.BuildV2RefundNotification(mchIDP, info, door)
	if err != nil {
		t.Fatal(err)
	}
	acked, got := deliver(t, h, r, n)
	d := v2Doc{params: got.params}
	if !acked || got.err != nil || d.get("sign") != "" || d.get("appid") != appIDP || d.get("refund_id") != "50000000001" || d.get("refund_fee") != "101" {
		t.Fatalf("refund: acked %v %v %s %v", acked, got.err, got.body, got.params)
	}
	forged := n
	forged.Body = []byte(strings.Replace(string(n.Body), "<req_info><![CDATA[", "<req_info><![CDATA[AAAA", 1))
	if acked, got := deliver(t, h, r, forged); acked || !errors.Is(got.err, errDecrypt) {
		t.Errorf("changed req_info: acked %v %v", acked, got.err)
	}
	if _, err := h.emu.BuildV2PayNotification(mchIDK, nil, door); err == nil {
		t.Error("a merchant without APIv2: no error")
	}
	if _, err := h.emu.BuildV2PayNotification(mchIDP, []signer.Param{p("sign_type", "SHA1")}, door); err == nil {
		t.Error("an unknown sign_type: no error")
	}
}

// TestDeliverAckRules: what WeChat counts as an acknowledgement, per kind.
func TestDeliverAckRules(t *testing.T) {
	h, r := newNotifyHarness(t, 1)
	tests := []struct {
		name, kind, contentType string
		status                  int
		body                    string
		acked                   bool
	}{
		{"v3 204", KindV3, "", 204, "", true},
		{"v3 200 with FAIL: the status decides", KindV3, "", 200, `{"code":"FAIL","message":"失败"}`, true},
		{"v3 500 with SUCCESS", KindV3, "", 500, `{"code":"SUCCESS"}`, false},
		{"v3 202", KindV3, "", 202, "", false},
		{"v3 404", KindV3, "", 404, "", false},
		{"v2 SUCCESS", KindV2, "", 200, "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>", true},
		{"v2 FAIL", KindV2, "", 200, "<xml><return_code>FAIL</return_code></xml>", false},
		{"v2 empty", KindV2, "", 200, "", false},
		{"v2 success text", KindV2, "", 200, "success", false},
		{"v2 SUCCESS with 500", KindV2, "", 500, "<xml><return_code>SUCCESS</return_code></xml>", false},
		{"push empty", KindPush, "application/json", 200, "", true},
		{"push success", KindPush, "application/json", 200, "success\n", true},
		{"push ErrCode 0", KindPush, "application/json", 200, `{"ErrCode":0,"ErrMsg":"success"}`, true},
		{"push ErrCode 1", KindPush, "application/json", 200, `{"ErrCode":1,"ErrMsg":"fail"}`, false},
		{"push errcode 0 (wrong case)", KindPush, "application/json", 200, `{"errcode":0}`, false},
		{"push ErrCode \"0\" (a string)", KindPush, "application/json", 200, `{"ErrCode":"0"}`, false},
		{"push XML ack to a JSON push", KindPush, "application/json", 200, `<xml><ErrCode>0</ErrCode></xml>`, false},
		{"push other text", KindPush, "application/json", 200, "ok", false},
		{"push empty with 500", KindPush, "application/json", 500, "", false},
		{"XML push ErrCode 0", KindPush, "text/xml", 200, `<xml><ErrCode>0</ErrCode><ErrMsg><![CDATA[success]]></ErrMsg></xml>`, true},
		{"XML push ErrCode 1", KindPush, "text/xml", 200, `<xml><ErrCode>1</ErrCode></xml>`, false},
		{"XML push JSON ack", KindPush, "text/xml", 200, `{"ErrCode":0}`, false},
		{"XML push success", KindPush, "text/xml", 200, "success", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := r.script("ack"+string(rune('a'+i)), func(int) (int, string) { return tt.status, tt.body })
			n := Notification{Kind: tt.kind, URL: url, Header: map[string]string{"Content-Type": tt.contentType}, Body: []byte("{}")}
			acked, status, body, err := h.emu.Deliver(n)
			if err != nil || acked != tt.acked || status != tt.status || string(body) != tt.body {
				t.Fatalf("acked %v, HTTP %d %q, %v; want acked %v", acked, status, body, err, tt.acked)
			}
		})
	}
	// No answer at all is a transport error.
	acked, status, _, err := h.emu.Deliver(Notification{Kind: KindV3, URL: "http://127.0.0.1:1/notify"})
	if err == nil || acked || status != 0 {
		t.Errorf("closed port: acked %v, HTTP %d, %v", acked, status, err)
	}
	if _, _, _, err := h.emu.Deliver(Notification{Kind: KindV3, URL: "ftp://example.com/"}); err == nil {
		t.Error("ftp URL: no error")
	}
	// The request is sent as built: method, query, headers, body.
	url := r.script("echo", func(int) (int, string) { return 204, "" })
	n := Notification{Kind: KindV3, URL: url + "?a=1&b=%2F", Header: map[string]string{"Wechatpay-Serial": "S", "Request-ID": "R"}, Body: []byte("B")}
	if _, _, _, err := h.emu.Deliver(n); err != nil {
		t.Fatal(err)
	}
	got := r.last()
	if got.query.Get("b") != "/" || got.header["Wechatpay-Serial"] != "S" || got.header["Request-ID"] != "R" || string(got.body) != "B" || got.header["User-Agent"] != "Mozilla/4.0" {
		t.Errorf("received %+v", got)
	}
}

// TestPushConfig: message push settings are checked by New.
func TestPushConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		app  App
	}{
		{"URL without token", App{PushURL: "https://example.com/push", PushAESKey: pushKeyA}},
		{"safe mode without key", App{PushURL: "https://example.com/push", PushToken: "t"}},
		{"bad key", App{PushToken: "t", PushAESKey: "short"}},
		{"bad format", App{PushToken: "t", PushFormat: "yaml", PushMode: "plain"}},
		{"bad mode", App{PushToken: "t", PushMode: "secret"}},
		{"bad URL", App{PushURL: "example.com/push", PushToken: "t", PushMode: "plain"}},
	} {
		app := tt.app
		app.AppID, app.Secret = "wx00000000000000c1", "s"
		if _, err := New(Config{Apps: []App{app}}); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if _, err := New(Config{Apps: []App{appA}, RetryScale: -1}); err == nil {
		t.Error("negative retry scale: no error")
	}
	e, err := New(Config{Apps: []App{{AppID: "wx00000000000000c1", Secret: "s", PushURL: "http://127.0.0.1/p", PushToken: "t", PushMode: "plain"}}})
	if err != nil {
		t.Fatal(err)
	}
	if id := e.apps["wx00000000000000c1"].push.originalID; !regexp.MustCompile(`^gh_[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("derived original id %q", id)
	}
}
