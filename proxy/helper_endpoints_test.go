package proxy_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// TestPaymentParamsAcceptedByClient asks wxgate for wx.requestVirtualPayment parameters and hands
// them to the emulated WeChat client, which verifies paySig and signature as WeChat does.
func TestPaymentParamsAcceptedByClient(t *testing.T) {
	e := startEnv(t, nil)
	appID := e.cfg.Apps[0].AppID
	openid := e.login("nina")
	tests := []struct {
		name, mode, signData string
		coins                int64
	}{
		{"object, offerId from config", "short_series_coin", `{"buyQuantity":30,"env":0,"currencyType":"CNY","outTradeNo":"coin-000001"}`, 30},
		{"string used byte for byte", "short_series_coin", `"{\"offerId\":\"1450000001\", \"buyQuantity\":5, \"env\":0, \"currencyType\":\"CNY\", \"outTradeNo\":\"coin-000002\"}"`, 35},
		{"goods in sandbox", "short_series_goods", `{"buyQuantity":1,"env":1,"currencyType":"CNY","productId":"vip","goodsPrice":600,"outTradeNo":"item-000001","attach":"a&b"}`, 35},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"openid":"`+openid+`","mode":"`+tt.mode+`","signData":`+tt.signData+`}`))
			if a.Status != 200 {
				t.Fatalf("%d %s", a.Status, a.Body)
			}
			var p proxy.PaymentParams
			if err := json.Unmarshal(a.Body, &p); err != nil {
				t.Fatal(err)
			}
			if tt.signData[0] == '"' {
				var want string
				json.Unmarshal([]byte(tt.signData), &want)
				if p.SignData != want {
					t.Fatalf("string signData changed:\n got %s\nwant %s", p.SignData, want)
				}
			} else if !strings.Contains(p.SignData, `"offerId":"1450000001"`) {
				t.Fatalf("offerId not filled from config: %s", p.SignData)
			}
			res := e.emu.RequestVirtualPayment(emulator.ClientPayment{AppID: appID, OpenID: openid, Mode: p.Mode, SignData: p.SignData, PaySig: p.PaySig, Signature: p.Signature})
			if res.ErrCode != 0 {
				t.Fatalf("client rejected the parameters: %d %s", res.ErrCode, res.ErrMsg)
			}
			if b := e.emu.Balance(appID, 0, openid).Balance; b != tt.coins {
				t.Fatalf("balance %d, want %d", b, tt.coins)
			}
		})
	}
	// A tampered signData is rejected by the client: the signature covers the exact string.
	a := e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"openid":"`+openid+`","mode":"short_series_coin","signData":{"buyQuantity":1,"env":0,"currencyType":"CNY","outTradeNo":"coin-000009"}}`))
	var p proxy.PaymentParams
	json.Unmarshal(a.Body, &p)
	res := e.emu.RequestVirtualPayment(emulator.ClientPayment{AppID: appID, OpenID: openid, Mode: p.Mode,
		SignData: strings.Replace(p.SignData, `"buyQuantity":1`, `"buyQuantity":100`, 1), PaySig: p.PaySig, Signature: p.Signature})
	if res.ErrCode == 0 {
		t.Fatal("the client accepted a signData that was changed after signing")
	}
}

