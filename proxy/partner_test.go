package proxy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// TestPartnerEndToEnd: a service provider (merchant pk, sp_mchid 1900000001, sp_appid
// wx…a1) places a sub-merchant's JSAPI order through wxgate, the user pays it in the
// sub-merchant's mini program with wxgate's parameters (signed over sub_appid), then the order
// is queried (by out_trade_no and transaction_id), refunded and the refund queried with
// sub_mchid; a second order is closed. The emulator checks every Authorization with the service
// provider's key and every answer is verified by wxgate.
func TestPartnerEndToEnd(t *testing.T) {
	e := startEnv(t, nil)
	const sp, sub, spApp, subApp = "1900000001", "1900000101", "wx00000000000000a1", "wx00000000000000d4"
	if err := e.emu.AddSubMerchant(sp, sub, subApp); err != nil {
		t.Fatal(err)
	}
	// Another service provider's sub-merchant, which pk must not reach.
	if err := e.emu.AddSubMerchant("1900000002", "1900000202", ""); err != nil {
		t.Fatal(err)
	}
	h := []string{"X-Wxgate-Merchant", "pk"}
	no := fmt.Sprintf("partner-%d", time.Now().UnixNano())
	order := func(no, subAppID, payer string) answer {
		t.Helper()
		sa := ""
		if subAppID != "" {
			sa = `"sub_appid":"` + subAppID + `",`
		}
		body := `{"sp_appid":"` + spApp + `","sp_mchid":"` + sp + `",` + sa + `"sub_mchid":"` + sub + `","description":"partner test",` +
			`"out_trade_no":"` + no + `","notify_url":"https://127.0.0.1:1/notify","amount":{"total":300,"currency":"CNY"},"payer":` + payer + `}`
		return e.do("POST", "/v3/pay/partner/transactions/jsapi", []byte(body), h...)
	}
	a := order(no, subApp, `{"sub_openid":"o-sub-user"}`)
	if a.Status != 200 {
		t.Fatalf("partner jsapi: %d %s", a.Status, a.Body)
	}
	prepay := a.json(t)["prepay_id"].(string)

	params := func(body string) proxy.RequestPaymentParams {
		t.Helper()
		a := e.do("POST", proxy.PathV3PaymentParams, []byte(body), h...)
		var p proxy.RequestPaymentParams
		if a.Status != 200 || json.Unmarshal(a.Body, &p) != nil {
			t.Fatalf("payment params %s: %d %s", body, a.Status, a.Body)
		}
		return p
	}
	pay := func(appID string, p proxy.RequestPaymentParams) (string, bool) {
		return e.emu.RequestPaymentClient(emulator.RequestPayment{AppID: appID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign})
	}
	// Signed over sp_appid (the merchant's appid, the helper's default) the client paying in
	// sub_appid refuses the parameters; over sub_appid it pays.
	p := params(`{"prepay_id":"` + prepay + `"}`)
	if msg, ok := pay(subApp, p); ok {
		t.Fatalf("parameters signed over sp_appid paid in sub_appid: %s", msg)
	}
	p = params(`{"prepay_id":"` + prepay + `","sp_appid":"` + spApp + `","sub_appid":"` + subApp + `"}`)
	if msg, ok := pay(subApp, p); !ok {
		t.Fatalf("client payment in sub_appid: %s", msg)
	}

	a = e.do("GET", "/v3/pay/partner/transactions/out-trade-no/"+no+"?sp_mchid="+sp+"&sub_mchid="+sub, nil, h...)
	if a.Status != 200 {
		t.Fatalf("partner query: %d %s", a.Status, a.Body)
	}
	var txn struct {
		SpMchID, SubMchID, SubAppID, TradeState, TransactionID string
		Payer                                                  struct{ SubOpenID string }
	}
	var raw map[string]any
	_ = json.Unmarshal(a.Body, &raw)
	txn.SpMchID, txn.SubMchID, txn.SubAppID = raw["sp_mchid"].(string), raw["sub_mchid"].(string), raw["sub_appid"].(string)
	txn.TradeState, txn.TransactionID = raw["trade_state"].(string), raw["transaction_id"].(string)
	if txn.SpMchID != sp || txn.SubMchID != sub || txn.SubAppID != subApp || txn.TradeState != "SUCCESS" || raw["payer"].(map[string]any)["sub_openid"] != "o-sub-user" {
		t.Fatalf("partner query answer: %s", a.Body)
	}
	if a := e.do("GET", "/v3/pay/partner/transactions/id/"+txn.TransactionID+"?sp_mchid="+sp+"&sub_mchid="+sub, nil, h...); a.Status != 200 || a.json(t)["out_trade_no"] != no {
		t.Fatalf("partner query by id: %d %s", a.Status, a.Body)
	}

	refund := `{"sub_mchid":"` + sub + `","out_trade_no":"` + no + `","out_refund_no":"r-` + no + `","amount":{"refund":100,"total":300,"currency":"CNY"}}`
	if a := e.do("POST", "/v3/refund/domestic/refunds", []byte(refund), h...); a.Status != 200 {
		t.Fatalf("partner refund: %d %s", a.Status, a.Body)
	}
	if a := e.do("GET", "/v3/refund/domestic/refunds/r-"+no+"?sub_mchid="+sub, nil, h...); a.Status != 200 || a.json(t)["status"] != "SUCCESS" {
		t.Fatalf("partner refund query: %d %s", a.Status, a.Body)
	}
	if o, ok := e.emu.PartnerOrder(sub, no); !ok || o.Refunded != 100 || o.AppID != subApp {
		t.Fatalf("the sub-merchant's order: %+v %v", o, ok)
	}
	// Without sub_mchid the refund is the service provider's own: no such order.
	if a := e.do("GET", "/v3/refund/domestic/refunds/r-"+no, nil, h...); a.Status != 404 {
		t.Fatalf("refund query without sub_mchid: %d %s", a.Status, a.Body)
	}

	// A second order, paid in sp_appid (no sub_appid), is closed.
	no2 := no + "-2"
	if a := order(no2, "", `{"sp_openid":"o-sp-user"}`); a.Status != 200 {
		t.Fatalf("partner jsapi in sp_appid: %d %s", a.Status, a.Body)
	}
	if a := e.do("POST", "/v3/pay/partner/transactions/out-trade-no/"+no2+"/close", []byte(`{"sp_mchid":"`+sp+`","sub_mchid":"`+sub+`"}`), h...); a.Status != 204 {
		t.Fatalf("partner close: %d %s", a.Status, a.Body)
	}
	if o, ok := e.emu.PartnerOrder(sub, no2); !ok || o.TradeState != "CLOSED" || o.AppID != spApp {
		t.Fatalf("closed order: %+v %v", o, ok)
	}

	// WeChat Pay's refusals pass through verified: a sub_mchid not the provider's, a sub_appid
	// not the sub-merchant's, sub_openid without sub_appid.
	for _, c := range []struct {
		name, body string
		code       string
	}{
		{"foreign sub_mchid", `{"sp_appid":"` + spApp + `","sp_mchid":"` + sp + `","sub_mchid":"1999999999","description":"d","out_trade_no":"` + no + `-3","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"sp_openid":"o"}}`, "INVALID_REQUEST"},
		{"another provider's sub_mchid", `{"sp_appid":"` + spApp + `","sp_mchid":"` + sp + `","sub_mchid":"1900000202","description":"d","out_trade_no":"` + no + `-6","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"sp_openid":"o"}}`, "INVALID_REQUEST"},
		{"sp_mchid not the signer", `{"sp_appid":"` + spApp + `","sp_mchid":"1900000002","sub_mchid":"` + sub + `","description":"d","out_trade_no":"` + no + `-7","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"sp_openid":"o"}}`, "INVALID_REQUEST"},
		{"foreign sub_appid", `{"sp_appid":"` + spApp + `","sp_mchid":"` + sp + `","sub_appid":"wx00000000000000e5","sub_mchid":"` + sub + `","description":"d","out_trade_no":"` + no + `-4","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"sub_openid":"o"}}`, "APPID_MCHID_NOT_MATCH"},
		{"sub_openid alone", `{"sp_appid":"` + spApp + `","sp_mchid":"` + sp + `","sub_mchid":"` + sub + `","description":"d","out_trade_no":"` + no + `-5","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"sub_openid":"o"}}`, "PARAM_ERROR"},
	} {
		a := e.do("POST", "/v3/pay/partner/transactions/jsapi", []byte(c.body), h...)
		if a.Status != 400 || a.json(t)["code"] != c.code {
			t.Errorf("%s: %d %s, want 400 %s", c.name, a.Status, a.Body, c.code)
		}
	}
}

