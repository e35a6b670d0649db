package proxy_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// gameApp is a mini game added to the test config; the emulator serves it as a mini game.
const gameApp = `
[[app]]
name = "game"
kind = "minigame"
appid = "wx00000000000000d4"
secret = "game-app-secret-5e21"
forward_url = "RECEIVER"
[app.push]
token = "game-push-token"
encoding_aes_key = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
[app.xpay]
offer_id = "1450000004"
app_key = "game-prod-appkey-7b2c"
sandbox_app_key = "game-sandbox-appkey-19fe"
`

const gameAppID = "wx00000000000000d4"

var asGame = []string{"X-Wxgate-App", "game"}

func startGameEnv(t *testing.T) *testEnv {
	t.Helper()
	return startEnv(t, func(s string) string {
		// The receiver's address, as the other apps got it.
		url := regexp.MustCompile(`forward_url = "([^"]+)"`).FindStringSubmatch(s)[1]
		return s + strings.Replace(gameApp, "RECEIVER", url, 1)
	})
}

// gameBody is a /wxa/game/ body for openid with the game's offer_id; extra members are appended.
func gameBody(openid string, env int, extra string) []byte {
	return []byte(fmt.Sprintf(`{"openid":%q,"offer_id":"1450000004","ts":%d,"zone_id":"1","env":%d,"user_ip":"127.0.0.1"%s}`, openid, time.Now().Unix(), env, extra))
}

// TestMiniGameServerAPIs calls every /wxa/game/ API through wxgate: the emulator checks
// sig_method, pay_sig and the user signature as WeChat does, and keeps the coins.
func TestMiniGameServerAPIs(t *testing.T) {
	e := startGameEnv(t)
	openid := e.login("gina", asGame...)
	steps := []struct {
		name, path, extra string
		want              map[string]float64
		errcode           int
	}{
		{"present 50", "/wxa/game/present", `,"amount":50,"bill_no":"gift-0001"`, map[string]float64{"balance": 50}, 0},
		{"present again", "/wxa/game/present", `,"amount":50,"bill_no":"gift-0001"`, nil, 90012},
		{"pay 20", "/wxa/game/pay", `,"amount":20,"bill_no":"pay-0001"`, map[string]float64{"balance": 30, "used_present_amount": 20}, 0},
		{"pay too much", "/wxa/game/pay", `,"amount":31,"bill_no":"pay-0002"`, nil, 90013},
		{"cancel 5", "/wxa/game/cancelpay", `,"amount":5,"bill_no":"back-0001","pay_bill_no":"pay-0001"`, map[string]float64{"balance": 35}, 0},
		{"cancel unknown", "/wxa/game/cancelpay", `,"amount":5,"bill_no":"back-0002","pay_bill_no":"nope-0001"`, nil, 90000},
		{"balance", "/wxa/game/getbalance", ``, map[string]float64{"balance": 35, "present_balance": 30, "sum_cost": 15}, 0},
	}
	for _, s := range steps {
		// The app's own pay_sig, signature and sig_method are replaced by wxgate's.
		a := e.do("POST", s.path+"?sig_method=md5&pay_sig=bad&signature=bad", gameBody(openid, 0, s.extra), asGame...)
		if a.Status != 200 || a.errcode(t) != s.errcode {
			t.Fatalf("%s: %d %s, want errcode %d", s.name, a.Status, a.Body, s.errcode)
		}
		m := a.json(t)
		for k, v := range s.want {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v (%s)", s.name, k, m[k], v, a.Body)
			}
		}
	}
	// The exchange WeChat saw: sig_method=hmac_sha256 and both signatures, recomputed here.
	x, _ := e.emu.LastExchange("/wxa/game/getbalance")
	if !strings.Contains(x.Query, "sig_method=hmac_sha256") || strings.Contains(x.Query, "md5") {
		t.Errorf("WeChat saw %s; want wxgate's sig_method only", x.Query)
	}
	sk, _ := e.emu.SessionKey(gameAppID, openid)
	wantPaySig := signer.NewXpayKey("game-prod-appkey-7b2c").AppendPaySig(nil, "/wxa/game/getbalance", x.Body)
	wantSig := signer.AppendUserSignature(nil, sk, x.Body)
	if !strings.Contains(x.Query, "pay_sig="+string(wantPaySig)) || !strings.Contains(x.Query, "signature="+string(wantSig)) {
		t.Errorf("WeChat saw %s; want pay_sig %s and signature %s", x.Query, wantPaySig, wantSig)
	}
	if b := e.emu.GameBalance(gameAppID, 0, openid, "1"); b.Balance != 35 {
		t.Errorf("emulator balance %+v, want 35", b)
	}
	// Sandbox env signs with the sandbox AppKey.
	if a := e.do("POST", "/wxa/game/present", gameBody(openid, 1, `,"amount":7,"bill_no":"gift-sbx-1"`), asGame...); a.errcode(t) != 0 || a.json(t)["balance"] != 7.0 {
		t.Errorf("sandbox present: %d %s", a.Status, a.Body)
	}
}

