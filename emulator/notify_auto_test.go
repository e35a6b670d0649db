package emulator

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// expectAcked waits for n finished deliveries and checks that each was acknowledged at the
// first attempt.
func expectAcked(t *testing.T, h *mchHarness, n int) []Delivery {
	t.Helper()
	ds, err := h.emu.WaitDeliveries(n, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != n {
		t.Fatalf("%d deliveries, want %d", len(ds), n)
	}
	for _, d := range ds {
		if !d.Acked || d.Attempts != 1 {
			t.Errorf("delivery to %s: acked %v after %d attempts (%s)", d.Notification.URL, d.Acked, d.Attempts, d.LastError)
		}
	}
	return ds
}

// TestAutoV3Notifications: paying an APIv3 order (client payment or PayOrder) sends
// TRANSACTION.SUCCESS with the transaction as the query answers it; a refund sends
// REFUND.SUCCESS right after it is accepted, to its own notify_url or else the order's; a
// repeated refund request sends nothing.
func TestAutoV3Notifications(t *testing.T) {
	h, r := newNotifyHarness(t, 0.00001)
	door := r.base + "/v3/" + mchIDK
	place := func(outTradeNo string, total int64) string {
		t.Helper()
		body := strings.Replace(jsapiBody(h.mk, outTradeNo, total), notifyOK, door, 1)
		a := h.v3(h.mk, "POST", "/v3/pay/transactions/jsapi", []byte(body))
		if a.status != fasthttp.StatusOK {
			t.Fatalf("jsapi: HTTP %d %s", a.status, a.body)
		}
		return a.obj(t).str("prepay_id")
	}
	if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mk, place("auto_v3_1", 100))); !ok {
		t.Fatal(msg)
	}
	got := r.wait(1)[0]
	query := h.v3(h.mk, "GET", "/v3/pay/transactions/out-trade-no/auto_v3_1?mchid="+mchIDK, nil)
	if got.err != nil || string(got.plain) != string(query.body) || !strings.Contains(string(got.body), `"event_type":"TRANSACTION.SUCCESS","summary":"支付成功"`) {
		t.Fatalf("payment notification: %v %s\nplaintext %s\nquery     %s", got.err, got.body, got.plain, query.body)
	}
	place("auto_v3_2", 50)
	if err := h.emu.PayOrder(mchIDK, "auto_v3_2"); err != nil {
		t.Fatal(err)
	}
	if got := r.wait(2)[1]; got.err != nil || !strings.Contains(string(got.plain), `"out_trade_no":"auto_v3_2"`) || !strings.Contains(string(got.plain), `"trade_state":"SUCCESS"`) {
		t.Fatalf("PayOrder notification: %v %s", got.err, got.plain)
	}
	expectAcked(t, h, 2)

	// A partial refund with its own notify_url, then the rest without one.
	refund := func(outRefundNo string, amount int64, notifyURL string) v3Resp {
		t.Helper()
		var req map[string]any
		_ = json.Unmarshal(refundBody("out_trade_no", "auto_v3_1", outRefundNo, amount, 100), &req)
		if notifyURL != "" {
			req["notify_url"] = notifyURL
		}
		b, _ := json.Marshal(req)
		a := h.v3(h.mk, "POST", "/v3/refund/domestic/refunds", b)
		if a.status != fasthttp.StatusOK {
			t.Fatalf("refund: HTTP %d %s", a.status, a.body)
		}
		return a
	}
	ans := refund("auto_r_1", 40, door+"/refunds")
	if ans.obj(t).str("status") != "PROCESSING" {
		t.Errorf("refund answer %s", ans.body)
	}
	got = r.wait(3)[2]
	var res struct {
		MchID               string `json:"mchid"`
		OutTradeNo          string `json:"out_trade_no"`
		TransactionID       string `json:"transaction_id"`
		OutRefundNo         string `json:"out_refund_no"`
		RefundID            string `json:"refund_id"`
		RefundStatus        string `json:"refund_status"`
		SuccessTime         string `json:"success_time"`
		UserReceivedAccount string `json:"user_received_account"`
		Amount              struct {
			Total       int64 `json:"total"`
			Refund      int64 `json:"refund"`
			PayerTotal  int64 `json:"payer_total"`
			PayerRefund int64 `json:"payer_refund"`
		} `json:"amount"`
	}
	if got.err != nil || json.Unmarshal(got.plain, &res) != nil {
		t.Fatalf("refund notification: %v %s", got.err, got.plain)
	}
	o, _ := h.emu.Order(mchIDK, "auto_v3_1")
	if got.path != "/v3/"+mchIDK+"/refunds" || !strings.Contains(string(got.body), `"event_type":"REFUND.SUCCESS"`) ||
		res.MchID != mchIDK || res.OutTradeNo != "auto_v3_1" || res.TransactionID != o.TransactionID || res.OutRefundNo != "auto_r_1" ||
		res.RefundID != ans.obj(t).str("refund_id") || res.RefundStatus != "SUCCESS" || res.SuccessTime != "2024-05-01T10:00:00+08:00" ||
		res.UserReceivedAccount == "" || res.Amount.Total != 100 || res.Amount.Refund != 40 || res.Amount.PayerTotal != 100 || res.Amount.PayerRefund != 40 {
		t.Fatalf("refund notification to %s: %s", got.path, got.plain)
	}
	refund("auto_r_1", 40, door+"/refunds") // repeated: already notified
	if n := len(h.emu.Deliveries()); n != 3 {
		t.Fatalf("%d deliveries after a repeated refund request, want 3", n)
	}
	refund("auto_r_2", 60, "")
	if got := r.wait(4)[3]; got.err != nil || got.path != "/v3/"+mchIDK || !strings.Contains(string(got.plain), `"out_refund_no":"auto_r_2"`) {
		t.Fatalf("refund notification to the order's notify_url: %v %s %s", got.err, got.path, got.plain)
	}
	if o, _ := h.emu.Order(mchIDK, "auto_v3_1"); o.TradeState != "REFUND" {
		t.Errorf("order after full refunds: %+v", o)
	}
	expectAcked(t, h, 4)
}

