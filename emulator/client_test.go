package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// goodsSignData is a short_series_goods signData for appA.
func goodsSignData(env int, outTradeNo string, price, qty int) string {
	return fmt.Sprintf(`{"offerId":%q,"buyQuantity":%d,"env":%d,"currencyType":"CNY","productId":"sku-1","goodsPrice":%d,"outTradeNo":%q,"attach":"a"}`,
		appA.OfferID, qty, env, price, outTradeNo)
}

// coinSignData is a short_series_coin signData for appA.
func coinSignData(env int, outTradeNo string, qty int) string {
	return fmt.Sprintf(`{"offerId":%q,"buyQuantity":%d,"env":%d,"currencyType":"CNY","outTradeNo":%q}`, appA.OfferID, qty, env, outTradeNo)
}

func TestRequestVirtualPaymentErrors(t *testing.T) {
	h := newHarness(t)
	alice, aliceKey := h.login(appA, "alice")
	bob := h.emu.OpenID(appA.AppID, "bob")
	h.pay(appA, alice, ModeShortSeriesCoin, coinSignData(0, "used-trade-no", 1))

	good := goodsSignData(0, "trade-no-0001", 10, 1)
	signed := func(sd string) ClientPayment { return h.clientPayment(appA, alice, ModeShortSeriesGoods, sd) }
	tests := []struct {
		name string
		req  ClientPayment
		want int
	}{
		{"unknown app", func() ClientPayment { p := signed(good); p.AppID = "wxnope"; return p }(), -15001},
		{"unknown mode", func() ClientPayment { p := signed(good); p.Mode = "short_series"; return p }(), -15001},
		{"signData not JSON", signed(`offerId=1`), -15016},
		{"signData array", signed(`[]`), -15016},
		{"buyQuantity as string", signed(strings.Replace(good, `"buyQuantity":1`, `"buyQuantity":"1"`, 1)), -15016},
		{"wrong offerId", signed(strings.Replace(good, appA.OfferID, "999", 1)), -15001},
		{"currency USD", signed(strings.Replace(good, "CNY", "USD", 1)), -15004},
		{"env 2", signed(strings.Replace(good, `"env":0`, `"env":2`, 1)), -15001},
		{"wrong paySig", func() ClientPayment { p := signed(good); p.PaySig = strings.Repeat("0", 64); return p }(), -15006},
		{"upper-case paySig", func() ClientPayment { p := signed(good); p.PaySig = strings.ToUpper(p.PaySig); return p }(), -15006},
		{"paySig with the sandbox key", func() ClientPayment {
			p := signed(good)
			p.PaySig = paySigHex(appA.SandboxAppKey, "requestVirtualPayment", good)
			return p
		}(), -15006},
		{"paySig over server uri", func() ClientPayment {
			p := signed(good)
			p.PaySig = paySigHex(appA.AppKey, "/xpay/requestVirtualPayment", good)
			return p
		}(), -15006},
		{"no session", h.clientPayment(appA, bob, ModeShortSeriesGoods, good), -15007},
		{"wrong signature", func() ClientPayment {
			p := signed(good)
			p.Signature = userSigHex("AAAAAAAAAAAAAAAAAAAAAA==", good)
			return p
		}(), -15005},
		{"signature over other data", func() ClientPayment { p := signed(good); p.Signature = userSigHex(aliceKey, good+" "); return p }(), -15005},
		{"outTradeNo too short", signed(goodsSignData(0, "short", 10, 1)), -15001},
		{"outTradeNo starts with _", signed(goodsSignData(0, "_trade-no-01", 10, 1)), -15001},
		{"outTradeNo bad character", signed(goodsSignData(0, "trade no 01", 10, 1)), -15001},
		{"outTradeNo reused", signed(goodsSignData(0, "used-trade-no", 10, 1)), -15002},
		{"quantity zero", signed(goodsSignData(0, "trade-no-0002", 10, 0)), -15001},
		{"goods without productId", signed(strings.Replace(good, `"productId":"sku-1",`, "", 1)), -15001},
		{"goods without goodsPrice", signed(goodsSignData(0, "trade-no-0003", 0, 1)), -15001},
		{"activity price below 40%", signed(strings.Replace(good, `"goodsPrice":10`, `"goodsPrice":10,"activitySellingPrice":3`, 1)), -15001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.emu.RequestVirtualPayment(tt.req)
			if res.ErrCode != tt.want {
				t.Fatalf("ErrCode = %d (%s), want %d", res.ErrCode, res.ErrMsg, tt.want)
			}
			if !strings.HasPrefix(res.ErrMsg, "requestVirtualPayment:fail ") {
				t.Errorf("ErrMsg = %q", res.ErrMsg)
			}
		})
	}
	// Failed attempts consume nothing: the good request still succeeds, once.
	if res := h.emu.RequestVirtualPayment(signed(good)); res.ErrCode != 0 || res.OrderID != "trade-no-0001" || res.WxOrderID == "" {
		t.Fatalf("good payment: %+v", res)
	}
	if res := h.emu.RequestVirtualPayment(signed(good)); res.ErrCode != -15002 {
		t.Fatalf("replayed payment: %+v, want -15002", res)
	}
}