// TestMiniGameRefusedByWeChat: a wrong AppKey (90011) or a wrong session key (90010) in wxgate
// makes WeChat refuse, and its answer reaches the app unchanged.
func TestMiniGameRefusedByWeChat(t *testing.T) {
	e := startGameEnv(t)
	openid := e.login("rita", asGame...)
	wrongKey := e.configWith(func(s string) string {
		return strings.Replace(s, "game-prod-appkey-7b2c", "game-prod-appkey-WRONG", 1)
	})
	_, appURL, _ := e.startGateway(wrongKey)
	// The second gateway has its own store: hand it the user's real session key.
	a := e.doURL("POST", appURL+"/wxa/game/getbalance", gameBody(openid, 0, ""), asGame...)
	if a.Status != 409 {
		t.Fatalf("no session stored yet: %d %s", a.Status, a.Body)
	}
	sk, _ := e.emu.SessionKey(gameAppID, openid)
	if a := e.doURL("POST", appURL+proxy.PathSessionKeys, []byte(`{"openid":"`+openid+`","session_key":"`+sk+`"}`), asGame...); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	if a := e.doURL("POST", appURL+"/wxa/game/getbalance", gameBody(openid, 0, ""), asGame...); a.errcode(t) != 90011 {
		t.Errorf("wrong AppKey: %d %s, want errcode 90011", a.Status, a.Body)
	}
	// Right AppKey (the first gateway), wrong session key.
	if a := e.do("POST", proxy.PathSessionKeys, []byte(`{"openid":"`+openid+`","session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}`), asGame...); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	if a := e.do("POST", "/wxa/game/getbalance", gameBody(openid, 0, ""), asGame...); a.errcode(t) != 90010 {
		t.Errorf("wrong session key: %d %s, want errcode 90010", a.Status, a.Body)
	}
}

// TestAppKindRoutes: each app kind is refused the other kind's virtual-payment APIs with a clear
// error, before anything reaches WeChat.
func TestAppKindRoutes(t *testing.T) {
	e := startGameEnv(t)
	openid := e.login("kim")
	e.login("kim", asGame...)
	for _, c := range []struct {
		name, path string
		body       []byte
		headers    []string
	}{
		{"mini program calls /wxa/game/pay", "/wxa/game/pay", gameBody(openid, 0, `,"amount":1,"bill_no":"k-000001"`), nil},
		{"mini game calls /xpay/query_user_balance", "/xpay/query_user_balance", []byte(`{"openid":"` + openid + `","env":0,"user_ip":"1.1.1.1"}`), asGame},
	} {
		before := totalCalls(e)
		a := e.do("POST", c.path, c.body, c.headers...)
		if a.Status != 400 || a.wxgateError(t) != proxy.CodeWrongAppKind || !strings.Contains(string(a.Body), "kind") {
			t.Errorf("%s: %d %s", c.name, a.Status, a.Body)
		}
		if totalCalls(e) != before {
			t.Errorf("%s: the refused call reached WeChat", c.name)
		}
	}
	if m := e.doURL("GET", e.adminURL+"/metrics", nil); !strings.Contains(string(m.Body), `wxgate_errors_total{code="wxgate.wrong_app_kind"} 2`) {
		t.Errorf("metrics do not count the 2 refusals:\n%s", m.Body)
	}
}

