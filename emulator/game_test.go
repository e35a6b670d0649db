package emulator

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// appG is a mini game.
var appG = App{AppID: "wx00000000000000g1", Secret: "secret-g", OfferID: "1450000077", AppKey: "appkey-prod-g", SandboxAppKey: "appkey-sandbox-g", MiniGame: true}

// newGameHarness is newHarness with a mini game (appG) beside the mini program appA.
func newGameHarness(t *testing.T) *harness {
	t.Helper()
	clock := &fakeClock{t: startTime}
	emu, err := New(Config{Apps: []App{appA, appG}, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- emu.Serve(ln) }()
	t.Cleanup(func() {
		emu.Shutdown()
		if err := <-served; err != nil && !errors.Is(err, ErrShutdown) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &harness{t: t, emu: emu, clock: clock, base: "http://" + ln.Addr().String(),
		client: &fasthttp.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}, tokens: make(map[string]string)}
}

// gameCallBody is a /wxa/game/ body for openid in env with extra members.
func gameCallBody(openid string, env int, extra string) string {
	return fmt.Sprintf(`{"openid":%q,"offer_id":"1450000077","ts":1714528800,"zone_id":"1","env":%d,"user_ip":"1.2.3.4"%s}`, openid, env, extra)
}

// TestGameVerification: the emulator refuses /wxa/game/ calls as WeChat does, in WeChat's
// order, and serves a correctly signed one.
func TestGameVerification(t *testing.T) {
	h := newGameHarness(t)
	openid, _ := h.login(appG, "gail")
	body := gameCallBody(openid, 0, `,"amount":5,"bill_no":"g-000001"`)
	call := func(uri string, sigMethod string, opts ...xopt) obj {
		method, u := h.xpayURL(uri, body, append([]xopt{withApp(appG)}, opts...)...)
		if sigMethod != "" {
			u += "&sig_method=" + sigMethod
		}
		return h.getJSON(method, u, []byte(body))
	}
	cases := []struct {
		name string
		got  obj
		code int64
	}{
		{"no sig_method", call("/wxa/game/present", ""), 90018},
		{"sig_method md5", call("/wxa/game/present", "md5"), 90018},
		{"pay_sig with the sandbox key", call("/wxa/game/present", "hmac_sha256", withKey(appG.SandboxAppKey)), 90011},
		{"uppercase pay_sig", call("/wxa/game/present", "hmac_sha256", withPaySig(strings.ToUpper(paySigHex(appG.AppKey, "/wxa/game/present", body)))), 90011},
		{"pay_sig over the /xpay/ uri", call("/wxa/game/present", "hmac_sha256", withPaySig(paySigHex(appG.AppKey, "/xpay/present_currency", body))), 90011},
		{"wrong signature", call("/wxa/game/present", "hmac_sha256", withSignature(userSigHex("AAAAAAAAAAAAAAAAAAAAAA==", body))), 90010},
		{"signed right", call("/wxa/game/present", "hmac_sha256"), 0},
		{"same bill_no again", call("/wxa/game/present", "hmac_sha256"), 90012},
	}
	for _, c := range cases {
		if c.got.code() != c.code {
			t.Errorf("%s: %v, want errcode %d", c.name, c.got, c.code)
		}
	}
	if b := h.emu.GameBalance(appG.AppID, 0, openid, "1"); b.Balance != 5 || b.PresentBalance != 5 {
		t.Errorf("balance %+v, want 5 present coins", b)
	}
	// A user with no session: 90016.
	nobody := gameCallBody("o-nobody", 0, "")
	method, u := h.xpayURL("/wxa/game/getbalance", nobody, withApp(appG), withSignature("00"))
	if m := h.getJSON(method, u+"&sig_method=hmac_sha256", []byte(nobody)); m.code() != 90016 {
		t.Errorf("no session: %v, want 90016", m)
	}
	// Each kind is refused the other's APIs.
	aOpenid, _ := h.login(appA, "alan")
	aBody := gameCallBody(aOpenid, 0, "")
	method, u = h.xpayURL("/wxa/game/getbalance", aBody, withApp(appA))
	if m := h.getJSON(method, u+"&sig_method=hmac_sha256", []byte(aBody)); m.code() != 48001 {
		t.Errorf("a mini program on /wxa/game/: %v, want 48001", m)
	}
	if m := h.xpay("/xpay/query_user_balance", `{"openid":"`+openid+`","env":0,"user_ip":"1.2.3.4"}`, withApp(appG)); m.code() != 48001 {
		t.Errorf("a mini game on /xpay/: %v, want 48001", m)
	}
}

// TestGameCoinsFlow: coins bought on the client, deducted, partly returned, the order queried.
func TestGameCoinsFlow(t *testing.T) {
	h := newGameHarness(t)
	openid, _ := h.login(appG, "gus")
	// Through the control endpoint, as a client outside the process would.
	res := h.getJSON("POST", "/_emulator/minigame/request_midas_payment", []byte(`{"appid":"`+appG.AppID+`","openid":"`+openid+`","mode":"game","offerId":"`+appG.OfferID+`","currencyType":"CNY","buyQuantity":100,"zoneId":"1","outTradeNo":"gc-000001"}`))
	if res.num("errCode") != 0 || res.str("outTradeNo") != "gc-000001" {
		t.Fatalf("requestMidasPayment: %v", res)
	}
	if again := h.emu.RequestMidasPayment(MidasPayment{AppID: appG.AppID, OpenID: openid, Mode: "game", OfferID: appG.OfferID, CurrencyType: "CNY", BuyQuantity: 1, OutTradeNo: "gc-000001"}); again.ErrCode == 0 {
		t.Error("an outTradeNo was accepted twice")
	}
	call := func(uri, extra string) obj {
		b := gameCallBody(openid, 0, extra)
		method, u := h.xpayURL(uri, b, withApp(appG))
		return h.getJSON(method, u+"&sig_method=hmac_sha256", []byte(b))
	}
	steps := []struct {
		uri, extra string
		code       int64
		balance    int64
	}{
		{"/wxa/game/pay", `,"amount":30,"bill_no":"p-000001"`, 0, 70},
		{"/wxa/game/pay", `,"amount":71,"bill_no":"p-000002"`, 90013, -1},
		{"/wxa/game/cancelpay", `,"amount":10,"bill_no":"c-000001","pay_bill_no":"p-000001"`, 0, 80},
		{"/wxa/game/cancelpay", `,"amount":21,"bill_no":"c-000002","pay_bill_no":"p-000001"`, 90018, -1},
		{"/wxa/game/getbalance", ``, 0, 80},
	}
	for _, s := range steps {
		m := call(s.uri, s.extra)
		if m.code() != s.code || (s.balance >= 0 && m.num("balance") != s.balance) {
			t.Errorf("%s %s: %v, want errcode %d balance %d", s.uri, s.extra, m, s.code, s.balance)
		}
	}
	if m := call("/wxa/game/queryorderinfo", `,"out_trade_no":"gc-000001","biz_id":1`); m.code() != 0 || m.num("pay_state") != 2 {
		t.Errorf("queryorderinfo: %v", m)
	}
	if m := call("/wxa/game/queryorderinfo", `,"out_trade_no":"gc-000001","biz_id":2`); m.code() != 90000 {
		t.Errorf("queryorderinfo with the wrong biz_id: %v, want 90000", m)
	}
}
