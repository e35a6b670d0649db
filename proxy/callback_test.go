package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// waitTime bounds every wait for asynchronous callbacks (a failure, not a pace).
const waitTime = 20 * time.Second

// payJSAPI places a v3 order whose notify_url is wxgate's callback door for merchant name, and
// pays it in the emulator.
func (e *testEnv) payJSAPI(t *testing.T, name, no string, total int) {
	t.Helper()
	m, _ := e.cfg.Merchant(name)
	body := strings.Replace(string(jsapiBody(m.AppID, m.MchID, no, total)), "https://127.0.0.1:1/notify", e.callbackURL+"/callbacks/wechatpay/"+name, 1)
	if a := e.do("POST", "/v3/pay/transactions/jsapi", []byte(body), proxy.HeaderMerchant, name); a.Status != 200 {
		t.Fatalf("jsapi: %d %s", a.Status, a.Body)
	}
	if err := e.emu.PayOrder(m.MchID, no); err != nil {
		t.Fatal(err)
	}
}

// TestV3CallbackEndToEnd: a paid and a refunded order reach the app as verified, decrypted events,
// for a public-key merchant and a certificates merchant; WeChat is acknowledged each time.
func TestV3CallbackEndToEnd(t *testing.T) {
	e := startEnv(t, nil)
	for i, name := range []string{"pk", "certs"} {
		m, _ := e.cfg.Merchant(name)
		no := "cb-order-" + name
		e.payJSAPI(t, name, no, 500)
		evs := e.recv.waitEvents(2*i+1, waitTime)
		ev := evs[len(evs)-1]
		var data struct {
			OutTradeNo string `json:"out_trade_no"`
			MchID      string `json:"mchid"`
			TradeState string `json:"trade_state"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if ev.Source != event.SourceWeChatPayV3 || ev.Type != "TRANSACTION.SUCCESS" || ev.Merchant != name || ev.App != "shop" && name == "pk" ||
			data.OutTradeNo != no || data.MchID != m.MchID || data.TradeState != "SUCCESS" {
			t.Fatalf("%s payment event: %+v %+v", name, ev, data)
		}
		refund := fmt.Sprintf(`{"out_trade_no":%q,"out_refund_no":"cbr-%s","notify_url":%q,"amount":{"refund":500,"total":500,"currency":"CNY"}}`,
			no, name, e.callbackURL+"/callbacks/wechatpay/"+name)
		if a := e.do("POST", "/v3/refund/domestic/refunds", []byte(refund), proxy.HeaderMerchant, name); a.Status != 200 {
			t.Fatalf("refund: %d %s", a.Status, a.Body)
		}
		e.do("GET", "/v3/refund/domestic/refunds/cbr-"+name, nil, proxy.HeaderMerchant, name) // settles it
		evs = e.recv.waitEvents(2*i+2, waitTime)
		if ev := evs[len(evs)-1]; ev.Type != "REFUND.SUCCESS" || !bytes.Contains(ev.Data, []byte("cbr-"+name)) {
			t.Fatalf("%s refund event: %+v %s", name, ev, ev.Data)
		}
	}
	ds, err := e.emu.WaitDeliveries(4, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !d.Acked || d.Attempts != 1 {
			t.Errorf("WeChat's view of %s: acked %v after %d attempts (%s)", d.Notification.ID, d.Acked, d.Attempts, d.LastError)
		}
	}
	// A notification without WeChat Pay's signature is refused, and both outcomes are counted.
	forged := e.doURL("POST", e.callbackURL+"/callbacks/wechatpay/pk", []byte(`{"id":"forged"}`),
		"Wechatpay-Timestamp", fmt.Sprint(time.Now().Unix()), "Wechatpay-Nonce", "n1", "Wechatpay-Serial", "00", "Wechatpay-Signature", "AAAA")
	if forged.Status != 401 {
		t.Fatalf("forged notification: %d %s", forged.Status, forged.Body)
	}
	metrics := string(e.doURL("GET", e.adminURL+"/metrics", nil).Body)
	for _, want := range []string{
		`wxgate_callbacks_total{source="wechatpay.v3",outcome="forwarded"} 4` + "\n",
		`wxgate_callbacks_total{source="wechatpay.v3",outcome="rejected"} 1` + "\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(metrics, `outcome="duplicate"`) {
		t.Error("metrics count a duplicate callback; there was none")
	}
}

// TestPushCallbackEndToEnd: xpay events pushed in safe mode (JSON) by the emulator when a user
// pays, an XML safe-mode push built by hand, and a plaintext push for an app without an AES key.
func TestPushCallbackEndToEnd(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("pia")
	var p proxy.PaymentParams
	a := e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"openid":"`+openid+`","mode":"short_series_coin","signData":{"buyQuantity":5,"env":0,"currencyType":"CNY","outTradeNo":"push-coin-01"}}`))
	json.Unmarshal(a.Body, &p)
	if res := e.emu.RequestVirtualPayment(emulator.ClientPayment{AppID: e.cfg.Apps[0].AppID, OpenID: openid, Mode: p.Mode, SignData: p.SignData, PaySig: p.PaySig, Signature: p.Signature}); res.ErrCode != 0 {
		t.Fatalf("client payment: %+v", res)
	}
	ev := e.recv.waitEvents(1, waitTime)[0]
	var data struct {
		Event, OpenId, OutTradeNo string
	}
	json.Unmarshal(ev.Data, &data)
	if ev.Source != event.SourceMessagePush || ev.Type != "xpay_coin_pay_notify" || ev.App != "shop" || data.OpenId != openid || data.OutTradeNo != "push-coin-01" {
		t.Fatalf("coin event: %+v %s", ev, ev.Data)
	}
	// XML in safe mode, built as WeChat does, with nested members.
	xmlMsg := `<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>` + fmt.Sprint(time.Now().Unix()) +
		`</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[xpay_goods_deliver_notify]]></Event><OpenId><![CDATA[o1]]></OpenId><GoodsInfo><ProductId><![CDATA[vip]]></ProductId><Quantity>1</Quantity></GoodsInfo></xml>`
	n := safePushXML(t, e, "shop", "wx00000000000000a1", []byte(xmlMsg))
	acked, status, body, err := e.emu.Deliver(n)
	if err != nil || !acked || !bytes.Contains(body, []byte("<ErrCode>")) {
		t.Fatalf("XML push: acked %v %d %s %v", acked, status, body, err)
	}
	ev = e.recv.waitEvents(2, waitTime)[1]
	if ev.Type != "xpay_goods_deliver_notify" || !bytes.Contains(ev.Data, []byte(`"GoodsInfo":{"ProductId":"vip","Quantity":"1"}`)) {
		t.Fatalf("XML event: %+v %s", ev, ev.Data)
	}
	// Plaintext push for the app without an AES key.
	n, err = e.emu.BuildPushMessage("wx00000000000000b2", []byte(`{"ToUserName":"gh_d","FromUserName":"o2","CreateTime":1,"MsgType":"event","Event":"debug_demo"}`),
		e.callbackURL+"/callbacks/message/drama", emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acked, status, body, _ := e.emu.Deliver(n); !acked {
		t.Fatalf("plaintext push: %d %s", status, body)
	}
	if ev = e.recv.waitEvents(3, waitTime)[2]; ev.App != "drama" || ev.Type != "debug_demo" {
		t.Fatalf("plaintext event: %+v", ev)
	}
	// The GET handshake echoes echostr only with a valid signature.
	ts := fmt.Sprint(time.Now().Unix())
	sig := signer.PushSignature("shop-push-token", ts, "n1")
	if a := e.doURL("GET", e.callbackURL+"/callbacks/message/shop?signature="+sig+"&timestamp="+ts+"&nonce=n1&echostr=4375120948345356249", nil); a.Status != 200 || string(a.Body) != "4375120948345356249" {
		t.Fatalf("handshake: %d %s", a.Status, a.Body)
	}
	forged := "0" + sig[1:] // one hex digit changed, whatever the signature starts with
	if sig[0] == '0' {
		forged = "1" + sig[1:]
	}
	if a := e.doURL("GET", e.callbackURL+"/callbacks/message/shop?signature="+forged+"&timestamp="+ts+"&nonce=n1&echostr=1", nil); a.Status != 401 {
		t.Fatalf("bad handshake: %d %s", a.Status, a.Body)
	}
}

// safePushXML builds a safe-mode XML push for app name by hand (the emulator's app format is JSON).
func safePushXML(t *testing.T, e *testEnv, name, appID string, msg []byte) emulator.Notification {
	t.Helper()
	c, err := signer.NewPushCrypter("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if err != nil {
		t.Fatal(err)
	}
	enc := c.Encrypt([16]byte{1, 2, 3}, msg, appID)
	ts, nonce := fmt.Sprint(time.Now().Unix()), fmt.Sprint(time.Now().UnixNano())
	q := url.Values{"signature": {signer.PushSignature("shop-push-token", ts, nonce)}, "timestamp": {ts}, "nonce": {nonce},
		"encrypt_type": {"aes"}, "msg_signature": {signer.PushSignature("shop-push-token", ts, nonce, enc)}}
	return emulator.Notification{Kind: "message_push", URL: e.callbackURL + "/callbacks/message/" + name + "?" + q.Encode(),
		Header: map[string]string{"Content-Type": "text/xml"}, Body: []byte("<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")}
}

// TestV2CallbackEndToEnd: APIv2 payment and refund notifications.
func TestV2CallbackEndToEnd(t *testing.T) {
	e := startEnv(t, nil)
	url := e.callbackURL + "/callbacks/wechatpay-v2/pk"
	pay := []signer.Param{{Key: "appid", Value: "wx00000000000000a1"}, {Key: "mch_id", Value: "1900000001"}, {Key: "result_code", Value: "SUCCESS"},
		{Key: "out_trade_no", Value: "v2cb-1"}, {Key: "transaction_id", Value: "4200000000000001"}, {Key: "total_fee", Value: "101"}, {Key: "nonce_str", Value: "n1"}}
	n, err := e.emu.BuildV2PayNotification("1900000001", pay, url)
	if err != nil {
		t.Fatal(err)
	}
	if acked, status, body, _ := e.emu.Deliver(n); !acked {
		t.Fatalf("v2 pay notify: %d %s", status, body)
	}
	ev := e.recv.waitEvents(1, waitTime)[0]
	if ev.ID != "pay_4200000000000001" || ev.Source != event.SourceWeChatPayV2 || ev.Type != "TRANSACTION.SUCCESS" || !bytes.Contains(ev.Data, []byte(`"out_trade_no":"v2cb-1"`)) || bytes.Contains(ev.Data, []byte(`"sign"`)) {
		t.Fatalf("v2 pay event: %+v %s", ev, ev.Data)
	}
	info := []signer.Param{{Key: "out_trade_no", Value: "v2cb-1"}, {Key: "refund_id", Value: "50000000001"}, {Key: "refund_status", Value: "SUCCESS"}, {Key: "refund_fee", Value: "101"}}
	if n, err = e.emu.BuildV2RefundNotification("1900000001", info, url); err != nil {
		t.Fatal(err)
	}
	if acked, status, body, _ := e.emu.Deliver(n); !acked {
		t.Fatalf("v2 refund notify: %d %s", status, body)
	}
	if ev = e.recv.waitEvents(2, waitTime)[1]; ev.ID != "refund_50000000001_SUCCESS" || ev.Type != "REFUND.SUCCESS" || !bytes.Contains(ev.Data, []byte(`"refund_id":"50000000001"`)) {
		t.Fatalf("v2 refund event: %+v %s", ev, ev.Data)
	}
	// A tampered sign and a missing sign are refused.
	for _, mutate := range []func(string) string{
		func(b string) string { return strings.Replace(b, "101", "999", 1) },
		func(b string) string {
			i := strings.Index(b, "<sign>")
			j := strings.Index(b, "</sign>")
			return b[:i] + b[j+len("</sign>"):]
		},
	} {
		n, _ := e.emu.BuildV2PayNotification("1900000001", append(pay[:0:0], pay...), url)
		n.Body = []byte(mutate(string(n.Body)))
		if acked, _, _, _ := e.emu.Deliver(n); acked {
			t.Fatalf("forged v2 notification acknowledged: %s", n.Body)
		}
	}
	if evs, _, _ := e.recv.snapshot(); len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
}

// TestAppDownThenBack: the app is down while WeChat notifies; WeChat's retries deliver every
// event once the app is back, and none twice.
func TestAppDownThenBack(t *testing.T) {
	e := startEnv(t, nil)
	e.recv.setUp(false)
	const orders = 4
	for i := 0; i < orders; i++ {
		e.payJSAPI(t, "pk", fmt.Sprintf("down-%d", i), 100+i)
	}
	e.recv.waitDownHits(orders, 2, waitTime) // every event failed at least twice
	e.recv.setUp(true)
	ds, err := e.emu.WaitDeliveries(orders, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !d.Acked || d.Attempts < 2 {
			t.Errorf("delivery %s: acked %v after %d attempts", d.Notification.ID, d.Acked, d.Attempts)
		}
	}
	evs, ids, bad := e.recv.snapshot()
	if len(evs) != orders || len(ids) != orders || bad != 0 {
		t.Fatalf("%d events, %d distinct, %d bad; want %d, %d, 0", len(evs), len(ids), bad, orders, orders)
	}
	// WeChat sends an event again (as it may); the app already accepted it: acknowledged, not
	// forwarded twice. An exact replay of the request is refused.
	for _, d := range ds {
		again, err := e.emu.BuildV3Notification("1900000001", "TRANSACTION.SUCCESS", []byte(`{"mchid":"1900000001","appid":"wx00000000000000a1","out_trade_no":"x"}`),
			d.Notification.URL, emulator.NotifyOptions{ID: d.Notification.ID}) // newly signed, same notification id
		if err != nil {
			t.Fatal(err)
		}
		if acked, status, body, _ := e.emu.Deliver(again); !acked {
			t.Errorf("duplicate not acknowledged: %d %s", status, body)
		}
		if acked, _, _, _ := e.emu.Deliver(d.Notification); acked {
			t.Errorf("exact replay of %s acknowledged", d.Notification.ID)
		}
	}
	if _, ids, _ := e.recv.snapshot(); len(ids) != orders {
		t.Fatalf("duplicates reached the app: %v", ids)
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("event %s forwarded %d times", id, n)
		}
	}
}
