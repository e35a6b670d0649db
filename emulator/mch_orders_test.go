package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// refundBody is a refund request body.
func refundBody(idKey, id, outRefundNo string, refund, total int64) []byte {
	b, _ := json.Marshal(map[string]any{
		idKey: id, "out_refund_no": outRefundNo, "reason": "不想要了",
		"amount": map[string]any{"refund": refund, "total": total, "currency": "CNY"},
	})
	return b
}

func TestV3OrderLifecycle(t *testing.T) {
	h := newMchHarness(t)
	const otn = "life_order_1"
	byOTN := "/v3/pay/transactions/out-trade-no/" + otn + "?mchid=" + mchIDP
	prepayID := h.placeJSAPI(h.mp, otn, 100)

	o, ok := h.emu.Order(mchIDP, otn)
	if !ok || o.TradeState != "NOTPAY" || o.Total != 100 || o.AppID != appIDP || o.OpenID == "" || o.NotifyURL != notifyOK || o.Attach != "a&b" {
		t.Fatalf("Order = %+v, %v", o, ok)
	}
	m := h.v3(h.mp, "GET", byOTN, nil).obj(t)
	if m.str("trade_state") != "NOTPAY" || m.str("trade_state_desc") == "" || m.str("transaction_id") != "" ||
		m.sub("amount").num("total") != 100 || m["payer"] != nil || m.str("mchid") != mchIDP || m.str("appid") != appIDP {
		t.Fatalf("unpaid order: %v", m)
	}
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/pay/transactions/id/4200000000000000000000000000?mchid="+mchIDP, nil), 404, "ORDER_NOT_EXIST")
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/pay/transactions/out-trade-no/"+otn, nil), 400, "PARAM_ERROR")
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/pay/transactions/out-trade-no/"+otn+"?mchid="+mchIDK, nil), 400, "INVALID_REQUEST")
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/pay/transactions/out-trade-no/no_such_order?mchid="+mchIDP, nil), 404, "ORDER_NOT_EXIST")
	expectV3Error(t, h.v3(h.mk, "GET", "/v3/pay/transactions/out-trade-no/"+otn+"?mchid="+mchIDK, nil), 404, "ORDER_NOT_EXIST")

	if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mp, prepayID)); !ok || msg != "requestPayment:ok" {
		t.Fatalf("RequestPaymentClient: %s", msg)
	}
	r := h.v3(h.mp, "GET", byOTN, nil)
	m = r.obj(t)
	txn := m.str("transaction_id")
	if m.str("trade_state") != "SUCCESS" || !regexp.MustCompile(`^\d{28}$`).MatchString(txn) ||
		m.str("success_time") != "2024-05-01T10:00:00+08:00" || m.sub("payer").str("openid") != o.OpenID ||
		m.sub("amount").num("payer_total") != 100 || m.str("bank_type") != "OTHERS" || m.str("trade_type") != "JSAPI" ||
		m.str("attach") != "a&b" {
		t.Fatalf("paid order: %s", r.body)
	}
	if !strings.Contains(string(r.body), `"attach":"a&b"`) {
		t.Errorf("answer escapes HTML characters: %s", r.body)
	}
	byID := h.v3(h.mp, "GET", "/v3/pay/transactions/id/"+txn+"?mchid="+mchIDP, nil)
	if string(byID.body) != string(r.body) {
		t.Errorf("query by id %s differs from query by out_trade_no %s", byID.body, r.body)
	}

	// A partial refund: PROCESSING, then SUCCESS on the next query; the order stays SUCCESS.
	ref := h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", otn, "refund_1", 40, 100))
	m = ref.obj(t)
	if ref.status != 200 || m.str("status") != "PROCESSING" || m.str("success_time") != "" || m.str("refund_id") == "" ||
		m.sub("amount").num("refund") != 40 || m.sub("amount").num("total") != 100 || m.str("transaction_id") != txn {
		t.Fatalf("refund: HTTP %d %s", ref.status, ref.body)
	}
	refundID := m.str("refund_id")
	if o, _ := h.emu.Order(mchIDP, otn); o.Refunded != 40 {
		t.Errorf("Order.Refunded = %d, want 40", o.Refunded)
	}
	m = h.v3(h.mp, "GET", "/v3/refund/domestic/refunds/refund_1", nil).obj(t)
	if m.str("status") != "SUCCESS" || m.str("success_time") == "" || m.str("refund_id") != refundID {
		t.Fatalf("refund query: %v", m)
	}
	if m = h.v3(h.mp, "GET", byOTN, nil).obj(t); m.str("trade_state") != "SUCCESS" {
		t.Fatalf("after a partial refund: %v", m)
	}

	// Refund rules.
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", otn, "refund_2", 61, 100)), 400, "INVALID_REQUEST")
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", otn, "refund_2", 10, 99)), 400, "PARAM_ERROR")
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", otn, "refund_1", 41, 100)), 400, "INVALID_REQUEST")
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "no_such_order", "refund_3", 1, 100)), 404, "RESOURCE_NOT_EXISTS")
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/refund/domestic/refunds/no_such_refund", nil), 404, "RESOURCE_NOT_EXISTS")
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", []byte(`{"out_trade_no":"`+otn+`","out_refund_no":"r","amount":{"refund":1,"total":100}}`)), 400, "PARAM_ERROR")
	again := h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", otn, "refund_1", 40, 100))
	if m := again.obj(t); again.status != 200 || m.str("refund_id") != refundID || m.str("status") != "SUCCESS" {
		t.Fatalf("repeated out_refund_no: HTTP %d %s", again.status, again.body)
	}

	// The rest, by transaction_id: the order turns REFUND once fully refunded.
	ref = h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("transaction_id", txn, "refund_2", 60, 100))
	if ref.status != 200 || ref.obj(t).str("status") != "PROCESSING" {
		t.Fatalf("second refund: HTTP %d %s", ref.status, ref.body)
	}
	if m = h.v3(h.mp, "GET", byOTN, nil).obj(t); m.str("trade_state") != "REFUND" {
		t.Fatalf("after a full refund: %v", m)
	}
	if o, _ := h.emu.Order(mchIDP, otn); o.TradeState != "REFUND" || o.Refunded != 100 {
		t.Errorf("Order = %+v", o)
	}
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", otn, "refund_4", 1, 100)), 400, "INVALID_REQUEST")

	// An unpaid order cannot be refunded.
	h.placeJSAPI(h.mp, "life_unpaid", 5)
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "life_unpaid", "refund_5", 1, 5)), 400, "INVALID_REQUEST")
}

