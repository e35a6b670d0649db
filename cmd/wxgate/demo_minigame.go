package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// demoMiniGameConfig is the demo's mini game, appended to demoConfig: a second [[app]] of kind
// "minigame" that pays through virtual payment 2.0 (docs/minigame.md).
const demoMiniGameConfig = `
[[app]]
name = "game"
kind = "minigame"
appid = "{{game_appid}}"
secret = "{{game_secret}}"
forward_url = "{{receiver}}"
[app.push]
token = "{{game_push_token}}"
encoding_aes_key = "{{game_push_aes_key}}"
[app.xpay]
offer_id = "1450000009"
app_key = "{{game_app_key}}"
sandbox_app_key = "{{game_sandbox_app_key}}"
`

// addMiniGameFields adds fresh values for demoMiniGameConfig's fields.
func addMiniGameFields(fields map[string]string) {
	fields["game_appid"] = "wx" + randomHex(8)
	fields["game_secret"] = randomHex(16)
	fields["game_push_token"] = randomHex(8)
	fields["game_push_aes_key"] = randomAESKey()
	fields["game_app_key"] = randomHex(16)
	fields["game_sandbox_app_key"] = randomHex(16)
}

// setMiniGamePushURLs points the emulator's message push of every mini game at wxgate's
// callback door.
func setMiniGamePushURLs(ec *emulator.Config, pre *policies.Config, callbackURL string) {
	for i := range ec.Apps {
		if i < len(pre.Apps) && pre.Apps[i].IsMiniGame() {
			ec.Apps[i].PushURL = callbackURL + "/callbacks/message/" + pre.Apps[i].Name
		}
	}
}

// appHeader sends every request as one app (X-Wxgate-App).
type appHeader struct {
	app  string
	next http.RoundTripper
}

func (h appHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Wxgate-App", h.app)
	return h.next.RoundTrip(r)
}

// demoMiniGameSteps is the mini game's purchase: a player logs in, buys game coins with
// wx.requestMidasPayment, spends some with /wxa/game/pay and buys an item with
// wx.requestMidasPaymentGameItem; the pay events are verified (PayEventSig) and forwarded.
func demoMiniGameSteps(env *demoEnv, w *walker) []demoStep {
	g := *w
	g.http = &http.Client{Timeout: w.http.Timeout, Transport: appHeader{app: "game", next: http.DefaultTransport}}
	var game policies.App
	for _, a := range env.cfg.Apps {
		if a.IsMiniGame() {
			game = a
		}
	}
	var openid string
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"openid": openid, "offer_id": game.Xpay.OfferID, "ts": time.Now().Unix(), "zone_id": "1", "env": 0, "user_ip": "127.0.0.1"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	return []demoStep{
		{"Mini game (X-Wxgate-App: game, kind = \"minigame\"): log the player in, GET /sns/jscode2session?js_code=test:gamer", func() error {
			var out struct{ OpenID string }
			if err := g.call("GET", "/sns/jscode2session?js_code=test:gamer", nil, &out); err != nil {
				return err
			}
			openid = out.OpenID
			return expect(openid != "", "an openid")
		}},
		{"Player buys 60 game coins: POST /wxgate/xpay/payment-params (mode game), then wx.requestMidasPayment (emulated client)", func() error {
			var p proxy.MidasPaymentParams
			if err := g.call("POST", proxy.PathXpayPaymentParams, map[string]any{"mode": "game", "signData": map[string]any{"buyQuantity": 60, "outTradeNo": "gc" + randomHex(6)}}, &p); err != nil {
				return err
			}
			res := env.emu.RequestMidasPayment(emulator.MidasPayment{AppID: game.AppID, OpenID: openid, Mode: p.Mode, Env: int(p.Env), OfferID: p.OfferID,
				CurrencyType: p.CurrencyType, BuyQuantity: p.BuyQuantity, ZoneID: p.ZoneID, OutTradeNo: p.OutTradeNo})
			fmt.Fprintf(g.out, "   -> wx.requestMidasPayment({mode:%q, offerId, buyQuantity:%d, zoneId, outTradeNo}) in the emulated client\n   <- errCode %d %s\n", p.Mode, p.BuyQuantity, res.ErrCode, res.ErrMsg)
			return expect(res.ErrCode == 0, "the client to accept the purchase, got %d %s", res.ErrCode, res.ErrMsg)
		}},
		{"WeChat pushes minigame_coin_deliver_completed; wxgate checks PayEventSig (AppKey over Event&Payload) and forwards it", func() error {
			return g.expectEvent(env, "minigame_coin_deliver_completed")
		}},
		{"Spend 25 coins: POST /wxa/game/pay (wxgate adds pay_sig, signature and sig_method=hmac_sha256)", func() error {
			var out struct{ Errcode, Balance float64 }
			if err := g.call("POST", "/wxa/game/pay", body(map[string]any{"amount": 25, "bill_no": "gp" + randomHex(6)}), &out); err != nil {
				return err
			}
			return expect(out.Errcode == 0 && out.Balance == 35, "balance 35, got errcode %v balance %v", out.Errcode, out.Balance)
		}},
		{"Player buys a sword for 600 fen: payment-params (mode goods) + wx.requestMidasPaymentGameItem (emulated client)", func() error {
			var p proxy.GameItemParams
			sd := map[string]any{"buyQuantity": 1, "env": 0, "currencyType": "CNY", "zoneId": "1", "productId": "sword", "goodsPrice": 600, "outTradeNo": "gi" + randomHex(6)}
			if err := g.call("POST", proxy.PathXpayPaymentParams, map[string]any{"openid": openid, "mode": "goods", "signData": sd}, &p); err != nil {
				return err
			}
			res := env.emu.RequestMidasPaymentGameItem(emulator.GameItemPayment{AppID: game.AppID, OpenID: openid, SignData: p.SignData, PaySig: p.PaySig, Signature: p.Signature})
			fmt.Fprintf(g.out, "   -> wx.requestMidasPaymentGameItem({signData, paySig, signature}) in the emulated client\n   <- errCode %d %s\n", res.ErrCode, res.ErrMsg)
			if res.ErrCode != 0 {
				return fmt.Errorf("the client refused the item purchase: %d %s", res.ErrCode, res.ErrMsg)
			}
			return g.expectEvent(env, "minigame_game_pay_goods_deliver_notify")
		}},
	}
}