// TestPaymentParamsAppIDChoice pins the appid the payment parameters are signed over
// (docs/partner.md): sub_appid when given, else sp_appid, else appid, else the merchant's
// configured appid. The APIv2 helper returns the appId it signed, and its paySign must verify
// over it with the merchant's APIv2 key.
func TestPaymentParamsAppIDChoice(t *testing.T) {
	e := startEnv(t, nil)
	pk, _ := e.cfg.Merchant("pk")
	const sub, sp, app = "wx00000000000000c3", "wx00000000000000d4", "wx00000000000000e5"
	for _, c := range []struct {
		name, fields, want string
	}{
		{"sub_appid first", `"sub_appid":"` + sub + `","sp_appid":"` + sp + `","appid":"` + app + `"`, sub},
		{"then sp_appid", `"sp_appid":"` + sp + `","appid":"` + app + `"`, sp},
		{"then appid", `"appid":"` + app + `"`, app},
		{"else the configured appid", ``, pk.AppID},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := `{"prepay_id":"wx0123456789abcdef"`
			if c.fields != "" {
				body += "," + c.fields
			}
			a := e.do("POST", proxy.PathV2PaymentParams, []byte(body+"}"), proxy.HeaderMerchant, "pk")
			var p proxy.RequestPaymentParams
			if err := json.Unmarshal(a.Body, &p); err != nil || a.Status != 200 {
				t.Fatalf("%d %s", a.Status, a.Body)
			}
			if p.AppID != c.want {
				t.Fatalf("signed over appId %q, want %q", p.AppID, c.want)
			}
			params := []signer.Param{{Key: "appId", Value: p.AppID}, {Key: "timeStamp", Value: p.TimeStamp}, {Key: "nonceStr", Value: p.NonceStr}, {Key: "package", Value: p.Package}, {Key: "signType", Value: p.SignType}}
			want, err := signer.NewV2Key(pk.APIv2Key.Value()).AppendSign(nil, p.SignType, params)
			if err != nil || string(want) != p.PaySign {
				t.Fatalf("paySign %s is not the APIv2 sign over the answer's appId (%s, %v)", p.PaySign, want, err)
			}
		})
	}
}