func TestV3OutTradeNoReuse(t *testing.T) {
	h := newMchHarness(t)
	first := h.placeJSAPI(h.mp, "dup_order", 100)
	second := h.placeJSAPI(h.mp, "dup_order", 100)
	if first == second {
		t.Fatalf("placing the same order again returned the same prepay_id %s", first)
	}
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/pay/transactions/jsapi", []byte(jsapiBody(h.mp, "dup_order", 101))), 403, "OUT_TRADE_NO_USED")
	if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mp, first)); !ok {
		t.Fatalf("pay with the first prepay_id: %s", msg)
	}
	if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mp, second)); ok || !strings.Contains(msg, "已支付") {
		t.Fatalf("pay the same order again: %s", msg)
	}
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/pay/transactions/jsapi", []byte(jsapiBody(h.mp, "dup_order", 100))), 403, "ORDERPAID")
	// The same out_trade_no is free at another merchant.
	h.placeJSAPI(h.mk, "dup_order", 7)
}

func TestV3Close(t *testing.T) {
	h := newMchHarness(t)
	closeBody := []byte(`{"mchid":"` + mchIDP + `"}`)
	prepayID := h.placeJSAPI(h.mp, "close_order", 100)
	r := h.v3(h.mp, "POST", "/v3/pay/transactions/out-trade-no/close_order/close", closeBody)
	if r.status != 204 || len(r.body) != 0 {
		t.Fatalf("close: HTTP %d %q %v", r.status, r.body, r.header)
	}
	if m := h.v3(h.mp, "GET", "/v3/pay/transactions/out-trade-no/close_order?mchid="+mchIDP, nil).obj(t); m.str("trade_state") != "CLOSED" {
		t.Fatalf("after close: %v", m)
	}
	if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mp, prepayID)); ok || !strings.Contains(msg, "已关闭") {
		t.Fatalf("pay a closed order: %s", msg)
	}
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/pay/transactions/jsapi", []byte(jsapiBody(h.mp, "close_order", 100))), 400, "ORDER_CLOSED")
	for _, otn := range []string{"close_order", "never_placed"} {
		if r := h.v3(h.mp, "POST", "/v3/pay/transactions/out-trade-no/"+otn+"/close", closeBody); r.status != 204 {
			t.Errorf("close %s: HTTP %d %s, want 204", otn, r.status, r.body)
		}
	}
	h.pay3(h.mp, "close_paid", 5)
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/pay/transactions/out-trade-no/close_paid/close", closeBody), 400, "ORDERPAID")
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/pay/transactions/out-trade-no/close_paid/close", []byte(`{}`)), 400, "PARAM_ERROR")
	expectV3Error(t, h.v3(h.mp, "POST", "/v3/pay/transactions/out-trade-no/close_paid/close", []byte(`mchid`)), 400, "PARAM_ERROR")
}