// TestMiniGamePaymentParams: the helper's wx.requestMidasPaymentGameItem and
// wx.requestMidasPayment parameters are accepted by the emulated WeChat client, the purchases'
// pay events are verified and forwarded, and bad input gets clear errors.
func TestMiniGamePaymentParams(t *testing.T) {
	e := startGameEnv(t)
	openid := e.login("mia", asGame...)
	// goods is a valid item purchase with one member replaced (null drops it).
	goods := func(member string) string {
		fields := map[string]string{"buyQuantity": "1", "currencyType": `"CNY"`, "zoneId": `"1"`, "productId": `"p"`, "goodsPrice": "1", "outTradeNo": `"x-1"`}
		name, value, _ := strings.Cut(member, ":")
		fields[strings.Trim(name, `"`)] = value
		var parts []string
		for k, v := range fields {
			if v != "null" {
				parts = append(parts, `"`+k+`":`+v)
			}
		}
		return `{"openid":"` + openid + `","mode":"goods","signData":{` + strings.Join(parts, ",") + `}}`
	}
	// An item (requestMidasPaymentGameItem).
	a := e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"openid":"`+openid+`","mode":"goods","signData":{"buyQuantity":2,"env":0,"currencyType":"CNY","zoneId":"1","productId":"sword","goodsPrice":600,"outTradeNo":"item-000001","attach":"lvl=3"}}`), asGame...)
	var item proxy.GameItemParams
	if err := json.Unmarshal(a.Body, &item); err != nil || a.Status != 200 {
		t.Fatalf("goods params: %d %s", a.Status, a.Body)
	}
	if !strings.Contains(item.SignData, `"mode":"goods"`) || !strings.Contains(item.SignData, `"offerId":"1450000004"`) {
		t.Errorf("signData lacks mode or offerId: %s", item.SignData)
	}
	tampered := e.emu.RequestMidasPaymentGameItem(emulator.GameItemPayment{AppID: gameAppID, OpenID: openid,
		SignData: strings.Replace(item.SignData, `"goodsPrice":600`, `"goodsPrice":6`, 1), PaySig: item.PaySig, Signature: item.Signature})
	if tampered.ErrCode == 0 {
		t.Error("the client accepted a signData changed after signing")
	}
	if res := e.emu.RequestMidasPaymentGameItem(emulator.GameItemPayment{AppID: gameAppID, OpenID: openid, SignData: item.SignData, PaySig: item.PaySig, Signature: item.Signature}); res.ErrCode != 0 {
		t.Fatalf("client refused the item parameters: %+v", res)
	}
	ev := e.recv.waitEvents(1, waitTime)[0]
	var data struct{ MiniGame struct{ Payload string } }
	json.Unmarshal(ev.Data, &data)
	if ev.Type != emulator.EventMiniGameGoodsDeliver || ev.App != "game" || !strings.Contains(data.MiniGame.Payload, `"ProductId":"sword"`) {
		t.Fatalf("item event: %+v %s", ev, ev.Data)
	}
	if a := e.do("POST", "/wxa/game/queryorderinfo", gameBody(openid, 0, `,"out_trade_no":"item-000001","biz_id":2`), asGame...); a.errcode(t) != 0 || a.json(t)["pay_state"] != 2.0 {
		t.Errorf("queryorderinfo: %d %s", a.Status, a.Body)
	}
	// Game coins (requestMidasPayment): no signature, the object completed from the config.
	a = e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"mode":"game","signData":{"buyQuantity":60,"outTradeNo":"coin-000001"}}`), asGame...)
	var coins proxy.MidasPaymentParams
	if err := json.Unmarshal(a.Body, &coins); err != nil || a.Status != 200 {
		t.Fatalf("game params: %d %s", a.Status, a.Body)
	}
	want := proxy.MidasPaymentParams{Mode: "game", OfferID: "1450000004", CurrencyType: "CNY", BuyQuantity: 60, ZoneID: "1", OutTradeNo: "coin-000001"}
	if coins != want {
		t.Errorf("game params %+v, want %+v", coins, want)
	}
	res := e.emu.RequestMidasPayment(emulator.MidasPayment{AppID: gameAppID, OpenID: openid, Mode: coins.Mode, Env: int(coins.Env), OfferID: coins.OfferID,
		CurrencyType: coins.CurrencyType, BuyQuantity: coins.BuyQuantity, ZoneID: coins.ZoneID, OutTradeNo: coins.OutTradeNo})
	if res.ErrCode != 0 {
		t.Fatalf("client refused the coin parameters: %+v", res)
	}
	if ev := e.recv.waitEvents(2, waitTime)[1]; ev.Type != emulator.EventMiniGameCoinDeliver {
		t.Fatalf("coin event: %+v %s", ev, ev.Data)
	}
	if a := e.do("POST", "/wxa/game/getbalance", gameBody(openid, 0, ""), asGame...); a.json(t)["balance"] != 60.0 {
		t.Errorf("balance after buying 60 coins: %s", a.Body)
	}
	// signData's own offerId wins over the config's; an outTradeNo of 32 characters is the longest.
	no32 := strings.Repeat("Az9_-|*@", 4)
	a = e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"mode":"game","signData":{"buyQuantity":1,"outTradeNo":"`+no32+`","offerId":"1450000099"}}`), asGame...)
	if err := json.Unmarshal(a.Body, &coins); err != nil || a.Status != 200 || coins.OfferID != "1450000099" || coins.OutTradeNo != no32 {
		t.Errorf("game params with signData's offerId: %d %s", a.Status, a.Body)
	}
	if a := e.do("POST", proxy.PathXpayPaymentParams, []byte(goods(`"outTradeNo":"`+no32+`"`)), asGame...); a.Status != 200 {
		t.Errorf("goods params with a 32-character outTradeNo: %d %s", a.Status, a.Body)
	}
	for _, c := range []struct {
		name, body, code, msg string
		headers               []string
	}{
		{"mini-program mode on a mini game", `{"openid":"` + openid + `","mode":"short_series_coin","signData":{"buyQuantity":1}}`, proxy.CodeWrongAppKind, "requestMidasPayment", asGame},
		{"unknown mode on a mini game", `{"openid":"` + openid + `","mode":"coins","signData":{"buyQuantity":1}}`, "wxgate.bad_request", "requestMidasPaymentGameItem", asGame},
		{"mini-game mode on a mini program", `{"openid":"x","mode":"goods","signData":{}}`, proxy.CodeWrongAppKind, "mini program", nil},
		{"goods without productId", `{"openid":"` + openid + `","mode":"goods","signData":{"buyQuantity":1,"currencyType":"CNY","zoneId":"1","goodsPrice":1,"outTradeNo":"x-1"}}`, "wxgate.bad_request", "productId", asGame},
		{"goods without openid", `{"mode":"goods","signData":{}}`, "wxgate.missing_openid", "openid", asGame},
		{"goods with another mode in signData", `{"openid":"` + openid + `","mode":"goods","signData":{"mode":"game"}}`, "wxgate.bad_request", "mode", asGame},
		{"game without outTradeNo", `{"mode":"game","signData":{"buyQuantity":1}}`, "wxgate.bad_request", "outTradeNo", asGame},
		{"game with an unknown field", `{"mode":"game","signData":{"buyQuantity":1,"outTradeNo":"x-2","productId":"p"}}`, "wxgate.bad_request", "fields", asGame},
		{"game with env 2", `{"mode":"game","signData":{"buyQuantity":1,"outTradeNo":"x-3","env":2}}`, "wxgate.bad_env", "env", asGame},
		{"goods with buyQuantity 0", goods(`"buyQuantity":0`), "wxgate.bad_request", "buyQuantity", asGame},
		{"goods without currencyType", goods(`"currencyType":null`), "wxgate.bad_request", "currencyType", asGame},
		{"goods in USD", goods(`"currencyType":"USD"`), "wxgate.bad_request", "currencyType", asGame},
		{"goods with an empty zoneId", goods(`"zoneId":""`), "wxgate.bad_request", "zoneId", asGame},
		{"goods priced 0", goods(`"goodsPrice":0`), "wxgate.bad_request", "goodsPrice", asGame},
		{"goods with a 33-character outTradeNo", goods(`"outTradeNo":"` + strings.Repeat("a", 33) + `"`), "wxgate.bad_request", "outTradeNo", asGame},
		{"goods with an outTradeNo starting with _", goods(`"outTradeNo":"_a"`), "wxgate.bad_request", "outTradeNo", asGame},
		{"goods with an outTradeNo holding a space", goods(`"outTradeNo":"a b"`), "wxgate.bad_request", "outTradeNo", asGame},
		{"game with mode goods in signData", `{"mode":"game","signData":{"mode":"goods","buyQuantity":1,"outTradeNo":"x-4"}}`, "wxgate.bad_request", "mode", asGame},
		{"game in USD", `{"mode":"game","signData":{"buyQuantity":1,"outTradeNo":"x-5","currencyType":"USD"}}`, "wxgate.bad_request", "currencyType", asGame},
		{"game with an empty zoneId", `{"mode":"game","signData":{"buyQuantity":1,"outTradeNo":"x-6","zoneId":""}}`, "wxgate.bad_request", "zoneId", asGame},
		{"game with an empty offerId", `{"mode":"game","signData":{"buyQuantity":1,"outTradeNo":"x-8","offerId":""}}`, "wxgate.bad_request", "offerId", asGame},
		{"game with buyQuantity 0", `{"mode":"game","signData":{"buyQuantity":0,"outTradeNo":"x-7"}}`, "wxgate.bad_request", "buyQuantity", asGame},
	} {
		a := e.do("POST", proxy.PathXpayPaymentParams, []byte(c.body), c.headers...)
		if a.Status != 400 || a.wxgateError(t) != c.code || !strings.Contains(string(a.Body), c.msg) {
			t.Errorf("%s: %d %s; want 400 %s mentioning %s", c.name, a.Status, a.Body, c.code, c.msg)
		}
	}
}

// TestMiniGamePayEventSig: a mini-game pay event is forwarded only when its PayEventSig is the
// AppKey's HMAC of Event&Payload for the payload's Env; the push signature alone is not enough.
func TestMiniGamePayEventSig(t *testing.T) {
	e := startGameEnv(t)
	const ev = "minigame_coin_deliver_completed"
	payload := `{"OpenId":"o-1","OutTradeNo":"t-1","Env":0,"CoinInfo":{"ZoneId":"1","ActualPrice":100,"BuyQuantity":10,"OrigPrice":100}}`
	msg := func(event, payload, sig string) []byte {
		mg := map[string]any{"Payload": payload, "IsMock": false}
		if sig != "" {
			mg["PayEventSig"] = sig
		}
		b, _ := json.Marshal(map[string]any{"ToUserName": "gh_g", "FromUserName": "sys", "CreateTime": time.Now().Unix(), "MsgType": "event", "Event": event, "MiniGame": mg})
		return b
	}
	sandboxPayload := strings.Replace(payload, `"Env":0`, `"Env":1`, 1)
	env2Payload := strings.Replace(payload, `"Env":0`, `"Env":2`, 1)
	good := string(signer.NewXpayKey("game-prod-appkey-7b2c").AppendPayEventSig(nil, ev, []byte(payload)))
	sandboxSig := string(signer.NewXpayKey("game-sandbox-appkey-19fe").AppendPayEventSig(nil, ev, []byte(payload)))
	url := e.callbackURL + "/callbacks/message/game"
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"wrong AppKey", msg(ev, payload, string(signer.NewXpayKey("other-key").AppendPayEventSig(nil, ev, []byte(payload))))},
		{"sandbox key for an Env 0 payload", msg(ev, payload, sandboxSig)},
		{"signature of another event", msg("minigame_pay_refund_succ_notify", payload, good)},
		{"payload changed", msg(ev, strings.Replace(payload, `"BuyQuantity":10`, `"BuyQuantity":1000`, 1), good)},
		{"no PayEventSig", msg(ev, payload, "")},
		{"uppercase signature", msg(ev, payload, strings.ToUpper(good))},
		{"production key for an Env 1 payload", msg(ev, sandboxPayload, string(signer.NewXpayKey("game-prod-appkey-7b2c").AppendPayEventSig(nil, ev, []byte(sandboxPayload))))},
	} {
		n, err := e.emu.BuildPushMessage(gameAppID, c.msg, url, emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if acked, status, body, _ := e.emu.Deliver(n); acked || status != 401 || !strings.Contains(string(body), "PayEventSig") {
			t.Errorf("%s: acked %v %d %s; want 401 naming PayEventSig", c.name, acked, status, body)
		}
	}
	// Env 2 names no AppKey: refused, whatever key signed it.
	n, err := e.emu.BuildPushMessage(gameAppID, msg(ev, env2Payload, string(signer.NewXpayKey("game-prod-appkey-7b2c").AppendPayEventSig(nil, ev, []byte(env2Payload)))), url, emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acked, status, body, _ := e.emu.Deliver(n); acked || status != 401 || !strings.Contains(string(body), "no Env 0 or 1") {
		t.Errorf("Env 2: acked %v %d %s; want 401 naming the Env", acked, status, body)
	}
	n, err = e.emu.BuildPushMessage(gameAppID, msg(ev, payload, good), url, emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acked, status, body, _ := e.emu.Deliver(n); !acked || status != 200 {
		t.Fatalf("genuine event: acked %v %d %s", acked, status, body)
	}
	if evs := e.recv.waitEvents(1, waitTime); len(evs) != 1 || evs[0].Type != ev {
		t.Fatalf("events %+v", evs)
	}
	// An Env 1 (sandbox) payload is verified with the sandbox AppKey.
	n, err = e.emu.BuildPushMessage(gameAppID, msg(ev, sandboxPayload, string(signer.NewXpayKey("game-sandbox-appkey-19fe").AppendPayEventSig(nil, ev, []byte(sandboxPayload)))), url, emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acked, status, body, _ := e.emu.Deliver(n); !acked || status != 200 {
		t.Fatalf("genuine sandbox event: acked %v %d %s", acked, status, body)
	}
	if evs := e.recv.waitEvents(2, waitTime); len(evs) != 2 || !strings.Contains(string(evs[1].Data), `\"Env\":1`) {
		t.Fatalf("events %+v", evs)
	}
	// The XML form (the official example writes the Payload JSON as element text): the signature
	// covers the text exactly, whatever wraps it.
	xmlMsg := func(sig string) []byte {
		return []byte(fmt.Sprintf(`<xml><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[%s]]></Event><MiniGame><Payload>%s</Payload><PayEventSig>%s</PayEventSig><IsMock>false</IsMock></MiniGame></xml>`,
			time.Now().Unix(), ev, payload, sig))
	}
	for i, c := range []struct {
		sig    string
		status int
		body   string
	}{{sandboxSig, 401, "PayEventSig mismatch"}, {good, 200, "<ErrCode>"}} {
		n := gameSafePushXML(t, e, xmlMsg(c.sig))
		if _, status, body, _ := e.emu.Deliver(n); status != c.status || !strings.Contains(string(body), c.body) {
			t.Errorf("XML push %d: %d %s, want %d %s", i, status, body, c.status, c.body)
		}
	}
	if evs := e.recv.waitEvents(3, waitTime); len(evs) != 3 || !strings.Contains(string(evs[2].Data), `"PayEventSig":"`+good+`"`) {
		t.Fatalf("XML event: %+v", evs)
	}
	if m := e.doURL("GET", e.adminURL+"/metrics", nil); !strings.Contains(string(m.Body), `wxgate_callbacks_total{source="message_push",outcome="rejected"} 9`) {
		t.Errorf("metrics do not count the 9 refused pushes:\n%s", m.Body)
	}
}