// TestNotifyURLSchemes: without AllowHTTPNotifyURL, APIv3 orders and refunds need https.
func TestNotifyURLSchemes(t *testing.T) {
	h := newMchHarness(t)
	body := strings.Replace(jsapiBody(h.mk, "http_order", 100), notifyOK, "http://example.com/notify", 1)
	expectV3Error(t, h.v3(h.mk, "POST", "/v3/pay/transactions/jsapi", []byte(body)), 400, "PARAM_ERROR")
	h.pay3(h.mk, "https_order", 100)
	b := []byte(`{"out_trade_no":"https_order","out_refund_no":"http_r","notify_url":"http://example.com/r","amount":{"refund":1,"total":100,"currency":"CNY"}}`)
	expectV3Error(t, h.v3(h.mk, "POST", "/v3/refund/domestic/refunds", b), 400, "PARAM_ERROR")
}

// TestAutoV2Notifications: paying an APIv2 order sends the pay notification signed with the
// order's sign type; a refund with a notify_url sends the refund notification, one without
// sends nothing.
func TestAutoV2Notifications(t *testing.T) {
	h, r := newNotifyHarness(t, 0.00001)
	door := r.base + "/v2/" + mchIDP
	order := func(outTradeNo, signType string) string {
		t.Helper()
		params := unifiedOrderParams(outTradeNo, "100")
		for i := range params {
			if params[i].Key == "notify_url" {
				params[i].Value = door
			}
		}
		d := h.v2(h.mp, "/pay/unifiedorder", signType, params)
		expectV2(t, d, "")
		return d.get("prepay_id")
	}
	if msg, ok := h.emu.RequestPaymentClient(h.v2Payment(h.mp, signer.V2SignHMACSHA256, order("auto_v2_1", signer.V2SignHMACSHA256))); !ok {
		t.Fatal(msg)
	}
	got := r.wait(1)[0]
	d := v2Doc{params: got.params}
	o, _ := h.emu.Order(mchIDP, "auto_v2_1")
	if got.err != nil || d.get("sign_type") != signer.V2SignHMACSHA256 || len(d.get("sign")) != 64 || d.get("result_code") != "SUCCESS" ||
		d.get("total_fee") != "100" || d.get("cash_fee") != "100" || d.get("transaction_id") != o.TransactionID || d.get("out_trade_no") != "auto_v2_1" ||
		d.get("openid") != o.OpenID || d.get("attach") != "x<y>&z" || d.get("trade_type") != "JSAPI" || d.get("time_end") != "20240501100000" {
		t.Fatalf("pay notification: %v %s", got.err, got.body)
	}
	order("auto_v2_2", "")
	if err := h.emu.PayOrder(mchIDP, "auto_v2_2"); err != nil {
		t.Fatal(err)
	}
	got = r.wait(2)[1]
	if d := (v2Doc{params: got.params}); got.err != nil || d.get("sign_type") != "" || len(d.get("sign")) != 32 || d.get("out_trade_no") != "auto_v2_2" {
		t.Fatalf("MD5 pay notification: %v %s", got.err, got.body)
	}
	refund := func(outRefundNo, notifyURL string) {
		t.Helper()
		params := []signer.Param{p("out_trade_no", "auto_v2_1"), p("out_refund_no", outRefundNo), p("total_fee", "100"), p("refund_fee", "30")}
		if notifyURL != "" {
			params = append(params, p("notify_url", notifyURL))
		}
		expectV2(t, h.v2(h.mp, "/secapi/pay/refund", "", params, v2Client(h.tlsClient, h.tlsBase)), "")
	}
	refund("auto_v2_r1", door)
	got = r.wait(3)[2]
	d = v2Doc{params: got.params}
	if got.err != nil || d.get("sign") != "" || d.get("out_refund_no") != "auto_v2_r1" || d.get("refund_status") != "SUCCESS" || d.get("refund_fee") != "30" ||
		d.get("total_fee") != "100" || d.get("transaction_id") != o.TransactionID || d.get("success_time") != "2024-05-01 10:00:00" || d.get("refund_id") == "" {
		t.Fatalf("refund notification: %v %s %v", got.err, got.body, got.params)
	}
	refund("auto_v2_r2", "")
	refund("auto_v2_r1", door) // repeated
	expectAcked(t, h, 3)
	if n := len(h.emu.Deliveries()); n != 3 {
		t.Fatalf("%d deliveries, want 3", n)
	}
}