func TestV3JSAPIValidation(t *testing.T) {
	h := newMchHarness(t)
	base := func() map[string]any {
		var m map[string]any
		_ = json.Unmarshal([]byte(jsapiBody(h.mp, "valid_order", 100)), &m)
		return m
	}
	tests := []struct {
		name   string
		change func(m map[string]any)
		raw    string // a raw body instead
		status int
		code   string
	}{
		{"valid", func(map[string]any) {}, "", 200, ""},
		{"not an object", nil, `[]`, 400, "PARAM_ERROR"},
		{"no appid", func(m map[string]any) { delete(m, "appid") }, "", 400, "PARAM_ERROR"},
		{"no mchid", func(m map[string]any) { delete(m, "mchid") }, "", 400, "PARAM_ERROR"},
		{"no description", func(m map[string]any) { delete(m, "description") }, "", 400, "PARAM_ERROR"},
		{"description too long", func(m map[string]any) { m["description"] = strings.Repeat("长", 128) }, "", 400, "PARAM_ERROR"},
		{"no out_trade_no", func(m map[string]any) { delete(m, "out_trade_no") }, "", 400, "PARAM_ERROR"},
		{"out_trade_no too short", func(m map[string]any) { m["out_trade_no"] = "abc12" }, "", 400, "PARAM_ERROR"},
		{"out_trade_no with @", func(m map[string]any) { m["out_trade_no"] = "order@123" }, "", 400, "PARAM_ERROR"},
		{"no notify_url", func(m map[string]any) { delete(m, "notify_url") }, "", 400, "PARAM_ERROR"},
		{"http notify_url", func(m map[string]any) { m["notify_url"] = "http://example.com/n" }, "", 400, "PARAM_ERROR"},
		{"notify_url with a query", func(m map[string]any) { m["notify_url"] = notifyOK + "?a=1" }, "", 400, "PARAM_ERROR"},
		{"no amount", func(m map[string]any) { delete(m, "amount") }, "", 400, "PARAM_ERROR"},
		{"zero total", func(m map[string]any) { m["amount"] = map[string]any{"total": 0} }, "", 400, "PARAM_ERROR"},
		{"total as a string", func(m map[string]any) { m["amount"] = map[string]any{"total": "100"} }, "", 400, "PARAM_ERROR"},
		{"currency USD", func(m map[string]any) { m["amount"] = map[string]any{"total": 1, "currency": "USD"} }, "", 400, "PARAM_ERROR"},
		{"no openid", func(m map[string]any) { m["payer"] = map[string]any{} }, "", 400, "PARAM_ERROR"},
		{"time_expire in the past", func(m map[string]any) { m["time_expire"] = "2024-05-01T09:00:00+08:00" }, "", 400, "PARAM_ERROR"},
		{"time_expire not RFC 3339", func(m map[string]any) { m["time_expire"] = "20240501120000" }, "", 400, "PARAM_ERROR"},
		{"another merchant's mchid", func(m map[string]any) { m["mchid"] = mchIDK }, "", 400, "INVALID_REQUEST"},
		{"appid not bound to the merchant", func(m map[string]any) { m["appid"] = appIDK }, "", 400, "APPID_MCHID_NOT_MATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			body := []byte(tt.raw)
			if tt.change != nil {
				m := base()
				tt.change(m)
				body, _ = json.Marshal(m)
			}
			r := h.v3(h.mp, "POST", "/v3/pay/transactions/jsapi", body)
			if tt.code == "" {
				if r.status != tt.status {
					t.Fatalf("HTTP %d %s, want %d", r.status, r.body, tt.status)
				}
				return
			}
			expectV3Error(t, r, tt.status, tt.code)
		})
	}
}