// TestRequestVirtualPaymentVector uses the official example signData with AppKey "12345" and the
// paySig computed for it in xpay.md §7. Both signatures pass, so the client then rejects the
// example's 6-character outTradeNo.
func TestRequestVirtualPaymentVector(t *testing.T) {
	h := newHarness(t)
	openid, key := h.login(appV, "vector")
	const signData = `{"offerId":"123","buyQuantity":1,"env":0,"currencyType":"CNY","productId":"testproductId","goodsPrice":10,"outTradeNo":"xxxxxx","attach":"testdata"}`
	res := h.emu.RequestVirtualPayment(ClientPayment{
		AppID: appV.AppID, OpenID: openid, Mode: ModeShortSeriesGoods, SignData: signData,
		PaySig:    "0ce2a9fcab3532e9f78dd3beb841806c0c08a24ec26b04c366584ac06d852bb0",
		Signature: userSigHex(key, signData),
	})
	if res.ErrCode != -15001 || !strings.Contains(res.ErrMsg, "outTradeNo") {
		t.Fatalf("result %+v, want -15001 about outTradeNo", res)
	}
}

func TestRequestVirtualPaymentEffects(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	h.pay(appA, alice, ModeShortSeriesCoin, coinSignData(0, "coin-trade-01", 60))
	h.pay(appA, alice, ModeShortSeriesCoin, coinSignData(1, "coin-trade-02", 7))
	if b := h.emu.Balance(appA.AppID, 0, alice); b.Balance != 60 || b.SumSave != 60 {
		t.Errorf("production balance after coin purchase = %+v", b)
	}
	if b := h.emu.Balance(appA.AppID, 1, alice); b.Balance != 7 {
		t.Errorf("sandbox balance after coin purchase = %+v", b)
	}
	res := h.pay(appA, alice, ModeShortSeriesGoods, goodsSignData(1, "goods-trade-01", 25, 2))
	m := h.xpay("/xpay/query_order", fmt.Sprintf(`{"openid":%q,"env":1,"order_id":"goods-trade-01"}`, alice))
	expectErr(t, m, 0)
	o := m.sub("order")
	if o.str("wx_order_id") != res.WxOrderID || o.num("env_type") != 2 || o.num("order_fee") != 50 || o.num("status") != 2 {
		t.Errorf("sandbox order = %v", o)
	}
	expectErr(t, h.xpay("/xpay/query_order", fmt.Sprintf(`{"openid":%q,"env":0,"order_id":"goods-trade-01"}`, alice)), 268490002)
}

func TestRequestVirtualPaymentHTTP(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	p := h.clientPayment(appA, alice, ModeShortSeriesGoods, goodsSignData(0, "http-trade-01", 10, 1))
	body, _ := json.Marshal(map[string]string{
		"appid": p.AppID, "openid": p.OpenID, "mode": p.Mode, "signData": p.SignData, "paySig": p.PaySig, "signature": p.Signature,
	})
	m := h.getJSON("POST", "/_emulator/xpay/request_virtual_payment", body)
	if m.num("errCode") != 0 || m.str("order_id") != "http-trade-01" || m.str("wx_order_id") == "" || m.str("errMsg") != "requestVirtualPayment:ok" {
		t.Fatalf("answer %v", m)
	}
	m = h.getJSON("POST", "/_emulator/xpay/request_virtual_payment", body)
	if m.num("errCode") != -15002 {
		t.Fatalf("replay answer %v, want errCode -15002", m)
	}
	status, b := h.do("POST", "/_emulator/xpay/request_virtual_payment", []byte(`nope`))
	if status != 400 || decode(t, b).num("errCode") != 1001 {
		t.Errorf("bad body: HTTP %d %s", status, b)
	}
	if status, _ := h.do("GET", "/_emulator/xpay/request_virtual_payment", nil); status != 405 {
		t.Errorf("GET: HTTP %d, want 405", status)
	}
}
