package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/proxy"
)

// The demo's steps for pushes the app answers itself (docs/pushreply.md) and for
// service-provider mode (docs/partner.md).

// demoReply is the reply body the demo app answers ev with, nil for a plain acceptance: to an iOS
// refund inquiry it refuses the refund, the item having been delivered.
func demoReply(ev event.Event) []byte {
	if ev.Type != emulator.EventIOSRefundQuery {
		return nil
	}
	var q struct {
		PayOrderID string `json:"pay_order_id"`
	}
	_ = json.Unmarshal(ev.Data, &q)
	b, _ := json.Marshal(struct {
		ResultCode int    `json:"result_code"`
		ResultInfo string `json:"result_info"`
		Evidence   string `json:"evidence"`
	}{1, "delivered", "VIP month delivered on purchase; order " + q.PayOrderID})
	return b
}

// pushReplyAndPartnerSteps are the demo's steps for the two.
func pushReplyAndPartnerSteps(env *demoEnv, w *walker) []demoStep {
	m := env.cfg.Merchants[0]
	subMchID, subAppID := "1900000201", "wx"+randomHex(8)
	partnerOrder := "sp" + randomHex(6)
	var prepayID string
	return []demoStep{
		{"WeChat asks the app about an iOS refund (xpay_subscribe_ios_refund_query_notify, 3 s): the app's reply goes back encrypted", func() error {
			n, err := env.emu.BuildIOSRefundQuery(env.cfg.Apps[0].AppID, emulator.IOSRefundQuery{OpenID: "o-demo", PayOrderID: "vip" + randomHex(4), ProductID: "vip_month", Count: 1, ProvideStatus: 1}, "", emulator.NotifyOptions{})
			if err != nil {
				return err
			}
			start := time.Now()
			acked, status, body, err := env.emu.Deliver(n)
			if err != nil {
				return err
			}
			fmt.Fprintf(w.out, "   -> WeChat pushes the inquiry (safe mode) to wxgate; wxgate forwards it and waits for the app's reply\n")
			fmt.Fprintf(w.out, "   <- %d %s (%s)\n", status, oneLine(body), time.Since(start).Round(10*time.Microsecond))
			reply, err := env.emu.OpenPushAnswer(n, status, body)
			if err != nil {
				return err
			}
			fmt.Fprintf(w.out, "   WeChat verifies MsgSignature and decrypts: %s\n", reply)
			return expect(acked, "WeChat to take the answer")
		}},
		{"Service provider: a sub-merchant's order, POST /v3/pay/partner/transactions/jsapi (sp_mchid signs; sub_mchid, sub_appid in the body)", func() error {
			if err := env.emu.AddSubMerchant(m.MchID, subMchID, subAppID); err != nil {
				return err
			}
			var out struct {
				PrepayID string `json:"prepay_id"`
			}
			body := map[string]any{
				"sp_appid": m.AppID, "sp_mchid": m.MchID, "sub_appid": subAppID, "sub_mchid": subMchID,
				"description": "Coffee", "out_trade_no": partnerOrder, "notify_url": env.callbackURL + "/callbacks/wechatpay/demo",
				"amount": map[string]any{"total": 300, "currency": "CNY"}, "payer": map[string]any{"sub_openid": "o-sub-demo"},
			}
			if err := w.call("POST", "/v3/pay/partner/transactions/jsapi", body, &out); err != nil {
				return err
			}
			prepayID = out.PrepayID
			return expect(prepayID != "", "a prepay_id")
		}},
		{"The user pays in the sub-merchant's mini program: payment params signed over sub_appid", func() error {
			var p proxy.RequestPaymentParams
			if err := w.call("POST", proxy.PathV3PaymentParams, map[string]any{"prepay_id": prepayID, "sub_appid": subAppID}, &p); err != nil {
				return err
			}
			msg, ok := env.emu.RequestPaymentClient(emulator.RequestPayment{AppID: subAppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign})
			fmt.Fprintf(w.out, "   -> wx.requestPayment in the emulated client of %s\n   <- %s\n", subAppID, msg)
			if !ok {
				return expect(false, "the client to accept paySign, got %s", msg)
			}
			var out struct {
				TradeState string `json:"trade_state"`
			}
			if err := w.call("GET", "/v3/pay/partner/transactions/out-trade-no/"+partnerOrder+"?sp_mchid="+m.MchID+"&sub_mchid="+subMchID, nil, &out); err != nil {
				return err
			}
			return expect(out.TradeState == "SUCCESS", "trade_state SUCCESS, got %q", out.TradeState)
		}},
		{"WeChat Pay notifies the provider's notify_url: the partner TRANSACTION.SUCCESS (sp_mchid, sub_mchid), verified by the door of sp_mchid", func() error {
			return w.expectEvent(env, "TRANSACTION.SUCCESS")
		}},
	}
}