func TestRequestPaymentClient(t *testing.T) {
	h := newMchHarness(t)
	seq := 0
	place := func() string {
		seq++
		return h.placeJSAPI(h.mp, "client_pay_"+strconv.Itoa(seq), 10)
	}
	tests := []struct {
		name   string
		setup  func() RequestPayment
		reason string // "" means success; else a substring of the failure
	}{
		{"ok", func() RequestPayment { return h.v3Payment(h.mp, place()) }, ""},
		{"timeStamp 299 s old", func() RequestPayment {
			id := place()
			h.clock.Advance(299 * time.Second)
			defer h.clock.Advance(-299 * time.Second)
			return h.v3Payment(h.mp, id)
		}, ""},
		{"missing paySign", func() RequestPayment { r := h.v3Payment(h.mp, place()); r.PaySign = ""; return r }, "parameter.paySign"},
		{"package without prepay_id=", func() RequestPayment {
			r := h.v3Payment(h.mp, place())
			r.Package = strings.TrimPrefix(r.Package, "prepay_id=")
			return r
		}, "package"},
		{"unknown prepay_id", func() RequestPayment { place(); return h.v3Payment(h.mp, "wx20240501100000deadbeefdeadbeefdead") }, "prepay_id无效"},
		{"another appId", func() RequestPayment { r := h.v3Payment(h.mp, place()); r.AppID = appIDK; return r }, "appId"},
		{"paySign over other data", func() RequestPayment {
			r := h.v3Payment(h.mp, place())
			r.NonceStr = "tampered" + r.NonceStr[8:]
			return r
		}, "支付验证签名失败"},
		{"paySign by another key", func() RequestPayment {
			r := h.v3Payment(h.mk, place())
			r.AppID = appIDP
			return r
		}, "支付验证签名失败"},
		{"signType MD5 for an APIv3 order", func() RequestPayment { r := h.v3Payment(h.mp, place()); r.SignType = "MD5"; return r }, "signType"},
		{"timeStamp 301 s old", func() RequestPayment {
			id := place()
			r := h.v3Payment(h.mp, id)
			h.clock.Advance(301 * time.Second)
			return r
		}, "5分钟"},
		{"nonceStr too long", func() RequestPayment {
			id := place()
			r := h.v3Payment(h.mp, id)
			r.NonceStr = strings.Repeat("n", 33)
			return r
		}, "nonceStr"},
		{"prepay_id expired", func() RequestPayment {
			id := place()
			h.clock.Advance(2 * time.Hour)
			return h.v3Payment(h.mp, id)
		}, "已过期"},
		{"order past time_expire", func() RequestPayment {
			seq++
			var m map[string]any
			_ = json.Unmarshal([]byte(jsapiBody(h.mp, "client_pay_"+strconv.Itoa(seq), 10)), &m)
			m["time_expire"] = rfc3339(h.clock.Now().Add(10 * time.Minute))
			b, _ := json.Marshal(m)
			id := h.v3(h.mp, "POST", "/v3/pay/transactions/jsapi", b).obj(t).str("prepay_id")
			h.clock.Advance(11 * time.Minute)
			return h.v3Payment(h.mp, id)
		}, "截止时间"},
		{"paid already", func() RequestPayment {
			id := place()
			if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mp, id)); !ok {
				t.Fatal(msg)
			}
			return h.v3Payment(h.mp, id)
		}, "已支付"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			req := tt.setup()
			msg, ok := h.emu.RequestPaymentClient(req)
			if tt.reason == "" {
				if !ok || msg != "requestPayment:ok" {
					t.Fatalf("RequestPaymentClient = %q, %v", msg, ok)
				}
				return
			}
			if ok || !strings.HasPrefix(msg, "requestPayment:fail ") || !strings.Contains(msg, tt.reason) {
				t.Fatalf("RequestPaymentClient = %q, %v; want a failure mentioning %q", msg, ok, tt.reason)
			}
		})
	}
}