// TestPaymentParamsSignatures pins the helper's output to the signer for a known session key.
func TestPaymentParamsSignatures(t *testing.T) {
	e := startEnv(t, nil)
	const sk = "9hAb/NEYUlkaMBEsmFgzig=="
	if a := e.do("POST", proxy.PathSessionKeys, []byte(`{"openid":"o-pinned","session_key":"`+sk+`"}`)); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	signData := `{"offerId":"123","buyQuantity":1,"env":0,"currencyType":"CNY","productId":"testproductId","goodsPrice":10,"outTradeNo":"xxxxxx","attach":"testdata"}`
	quoted, _ := json.Marshal(signData)
	a := e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"openid":"o-pinned","mode":"short_series_goods","signData":`+string(quoted)+`}`))
	var p proxy.PaymentParams
	if err := json.Unmarshal(a.Body, &p); err != nil || a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	wantPay := string(signer.NewXpayKey("shop-prod-appkey-9c1d").AppendClientPaySig(nil, []byte(signData)))
	if p.PaySig != wantPay {
		t.Errorf("paySig %s, want %s", p.PaySig, wantPay)
	}
	// The spec's section 7 value for this session key and signData.
	if p.Signature != "8e08bc05e10243e2e943385292e2063be327f8285c0db753a5c3e5db5745cb69" {
		t.Errorf("signature %s", p.Signature)
	}
}

// TestSessionKeysFromElsewhere: an app that logs users in itself hands wxgate the key, and a fresh
// gateway can then sign currency_pay with it.
func TestSessionKeysFromElsewhere(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("olga")
	appID := e.cfg.Apps[0].AppID
	key, ok := e.emu.SessionKey(appID, openid)
	if !ok {
		t.Fatal("emulator has no session key")
	}
	_, other, _ := e.startGateway(e.configWith(func(s string) string { return s }))
	body := []byte(`{"openid":"` + openid + `","env":0,"user_ip":"127.0.0.1"}`)
	if a := e.doURL("POST", other+"/xpay/query_user_balance", body); a.Status != 409 {
		t.Fatalf("before the key was handed over: %d %s", a.Status, a.Body)
	}
	if a := e.doURL("POST", other+proxy.PathSessionKeys, []byte(`{"openid":"`+openid+`","session_key":"`+key+`"}`)); a.Status != 200 {
		t.Fatalf("store: %d %s", a.Status, a.Body)
	}
	if a := e.doURL("POST", other+"/xpay/query_user_balance", body); a.Status != 200 || a.errcode(t) != 0 {
		t.Fatalf("after: %d %s", a.Status, a.Body)
	}
	// A newer login elsewhere replaces WeChat's key: the stale one now fails at WeChat with
	// 268490003, which passes through unchanged so the app knows to log the user in again.
	e.login("olga")
	if a := e.doURL("POST", other+"/xpay/query_user_balance", body); a.Status != 200 || a.errcode(t) != 268490003 {
		t.Fatalf("stale key: %d %s", a.Status, a.Body)
	}
}

// TestAdminEndpoints checks health, readiness and metrics, and that metrics carry no secret.
func TestAdminEndpoints(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("pete")
	e.do("POST", "/xpay/query_order", []byte(`{"env":5}`))
	if a := e.doURL("GET", e.adminURL+"/healthz", nil); a.Status != 200 {
		t.Fatalf("healthz %d", a.Status)
	}
	if a := e.doURL("GET", e.adminURL+"/readyz", nil); a.Status != 200 {
		t.Fatalf("readyz %d %s", a.Status, a.Body)
	}
	m := e.doURL("GET", e.adminURL+"/metrics", nil)
	text := string(m.Body)
	for _, want := range []string{`wxgate_requests_total{route="code2session",code="2xx"} 1`, `wxgate_errors_total{code="wxgate.bad_env"} 1`, "wxgate_session_keys 1", `wxgate_token_fetches_total{app="shop"}`,
		fmt.Sprintf("wxgate_gomaxprocs %d\n", runtime.GOMAXPROCS(0))} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	key, _ := e.emu.SessionKey(e.cfg.Apps[0].AppID, openid)
	for _, secret := range []string{"shop-app-secret-7f3a", "shop-prod-appkey-9c1d", key, openid} {
		if strings.Contains(text, secret) {
			t.Fatalf("metrics reveal %q", secret)
		}
	}
	// Readiness fails, naming the app, when an app cannot get a token.
	cfg := e.configWith(func(s string) string { return strings.Replace(s, "drama-app-secret-0b7e", "drama-wrong-secret-99", 1) })
	_, _, admin := e.startGateway(cfg)
	a := e.doURL("GET", admin+"/readyz", nil)
	if a.Status != 503 || !strings.Contains(string(a.Body), "drama") || strings.Contains(string(a.Body), "drama-wrong-secret-99") {
		t.Fatalf("readyz with a bad secret: %d %s", a.Status, a.Body)
	}
}

// TestPprofOptIn: the profiler is served only when [server] pprof is on.
func TestPprofOptIn(t *testing.T) {
	e := startEnv(t, nil)
	if a := e.doURL("GET", e.adminURL+"/debug/pprof/cmdline", nil); a.Status != 404 {
		t.Fatalf("pprof off: %d", a.Status)
	}
	cfg := e.configWith(func(s string) string { return strings.Replace(s, "[server]\n", "[server]\npprof = true\n", 1) })
	_, _, admin := e.startGateway(cfg)
	if a := e.doURL("GET", admin+"/debug/pprof/cmdline", nil); a.Status != 200 {
		t.Fatalf("pprof on: %d", a.Status)
	}
	if m := e.doURL("GET", admin+"/metrics", nil); !strings.Contains(string(m.Body), "go_memstats_mallocs_total ") {
		t.Fatal("metrics lack go_memstats_mallocs_total")
	}
}