// gameSafePushXML builds a safe-mode XML push for the game app by hand (the emulator pushes JSON).
func gameSafePushXML(t *testing.T, e *testEnv, msg []byte) emulator.Notification {
	t.Helper()
	c, err := signer.NewPushCrypter("ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut")
	if err != nil {
		t.Fatal(err)
	}
	enc := c.Encrypt([16]byte{4, 5, 6}, msg, gameAppID)
	ts, nonce := fmt.Sprint(time.Now().Unix()), fmt.Sprint(time.Now().UnixNano())
	q := url.Values{"signature": {signer.PushSignature("game-push-token", ts, nonce)}, "timestamp": {ts}, "nonce": {nonce},
		"encrypt_type": {"aes"}, "msg_signature": {signer.PushSignature("game-push-token", ts, nonce, enc)}}
	return emulator.Notification{Kind: "message_push", URL: e.callbackURL + "/callbacks/message/game?" + q.Encode(),
		Header: map[string]string{"Content-Type": "text/xml"}, Body: []byte("<xml><ToUserName><![CDATA[gh_game]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")}
}

// TestGameItemParamsPinned pins the helper's mode "goods" output for a known session key to an
// independent HMAC-SHA256: paySig over "requestMidasPaymentGameItem&" + signData with the env's
// AppKey, signature over signData with the session key's text.
func TestGameItemParamsPinned(t *testing.T) {
	e := startGameEnv(t)
	const sk = "9hAb/NEYUlkaMBEsmFgzig=="
	if a := e.do("POST", proxy.PathSessionKeys, []byte(`{"openid":"o-pinned","session_key":"`+sk+`"}`), asGame...); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	signData := `{"mode":"goods","offerId":"123","buyQuantity":1,"env":1,"currencyType":"CNY","platform":"android","zoneId":"1","productId":"testproductId","goodsPrice":10,"outTradeNo":"xxxxxx","attach":"testdata"}`
	quoted, _ := json.Marshal(signData)
	a := e.do("POST", proxy.PathXpayPaymentParams, []byte(`{"openid":"o-pinned","mode":"goods","signData":`+string(quoted)+`}`), asGame...)
	var p proxy.GameItemParams
	if err := json.Unmarshal(a.Body, &p); err != nil || a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	mac := func(key, msg string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(msg))
		return hex.EncodeToString(m.Sum(nil))
	}
	want := proxy.GameItemParams{SignData: signData, PaySig: mac("game-sandbox-appkey-19fe", "requestMidasPaymentGameItem&"+signData), Signature: mac(sk, signData)}
	if p != want {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
}