func TestRequestPaymentOverHTTP(t *testing.T) {
	h := newMchHarness(t)
	req := h.v3Payment(h.mp, h.placeJSAPI(h.mp, "http_pay_1", 10))
	body, _ := json.Marshal(req)
	if !strings.Contains(string(body), `"appId"`) || !strings.Contains(string(body), `"paySign"`) {
		t.Fatalf("RequestPayment JSON %s", body)
	}
	m := h.getJSON("POST", "/_emulator/pay/request_payment", body)
	if m["ok"] != true || m.str("errMsg") != "requestPayment:ok" {
		t.Fatalf("request_payment: %v", m)
	}
	m = h.getJSON("POST", "/_emulator/pay/request_payment", body)
	if m["ok"] != false || !strings.Contains(m.str("errMsg"), "已支付") {
		t.Fatalf("request_payment again: %v", m)
	}
	if status, _ := h.do("POST", "/_emulator/pay/request_payment", []byte(`[1]`)); status != 400 {
		t.Errorf("bad body: HTTP %d, want 400", status)
	}
	if status, _ := h.do("GET", "/_emulator/pay/request_payment", nil); status != 405 {
		t.Errorf("GET: HTTP %d, want 405", status)
	}
	if status, _ := h.do("POST", "/_emulator/pay/nothing", nil); status != 404 {
		t.Errorf("unknown control path: HTTP %d, want 404", status)
	}
	if got := h.emu.Calls("/_emulator/pay/request_payment"); got != 0 {
		t.Errorf("control paths are counted: %d", got)
	}
}

func TestPayOrder(t *testing.T) {
	h := newMchHarness(t)
	h.placeJSAPI(h.mp, "pay_order_1", 10)
	if err := h.emu.PayOrder(mchIDP, "pay_order_1"); err != nil {
		t.Fatalf("PayOrder: %v", err)
	}
	if o, _ := h.emu.Order(mchIDP, "pay_order_1"); o.TradeState != "SUCCESS" || o.TransactionID == "" || !o.SuccessTime.Equal(startTime) {
		t.Fatalf("Order = %+v", o)
	}
	if err := h.emu.PayOrder(mchIDP, "pay_order_1"); err == nil || !strings.Contains(err.Error(), "SUCCESS") {
		t.Errorf("PayOrder of a paid order: %v", err)
	}
	for _, tc := range [][2]string{{mchIDP, "nope"}, {"1900009999", "pay_order_1"}} {
		if err := h.emu.PayOrder(tc[0], tc[1]); !errors.Is(err, ErrNoOrder) {
			t.Errorf("PayOrder(%s, %s) = %v, want ErrNoOrder", tc[0], tc[1], err)
		}
	}
	if _, ok := h.emu.Order("1900009999", "pay_order_1"); ok {
		t.Error("Order of an unknown merchant reported ok")
	}
}

func TestMchConcurrentOrders(t *testing.T) {
	h := newMchHarness(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			otn := fmt.Sprintf("concurrent_%02d", i)
			r, err := h.v3Do(h.mp, "POST", "/v3/pay/transactions/jsapi", []byte(jsapiBody(h.mp, otn, int64(i+1))))
			if err != nil || r.status != 200 {
				errs <- fmt.Errorf("%s: %v HTTP %d %s", otn, err, r.status, r.body)
				return
			}
			var ans prepayAnswer
			_ = json.Unmarshal(r.body, &ans)
			if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mp, ans.PrepayID)); !ok {
				errs <- fmt.Errorf("%s: %s", otn, msg)
				return
			}
			r, err = h.v3Do(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", otn, "r"+otn, 1, int64(i+1)))
			if err != nil || r.status != 200 {
				errs <- fmt.Errorf("%s refund: %v HTTP %d %s", otn, err, r.status, r.body)
				return
			}
			if err := h.verifyAnswer(h.mp, r); err != nil {
				errs <- fmt.Errorf("%s refund answer: %w", otn, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