// xpayEvent is a pushed xpay event as a mini-program backend reads it.
type xpayEvent struct {
	ToUserName, FromUserName, MsgType, Event, OpenId, OutTradeNo string
	CreateTime                                                   int64
	Env                                                          int
	WeChatPayInfo                                                struct {
		MchOrderNo, TransactionId string
		PaidTime                  int64
	}
	GoodsInfo struct {
		ProductId           string
		Quantity, OrigPrice int64
		ActualPrice         int64
		Attach              string
	}
	CoinInfo struct {
		Quantity, OrigPrice, ActualPrice int64
		Attach                           string
	}
	WxRefundId, MchRefundId, WxOrderId, MchOrderId, RetMsg, WxpayRefundTransactionId string
	RefundFee, RefundStartTimestamp, RefundSuccTimestamp                             int64
	RetCode, RetryTimes                                                              int
}

// TestAutoXpayPushes: client payments and refund_order push their xpay events to the app's
// PushURL, in the app's format and mode.
func TestAutoXpayPushes(t *testing.T) {
	h, r := newNotifyHarness(t, 0.00001)
	alice, _ := h.login(appA, "alice")
	gh := h.emu.apps[appA.AppID].push.originalID
	event := func(i int) xpayEvent {
		t.Helper()
		got := r.wait(i + 1)[i]
		var ev xpayEvent
		if got.err != nil || got.path != "/push/"+appA.AppID || json.Unmarshal(got.plain, &ev) != nil {
			t.Fatalf("push %d: %v %s %s", i, got.err, got.path, got.plain)
		}
		if ev.ToUserName != gh || ev.FromUserName != pushSender || ev.MsgType != "event" || ev.CreateTime != startTime.Unix() || got.query.Get("openid") != alice {
			t.Errorf("push %d head: %s (query %v)", i, got.plain, got.query)
		}
		return ev
	}

	h.pay(appA, alice, ModeShortSeriesGoods, goodsSignData(0, "auto-goods-01", 300, 2))
	ev := event(0)
	o := h.xpay("/xpay/query_order", fmt.Sprintf(`{"env":0,"openid":%q,"order_id":"auto-goods-01"}`, alice)).sub("order")
	if ev.Event != EventGoodsDeliver || ev.OpenId != alice || ev.OutTradeNo != "auto-goods-01" || ev.Env != 0 ||
		ev.WeChatPayInfo.TransactionId != o.str("wxpay_order_id") || ev.WeChatPayInfo.MchOrderNo != o.str("channel_order_id") || ev.WeChatPayInfo.PaidTime != startTime.Unix() ||
		ev.GoodsInfo.ProductId != "sku-1" || ev.GoodsInfo.Quantity != 2 || ev.GoodsInfo.OrigPrice != 600 || ev.GoodsInfo.ActualPrice != 600 || ev.GoodsInfo.Attach != "a" {
		t.Errorf("goods event %+v", ev)
	}

	h.pay(appA, alice, ModeShortSeriesCoin, coinSignData(1, "auto-coin-01", 5))
	if ev := event(1); ev.Event != EventCoinPay || ev.OpenId != alice || ev.OutTradeNo != "auto-coin-01" || ev.Env != 1 ||
		ev.CoinInfo.Quantity != 5 || ev.CoinInfo.OrigPrice != 50 || ev.CoinInfo.ActualPrice != 50 || ev.WeChatPayInfo.TransactionId == "" {
		t.Errorf("coin event %+v", ev)
	}

	body := fmt.Sprintf(`{"openid":%q,"order_id":"auto-goods-01","refund_order_id":"auto-refund-01","left_fee":600,"refund_fee":200,"biz_meta":"","refund_reason":"3","req_from":"2","env":0}`, alice)
	ans := h.xpay("/xpay/refund_order", body)
	expectErr(t, ans, 0)
	if ev := event(2); ev.Event != EventXpayRefund || ev.OpenId != alice || ev.MchRefundId != "auto-refund-01" || ev.WxRefundId != ans.str("refund_wx_order_id") ||
		ev.MchOrderId != "auto-goods-01" || ev.WxOrderId != o.str("wx_order_id") || ev.RefundFee != 200 || ev.RetCode != 0 ||
		ev.RefundSuccTimestamp != startTime.Unix() || ev.WxpayRefundTransactionId == "" {
		t.Errorf("refund event %+v", ev)
	}
	expectErr(t, h.xpay("/xpay/refund_order", body), 0) // a retry: no second push
	expectAcked(t, h, 3)
	if n := len(h.emu.Deliveries()); n != 3 {
		t.Fatalf("%d deliveries, want 3", n)
	}

	// appX pushes XML in compat mode: the event's fields in the clear and encrypted.
	bob, _ := h.login(appX, "bob")
	signData := strings.Replace(goodsSignData(0, "auto-goods-x1", 100, 1), appA.OfferID, appX.OfferID, 1)
	h.pay(appX, bob, ModeShortSeriesGoods, signData)
	got := r.wait(4)[3]
	var xev struct {
		XMLName xml.Name `xml:"xml"`
		xpayEvent
	}
	if got.err != nil || xml.Unmarshal(got.plain, &xev) != nil {
		t.Fatalf("XML push: %v %s", got.err, got.plain)
	}
	if xev.ToUserName != "gh_97417a04a28d" || xev.Event != EventGoodsDeliver || xev.OpenId != bob || xev.GoodsInfo.ProductId != "sku-1" || xev.WeChatPayInfo.TransactionId == "" ||
		!strings.Contains(string(got.plain), "<OpenId><![CDATA["+bob+"]]></OpenId>") || !strings.Contains(string(got.plain), "<Quantity>1</Quantity>") ||
		!strings.HasPrefix(string(got.body), strings.TrimSuffix(string(got.plain), "</xml>")+"<Encrypt>") {
		t.Errorf("XML event %s\nbody %s", got.plain, got.body)
	}
	expectAcked(t, h, 4)
}

// TestNoPushWithoutURL: an app without a PushURL pushes nothing.
func TestNoPushWithoutURL(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	h.pay(appA, alice, ModeShortSeriesCoin, coinSignData(0, "nopush-coin-1", 1))
	if ds := h.emu.Deliveries(); len(ds) != 0 {
		t.Fatalf("deliveries %+v", ds)
	}
}