// TestPayEventMemberCase: a MiniGame member spelled in another case (which Go's encoding/json,
// like many parsers, would read as MiniGame) is verified too, and a duplicate refused; every pay
// event docs/minigame.md lists is refused without a MiniGame object to verify.
func TestPayEventMemberCase(t *testing.T) {
	e := startGameEnv(t)
	url := e.callbackURL + "/callbacks/message/game"
	cases := map[string]string{
		"lowercase member, forged": `{"CreateTime":%d,"MsgType":"event","Event":"minigame_new_event","minigame":{"Payload":"{\"Env\":0}","PayEventSig":"00"}}`,
		"two MiniGame members":     `{"CreateTime":%d,"MsgType":"event","Event":"minigame_coin_deliver_completed","MiniGame":{"Payload":"{\"Env\":0}","PayEventSig":"00"},"MINIGAME":{}}`,
	}
	for _, ev := range []string{"minigame_coin_deliver_completed", "minigame_pay_refund_succ_notify", "minigame_recharge_center_coin_deliver_completed",
		"minigame_h5_goods_deliver_notify", "minigame_game_pay_goods_deliver_notify", "minigame_deliver_h5_pay_products"} {
		cases[ev+", no MiniGame"] = `{"CreateTime":%d,"MsgType":"event","Event":"` + ev + `","OpenId":"o"}`
	}
	for name, msg := range cases {
		n, err := e.emu.BuildPushMessage(gameAppID, []byte(fmt.Sprintf(msg, time.Now().Unix())), url, emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A duplicate top-level member is refused as malformed (400) before any signature is read.
		want := 401
		if name == "two MiniGame members" {
			want = 400
		}
		if acked, status, body, _ := e.emu.Deliver(n); acked || status != want {
			t.Errorf("%s: acked %v %d %s; want %d", name, acked, status, body, want)
		}
	}
}

// TestPayEventNameAsParsed: the Event that decides whether a PayEventSig is required is read as
// the app's parser reads it. A pay event named with an escape ("\u0045vent", which JSON.parse and
// json_decode read as Event), in another case (Go's encoding/json), or after a harmless Event is
// refused without its PayEventSig; before, each reached the app unverified.
func TestPayEventNameAsParsed(t *testing.T) {
	e := startGameEnv(t)
	url := e.callbackURL + "/callbacks/message/game"
	const mg = `"MiniGame":{"Payload":"{\"Env\":0,\"OpenId\":\"o\",\"OutTradeNo\":\"forged\"}"}`
	const forged = `"MiniGame":{"Payload":"{\"Env\":0,\"OpenId\":\"o\",\"OutTradeNo\":\"forged\"}","PayEventSig":"forged"}`
	for _, c := range []struct {
		name, msg string
		status    int
	}{
		{"escaped name", `{"CreateTime":%d,"MsgType":"event","\u0045vent":"minigame_coin_deliver_completed",` + mg + `}`, 401},
		{"lowercase name", `{"CreateTime":%d,"MsgType":"event","event":"minigame_coin_deliver_completed",` + mg + `}`, 401},
		{"after a harmless Event", `{"CreateTime":%d,"MsgType":"event","Event":"user_enter_tempsession","Event":"minigame_coin_deliver_completed"}`, 400},
		{"after a harmless Event, other case", `{"CreateTime":%d,"MsgType":"event","Event":"user_enter_tempsession","EVENT":"minigame_coin_deliver_completed",` + mg + `}`, 400},
		// A MiniGame object with a forged PayEventSig on another event is checked whatever the
		// spelling of its name, as the app's parser finds it.
		{"forged MiniGame on another event", `{"CreateTime":%d,"MsgType":"event","Event":"user_enter_tempsession",` + forged + `}`, 401},
		{"forged MiniGame, lowercase name", `{"CreateTime":%d,"MsgType":"event","Event":"user_enter_tempsession",` + strings.Replace(forged, `"MiniGame"`, `"minigame"`, 1) + `}`, 401},
		{"forged MiniGame, escaped name", `{"CreateTime":%d,"MsgType":"event","Event":"user_enter_tempsession",` + strings.Replace(forged, `"MiniGame"`, `"\u004DiniGame"`, 1) + `}`, 401},
		{"two MiniGame members", `{"CreateTime":%d,"MsgType":"event","Event":"user_enter_tempsession",` + mg + `,` + strings.Replace(forged, `"MiniGame"`, `"miniGame"`, 1) + `}`, 400},
		// A pay event's name in another case or padded still needs its signature.
		{"pay event in upper case", `{"CreateTime":%d,"MsgType":"event","Event":"MINIGAME_COIN_DELIVER_COMPLETED"}`, 401},
		{"pay event padded", `{"CreateTime":%d,"MsgType":"event","Event":" minigame_coin_deliver_completed "}`, 401},
	} {
		n, err := e.emu.BuildPushMessage(gameAppID, []byte(fmt.Sprintf(c.msg, time.Now().Unix())), url, emulator.NotifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if acked, status, body, _ := e.emu.Deliver(n); acked || status != c.status {
			t.Errorf("%s: acked %v %d %s; want %d", c.name, acked, status, body, c.status)
		}
	}
	// A genuine event without a pay event's name still passes, and is the only one the app got.
	n, err := e.emu.BuildPushMessage(gameAppID, []byte(fmt.Sprintf(`{"CreateTime":%d,"MsgType":"event","Event":"user_enter_tempsession","Nested":{"a":1,"a":2}}`, time.Now().Unix())), url, emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acked, status, body, _ := e.emu.Deliver(n); !acked {
		t.Fatalf("a genuine event: %d %s", status, body)
	}
	if evs := e.recv.waitEvents(1, waitTime); len(evs) != 1 || evs[0].Type != "user_enter_tempsession" {
		t.Fatalf("the app got %+v, want only the genuine event", evs)
	}
}
