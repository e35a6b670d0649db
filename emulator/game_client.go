package emulator

import (
	"encoding/json"
	"encoding/xml"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// The mini-game client payments (docs/protocol/xpay.md, "Mini-game virtual payment"):
// wx.requestMidasPaymentGameItem (an item, signed like requestVirtualPayment but over
// "requestMidasPaymentGameItem&" + signData) and wx.requestMidasPayment (game coins, unsigned).
// The user always pays; the emulator then pushes minigame_game_pay_goods_deliver_notify or
// minigame_coin_deliver_completed, whose MiniGame.Payload is signed with the AppKey of its Env
// (PayEventSig).

// Mini-game pay events the emulator pushes.
const (
	EventMiniGameGoodsDeliver = "minigame_game_pay_goods_deliver_notify" // 道具直购（游戏内）发货
	EventMiniGameCoinDeliver  = "minigame_coin_deliver_completed"        // 游戏币发货完成
)

// GameItemPayment is what a mini game passes to wx.requestMidasPaymentGameItem, plus who calls it.
type GameItemPayment struct {
	AppID     string `json:"appid"`
	OpenID    string `json:"openid"`
	SignData  string `json:"signData"`  // the JSON text that was signed, exactly
	PaySig    string `json:"paySig"`    // HMAC-SHA256(AppKey for env, "requestMidasPaymentGameItem&" + SignData)
	Signature string `json:"signature"` // HMAC-SHA256(session_key, SignData)
}

// MidasPayment is what a mini game passes to wx.requestMidasPayment (buy game coins), plus who
// calls it.
type MidasPayment struct {
	AppID        string `json:"appid"`
	OpenID       string `json:"openid"`
	Mode         string `json:"mode"` // "game"
	Env          int    `json:"env"`
	OfferID      string `json:"offerId"`
	CurrencyType string `json:"currencyType"`
	Platform     string `json:"platform"`
	BuyQuantity  int64  `json:"buyQuantity"`
	ZoneID       string `json:"zoneId"`
	OutTradeNo   string `json:"outTradeNo"`
}

// GamePaymentResult is what the two calls report: ErrCode 0 on success, otherwise the client
// error code with ErrMsg "<api>:fail ...".
type GamePaymentResult struct {
	ErrCode    int    `json:"errCode"`
	ErrMsg     string `json:"errMsg"`
	OutTradeNo string `json:"outTradeNo,omitempty"`
}

// gameItemSignData is the signData of wx.requestMidasPaymentGameItem.
type gameItemSignData struct {
	Mode         string          `json:"mode"`
	OfferID      string          `json:"offerId"`
	BuyQuantity  int64           `json:"buyQuantity"`
	Env          json.RawMessage `json:"env"`
	CurrencyType string          `json:"currencyType"`
	ZoneID       string          `json:"zoneId"`
	ProductID    string          `json:"productId"`
	GoodsPrice   int64           `json:"goodsPrice"`
	OutTradeNo   string          `json:"outTradeNo"`
	Attach       string          `json:"attach"`
}

func gameFail(api string, err *apiError) GamePaymentResult {
	return GamePaymentResult{ErrCode: err.code, ErrMsg: api + ":fail " + err.msg}
}

// RequestMidasPaymentGameItem does what wx.requestMidasPaymentGameItem does inside WeChat: it
// verifies signData, paySig and the user signature, records the paid item order and pushes
// minigame_game_pay_goods_deliver_notify.
func (e *Emulator) RequestMidasPaymentGameItem(req GameItemPayment) GamePaymentResult {
	const api = "requestMidasPaymentGameItem"
	a := e.apps[req.AppID]
	if a == nil || !a.cfg.MiniGame {
		return gameFail(api, clientParamErr("appid不是开通了虚拟支付的小游戏"))
	}
	sd := []byte(req.SignData)
	var f gameItemSignData
	if !isJSONObject(sd) || json.Unmarshal(sd, &f) != nil {
		return gameFail(api, errClientSignData)
	}
	env, ok := parseEnv(f.Env)
	switch {
	case f.Mode != "goods":
		return gameFail(api, clientParamErr("mode只能是goods"))
	case f.OfferID != a.cfg.OfferID:
		return gameFail(api, clientParamErr("offerId错误"))
	case f.CurrencyType != "CNY":
		return gameFail(api, errClientCurrency)
	case !ok:
		return gameFail(api, clientParamErr("env只能是0或1"))
	}
	if k := a.keys[env]; k == nil || !k.VerifyGameItemPaySig([]byte(req.PaySig), sd) {
		return gameFail(api, errClientPaySig)
	}
	key, ok := e.sessionKey(a, req.OpenID)
	if !ok {
		return gameFail(api, errClientSession)
	}
	if !signer.VerifyUserSignature([]byte(req.Signature), key, sd) {
		return gameFail(api, errClientSignature)
	}
	switch {
	case f.BuyQuantity < 1 || f.BuyQuantity > 1_000_000:
		return gameFail(api, clientParamErr("buyQuantity需要是正整数"))
	case f.ProductID == "" || f.GoodsPrice <= 0:
		return gameFail(api, clientParamErr("道具直购需要productId和goodsPrice"))
	case !validGameOutTradeNo(f.OutTradeNo):
		return gameFail(api, clientParamErr("outTradeNo需要32个字符内[0-9A-Za-z_-|*@]且不能以_开头"))
	}
	if f.ZoneID == "" {
		f.ZoneID = "1" // WeChat's default zone
	}
	now := e.now()
	var ns notices
	defer e.flush(&ns) // after the unlock below
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, used := a.outTradeNos[f.OutTradeNo]; used {
		return gameFail(api, errClientOutTradeNoUsed)
	}
	a.outTradeNos[f.OutTradeNo] = struct{}{}
	o := &gameOrder{openid: req.OpenID, bizID: 2, productID: f.ProductID, paidAt: now.Unix(),
		mchOrderNo: newWxID("mch", now), transactionID: newWxID("4200", now)}
	a.game[env].orders[f.OutTradeNo] = o
	total := f.GoodsPrice * f.BuyQuantity
	ns.add(miniGameNotice(a, env, EventMiniGameGoodsDeliver, &goodsDeliverPayload{
		OpenID: req.OpenID, Env: env, OutTradeNo: f.OutTradeNo,
		GoodsInfo:     miniGameGoods{ProductID: f.ProductID, Quantity: f.BuyQuantity, ZoneID: f.ZoneID, OrigPrice: total, ActualPrice: total, Attach: f.Attach, OrderSource: 1},
		WeChatPayInfo: miniGamePayInfo{MchOrderNo: o.mchOrderNo, TransactionID: o.transactionID},
	}, now))
	return GamePaymentResult{ErrMsg: api + ":ok", OutTradeNo: f.OutTradeNo}
}

// RequestMidasPayment does what wx.requestMidasPayment does inside WeChat: it checks the
// parameters (nothing is signed), credits the coins to the user's account in the zone and pushes
// minigame_coin_deliver_completed.
func (e *Emulator) RequestMidasPayment(req MidasPayment) GamePaymentResult {
	const api = "requestMidasPayment"
	a := e.apps[req.AppID]
	switch {
	case a == nil || !a.cfg.MiniGame:
		return gameFail(api, clientParamErr("appid不是开通了虚拟支付的小游戏"))
	case req.OpenID == "":
		return gameFail(api, clientParamErr("用户未登录"))
	case req.Mode != "game":
		return gameFail(api, clientParamErr("mode只能是game"))
	case req.OfferID != a.cfg.OfferID:
		return gameFail(api, clientParamErr("offerId错误"))
	case req.CurrencyType != "CNY":
		return gameFail(api, errClientCurrency)
	case req.Env != 0 && req.Env != 1:
		return gameFail(api, clientParamErr("env只能是0或1"))
	case req.BuyQuantity < 1 || req.BuyQuantity > 1_000_000:
		return gameFail(api, clientParamErr("buyQuantity需要是正整数"))
	case !validGameOutTradeNo(req.OutTradeNo):
		return gameFail(api, clientParamErr("outTradeNo需要32个字符内[0-9A-Za-z_-|*@]且不能以_开头"))
	}
	zone := req.ZoneID
	if zone == "" {
		zone = "1"
	}
	now := e.now()
	var ns notices
	defer e.flush(&ns)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, used := a.outTradeNos[req.OutTradeNo]; used {
		return gameFail(api, errClientOutTradeNoUsed)
	}
	a.outTradeNos[req.OutTradeNo] = struct{}{}
	st := a.game[req.Env]
	st.wallet(req.OpenID, zone).save(req.BuyQuantity)
	o := &gameOrder{openid: req.OpenID, bizID: 1, paidAt: now.Unix(), mchOrderNo: newWxID("mch", now), transactionID: newWxID("4200", now)}
	st.orders[req.OutTradeNo] = o
	price := req.BuyQuantity * coinPriceFen
	ns.add(miniGameNotice(a, req.Env, EventMiniGameCoinDeliver, &coinDeliverPayload{
		OpenID: req.OpenID, OutTradeNo: req.OutTradeNo, Env: req.Env,
		WeChatPayInfo: miniGamePayInfo{MchOrderNo: o.mchOrderNo, TransactionID: o.transactionID},
		CoinInfo:      miniGameCoins{ZoneID: zone, ActualPrice: price, BuyQuantity: req.BuyQuantity, OrigPrice: price},
	}, now))
	return GamePaymentResult{ErrMsg: api + ":ok", OutTradeNo: req.OutTradeNo}
}

// GameBalance returns a user's game-coin account in a zone of a mini game's env; the zero
// Balance for unknown apps, envs or users.
func (e *Emulator) GameBalance(appID string, env int, openid, zone string) Balance {
	a := e.apps[appID]
	if a == nil || env < 0 || env > 1 {
		return Balance{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return a.game[env].wallets[openid+"\x00"+zone].snapshot()
}

// validGameOutTradeNo reports whether s is 1..32 characters of [0-9A-Za-z_-|*@] not starting with '_'.
func validGameOutTradeNo(s string) bool {
	if !lengthIn(s, 1, 32) || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isURLSafeChar(s[i]) && s[i] != '|' && s[i] != '*' && s[i] != '@' {
			return false
		}
	}
	return true
}

// miniGamePayInfo, miniGameGoods, miniGameCoins and the payloads are the Payload JSON of the
// pushed events, with the official member names.
type miniGamePayInfo struct {
	MchOrderNo    string `json:"MchOrderNo"`
	TransactionID string `json:"TransactionId"`
}

type miniGameGoods struct {
	ProductID   string `json:"ProductId"`
	Quantity    int64  `json:"Quantity"`
	ZoneID      string `json:"ZoneId"`
	OrigPrice   int64  `json:"OrigPrice"`
	ActualPrice int64  `json:"ActualPrice"`
	Attach      string `json:"Attach"`
	OrderSource int    `json:"OrderSource"` // 1 in game
}

type goodsDeliverPayload struct {
	OpenID        string          `json:"OpenId"`
	Env           int             `json:"Env"`
	OutTradeNo    string          `json:"OutTradeNo"`
	GoodsInfo     miniGameGoods   `json:"GoodsInfo"`
	WeChatPayInfo miniGamePayInfo `json:"WeChatPayInfo"`
}

type miniGameCoins struct {
	ZoneID      string `json:"ZoneId"`
	ActualPrice int64  `json:"ActualPrice"`
	BuyQuantity int64  `json:"BuyQuantity"`
	OrigPrice   int64  `json:"OrigPrice"`
}

type coinDeliverPayload struct {
	OpenID        string          `json:"OpenId"`
	OutTradeNo    string          `json:"OutTradeNo"`
	WeChatPayInfo miniGamePayInfo `json:"WeChatPayInfo"`
	Env           int             `json:"Env"`
	CoinInfo      miniGameCoins   `json:"CoinInfo"`
}

// miniGameEvent is a pushed mini-game pay event: the head and the signed MiniGame object.
type miniGameEvent struct {
	XMLName xml.Name `json:"-" xml:"xml"`
	pushEventHead
	MiniGame miniGameBody `json:"MiniGame" xml:"MiniGame"`
}

type miniGameBody struct {
	Payload     cdata `json:"Payload" xml:"Payload"`
	PayEventSig cdata `json:"PayEventSig" xml:"PayEventSig"`
	IsMock      bool  `json:"IsMock" xml:"IsMock"`
}

// miniGameNotice returns the push of a mini-game pay event whose Payload is payload, signed with
// the AppKey of env; nil when the app pushes nothing. Callers hold Emulator.mu.
func miniGameNotice(a *appState, env int, event string, payload any, now time.Time) *notice {
	p, err := marshalV3(payload)
	if err != nil || a.keys[env] == nil {
		return nil // plain structs always encode; a payment in env needed its key
	}
	return pushNotice(a, &miniGameEvent{
		pushEventHead: a.push.head(event, now),
		MiniGame:      miniGameBody{Payload: cdata(p), PayEventSig: cdata(a.keys[env].AppendPayEventSig(nil, event, p))},
	})
}

// serveGameItemPayment answers POST /_emulator/minigame/request_midas_payment_game_item.
func (e *Emulator) serveGameItemPayment(ctx *fasthttp.RequestCtx) {
	var req GameItemPayment
	if !e.readControlJSON(ctx, &req) {
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, e.RequestMidasPaymentGameItem(req))
}

// serveMidasPayment answers POST /_emulator/minigame/request_midas_payment.
func (e *Emulator) serveMidasPayment(ctx *fasthttp.RequestCtx) {
	var req MidasPayment
	if !e.readControlJSON(ctx, &req) {
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, e.RequestMidasPayment(req))
}

// readControlJSON decodes a control request's JSON object body into v, or answers the error.
func (e *Emulator) readControlJSON(ctx *fasthttp.RequestCtx, v any) bool {
	if !ctx.IsPost() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return false
	}
	if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), v) != nil {
		writeControlError(ctx, fasthttp.StatusBadRequest, "the body must be a JSON object of the call's parameters")
		return false
	}
	return true
}