// TestPartnerNotificationEndToEnd: a service provider's order for its sub-merchant, placed
// through wxgate with wxgate's callback door as notify_url, is paid on the emulator's client
// endpoint (POST /_emulator/pay/request_payment); WeChat Pay's partner TRANSACTION.SUCCESS (signed
// and encrypted for the provider, naming sp_mchid and sub_mchid) passes the door of the provider's
// merchant and reaches the app, and so does the REFUND.SUCCESS of its refund. A client payment
// with a forged paySign is refused and notifies nothing.
func TestPartnerNotificationEndToEnd(t *testing.T) {
	e := startEnv(t, nil)
	const sp, sub, spApp, subApp = "1900000001", "1900000103", "wx00000000000000a1", "wx00000000000000d6"
	if a := e.doURL("POST", e.emuAddr+"/_emulator/pay/partner/sub_merchant?sp_mchid="+sp+"&sub_mchid="+sub+"&sub_appid="+subApp, nil); a.Status != 200 {
		t.Fatalf("add sub-merchant: %d %s", a.Status, a.Body)
	}
	h := []string{proxy.HeaderMerchant, "pk"}
	door := e.callbackURL + "/callbacks/wechatpay/pk"
	no := fmt.Sprintf("pnotify-%d", time.Now().UnixNano())
	body := `{"sp_appid":"` + spApp + `","sp_mchid":"` + sp + `","sub_appid":"` + subApp + `","sub_mchid":"` + sub + `","description":"partner notify",` +
		`"out_trade_no":"` + no + `","attach":"a1","notify_url":"` + door + `","amount":{"total":260,"currency":"CNY"},"payer":{"sub_openid":"o-sub-notify"}}`
	a := e.do("POST", "/v3/pay/partner/transactions/jsapi", []byte(body), h...)
	if a.Status != 200 {
		t.Fatalf("partner jsapi: %d %s", a.Status, a.Body)
	}
	prepay := a.json(t)["prepay_id"].(string)
	a = e.do("POST", proxy.PathV3PaymentParams, []byte(`{"prepay_id":"`+prepay+`","sp_appid":"`+spApp+`","sub_appid":"`+subApp+`"}`), h...)
	var p proxy.RequestPaymentParams
	if a.Status != 200 || json.Unmarshal(a.Body, &p) != nil {
		t.Fatalf("payment params: %d %s", a.Status, a.Body)
	}
	pay := func(paySign string) (bool, string) {
		t.Helper()
		return e.emulatedClient("request_payment", emulator.RequestPayment{AppID: subApp, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: paySign})
	}
	// A paySign that is not the provider's signature: the client refuses, the order stays unpaid
	// and nothing is notified.
	forged := []byte(p.PaySign)
	forged[len(forged)/2] ^= 1
	if ok, msg := pay(string(forged)); ok || !strings.Contains(msg, "支付验证签名失败") {
		t.Fatalf("forged paySign: ok %v %s", ok, msg)
	}
	if o, _ := e.emu.PartnerOrder(sub, no); o.TradeState != "NOTPAY" || len(e.emu.Deliveries()) != 0 {
		t.Fatalf("after a forged paySign: %+v, %d deliveries", o, len(e.emu.Deliveries()))
	}
	if ok, msg := pay(p.PaySign); !ok {
		t.Fatalf("client payment: %s", msg)
	}

	ev := e.recv.waitEvents(1, waitTime)[0]
	paid, _ := e.emu.PartnerOrder(sub, no)
	var txn struct {
		SpMchID       string  `json:"sp_mchid"`
		SubMchID      string  `json:"sub_mchid"`
		SpAppID       string  `json:"sp_appid"`
		SubAppID      string  `json:"sub_appid"`
		MchID         *string `json:"mchid"`
		OutTradeNo    string  `json:"out_trade_no"`
		TransactionID string  `json:"transaction_id"`
		TradeState    string  `json:"trade_state"`
		Attach        string  `json:"attach"`
		Payer         struct {
			SubOpenID string `json:"sub_openid"`
		} `json:"payer"`
		Amount struct {
			Total      int64 `json:"total"`
			PayerTotal int64 `json:"payer_total"`
		} `json:"amount"`
	}
	if err := json.Unmarshal(ev.Data, &txn); err != nil {
		t.Fatalf("payment event data %s: %v", ev.Data, err)
	}
	if ev.Source != event.SourceWeChatPayV3 || ev.Type != "TRANSACTION.SUCCESS" || ev.Merchant != "pk" ||
		txn.SpMchID != sp || txn.SubMchID != sub || txn.SpAppID != spApp || txn.SubAppID != subApp || txn.MchID != nil ||
		txn.OutTradeNo != no || txn.TradeState != "SUCCESS" || txn.TransactionID == "" || txn.TransactionID != paid.TransactionID ||
		txn.Attach != "a1" || txn.Payer.SubOpenID != "o-sub-notify" || txn.Amount.Total != 260 || txn.Amount.PayerTotal != 260 {
		t.Fatalf("partner payment event: %+v %s", ev, ev.Data)
	}

	// The refund names no notify_url: WeChat Pay notifies the order's.
	refund := `{"sub_mchid":"` + sub + `","transaction_id":"` + txn.TransactionID + `","out_refund_no":"r` + no + `","amount":{"refund":60,"total":260,"currency":"CNY"}}`
	if a := e.do("POST", "/v3/refund/domestic/refunds", []byte(refund), h...); a.Status != 200 {
		t.Fatalf("partner refund: %d %s", a.Status, a.Body)
	}
	evs := e.recv.waitEvents(2, waitTime)
	var rf struct {
		SpMchID     string  `json:"sp_mchid"`
		SubMchID    string  `json:"sub_mchid"`
		MchID       *string `json:"mchid"`
		OutRefundNo string  `json:"out_refund_no"`
		Status      string  `json:"refund_status"`
		Amount      struct {
			Refund int64 `json:"refund"`
		} `json:"amount"`
	}
	if err := json.Unmarshal(evs[1].Data, &rf); err != nil {
		t.Fatalf("refund event data %s: %v", evs[1].Data, err)
	}
	if evs[1].Type != "REFUND.SUCCESS" || evs[1].Merchant != "pk" || rf.SpMchID != sp || rf.SubMchID != sub || rf.MchID != nil ||
		rf.OutRefundNo != "r"+no || rf.Status != "SUCCESS" || rf.Amount.Refund != 60 {
		t.Fatalf("partner refund event: %+v %s", evs[1], evs[1].Data)
	}

	// WeChat's side: both delivered once to the provider's door, acknowledged. The same bytes at
	// another merchant's door fail there (not its keys, not its merchant).
	ds, err := e.emu.WaitDeliveries(2, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Notification.URL != door || !d.Acked || d.Attempts != 1 {
			t.Errorf("delivery %s to %s: acked %v after %d attempts (%s)", d.Notification.ID, d.Notification.URL, d.Acked, d.Attempts, d.LastError)
		}
	}
	var hdr []string
	for k, v := range ds[0].Notification.Header {
		hdr = append(hdr, k, v)
	}
	if a := e.doURL("POST", e.callbackURL+"/callbacks/wechatpay/certs", ds[0].Notification.Body, hdr...); a.Status < 400 {
		t.Fatalf("the provider's notification at another merchant's door: %d %s", a.Status, a.Body)
	}
}

// emulatedClient plays a client payment API on the emulator's control endpoint
// POST /_emulator/pay/{api} (request_payment, request_merchant_transfer) and returns its ok and
// errMsg.
func (e *testEnv) emulatedClient(api string, req any) (bool, string) {
	e.t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		e.t.Fatal(err)
	}
	a := e.doURL("POST", e.emuAddr+"/_emulator/pay/"+api, body)
	var ans struct {
		OK     bool   `json:"ok"`
		ErrMsg string `json:"errMsg"`
	}
	if a.Status != 200 || json.Unmarshal(a.Body, &ans) != nil {
		e.t.Fatalf("%s: %d %s", api, a.Status, a.Body)
	}
	return ans.OK, ans.ErrMsg
}
