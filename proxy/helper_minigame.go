package proxy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/policies"
)

// Payment-params modes of a mini game ([[app]] kind = "minigame") on POST
// /wxgate/xpay/payment-params.
const (
	// MiniGameModeGoods asks for wx.requestMidasPaymentGameItem parameters (道具直购): signData
	// with paySig over "requestMidasPaymentGameItem&" + signData and the user signature.
	MiniGameModeGoods = "goods"
	// MiniGameModeGame asks for wx.requestMidasPayment parameters (游戏币充值), which WeChat does
	// not sign: the object is checked and completed (offerId, currencyType, env, zoneId).
	MiniGameModeGame = "game"
)

// GameItemParams is the answer for mode "goods": the fields to hand to
// wx.requestMidasPaymentGameItem as they are.
type GameItemParams struct {
	SignData  string `json:"signData"`
	PaySig    string `json:"paySig"`
	Signature string `json:"signature"`
}

// MidasPaymentParams is the answer for mode "game": the object to hand to
// wx.requestMidasPayment as it is.
type MidasPaymentParams struct {
	Mode         string `json:"mode"`
	Env          int64  `json:"env"`
	OfferID      string `json:"offerId"`
	CurrencyType string `json:"currencyType"`
	Platform     string `json:"platform,omitempty"`
	BuyQuantity  int64  `json:"buyQuantity"`
	ZoneID       string `json:"zoneId"`
	OutTradeNo   string `json:"outTradeNo"`
}

// isMiniGameMode reports whether mode is one of the mini-game payment-params modes.
func isMiniGameMode(mode string) bool { return mode == MiniGameModeGoods || mode == MiniGameModeGame }

// serveMiniGamePaymentParams answers POST /wxgate/xpay/payment-params for a mini game, or for a
// mini-game mode asked of a mini program (refused).
func (g *generation) serveMiniGamePaymentParams(ctx *fasthttp.RequestCtx, a *appState, in *paymentParamsRequest) {
	fail := func(status int, code, msg string) { g.fail(ctx, policies.RouteXpay, newError(status, code, msg)) }
	switch {
	case !a.minigame:
		fail(fasthttp.StatusBadRequest, CodeWrongAppKind, fmt.Sprintf(`mode %q is for mini games, but app %q is a mini program: use "short_series_goods" or "short_series_coin", or set kind = "minigame" on the [[app]]`, truncate([]byte(in.Mode), 32), a.name))
	case in.Mode == MiniGameModeGoods:
		g.serveGameItemParams(ctx, a, in)
	case in.Mode == MiniGameModeGame:
		g.serveMidasPaymentParams(ctx, a, in)
	case strings.HasPrefix(in.Mode, "short_series_"):
		fail(fasthttp.StatusBadRequest, CodeWrongAppKind, fmt.Sprintf(`mode %q is for mini programs (wx.requestVirtualPayment), but app %q has kind = "minigame": use "goods" (wx.requestMidasPaymentGameItem) or "game" (wx.requestMidasPayment)`, in.Mode, a.name))
	default:
		fail(fasthttp.StatusBadRequest, CodeBadRequest, fmt.Sprintf(`app %q is a mini game: "mode" must be "goods" (wx.requestMidasPaymentGameItem, buy an item) or "game" (wx.requestMidasPayment, buy game coins)`, a.name))
	}
}

// gameItemFields are the signData members wxgate checks before signing for
// wx.requestMidasPaymentGameItem; the signed text keeps every member as written.
type gameItemFields struct {
	Mode         string          `json:"mode"`
	BuyQuantity  json.RawMessage `json:"buyQuantity"`
	Env          json.RawMessage `json:"env"`
	CurrencyType *string         `json:"currencyType"`
	ZoneID       *string         `json:"zoneId"`
	ProductID    string          `json:"productId"`
	GoodsPrice   json.RawMessage `json:"goodsPrice"`
	OutTradeNo   string          `json:"outTradeNo"`
}

// serveGameItemParams signs the parameters of wx.requestMidasPaymentGameItem: signData (with
// mode "goods" and the app's offerId added to an object that lacks them), paySig with the AppKey
// of signData's env over "requestMidasPaymentGameItem&" + signData, and the user signature with
// the openid's session_key over signData.
func (g *generation) serveGameItemParams(ctx *fasthttp.RequestCtx, a *appState, in *paymentParamsRequest) {
	fail := func(status int, code, msg string) { g.fail(ctx, policies.RouteXpay, newError(status, code, msg)) }
	if in.OpenID == "" {
		fail(fasthttp.StatusBadRequest, CodeMissingOpenID, `"openid" is required: its session_key makes the signature`)
		return
	}
	raw, err := withMember(in.SignData, "mode", MiniGameModeGoods)
	if err != nil {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	signData, err := buildSignData(raw, a.offerID)
	if err != nil {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	var f gameItemFields
	if err := json.Unmarshal(signData, &f); err != nil {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, `"signData" does not match wx.requestMidasPaymentGameItem's fields: `+err.Error())
		return
	}
	if msg := f.check(); msg != "" {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	env := int64(0)
	if f.Env != nil {
		var ok bool
		if env, ok = jsonscan.SmallInt(f.Env); !ok {
			fail(fasthttp.StatusBadRequest, CodeBadEnv, `signData "env" must be the number 0 (production) or 1 (sandbox)`)
			return
		}
	}
	key, aerr := a.xpayKey(env)
	if aerr != nil {
		g.fail(ctx, policies.RouteXpay, aerr)
		return
	}
	var keyBuf [64]byte
	sk, aerr := g.helperSessionKey(keyBuf[:0], a, in.OpenID)
	if aerr != nil {
		g.fail(ctx, policies.RouteXpay, aerr)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, GameItemParams{
		SignData:  string(signData),
		PaySig:    string(key.AppendGameItemPaySig(nil, signData)),
		Signature: string(signUser(nil, sk, signData)),
	})
	g.observe(ctx, policies.RouteXpay, fasthttp.StatusOK)
}

// check returns what is wrong with an item purchase's signData, or "".
func (f *gameItemFields) check() string {
	switch {
	case f.Mode != MiniGameModeGoods:
		return fmt.Sprintf(`signData "mode" must be "goods" for wx.requestMidasPaymentGameItem, got %q`, truncate([]byte(f.Mode), 32))
	case !positiveInt(f.BuyQuantity):
		return `signData "buyQuantity" must be a positive whole number`
	case f.CurrencyType == nil || *f.CurrencyType != "CNY":
		return `signData "currencyType" must be "CNY", the only currency WeChat accepts`
	case f.ZoneID != nil && *f.ZoneID == "":
		return `signData "zoneId" must not be empty: the zone id from the MP console (a string, such as "1"), or leave it out`
	case f.ProductID == "":
		return `signData "productId" is required: the item id configured in the MP console`
	case !positiveInt(f.GoodsPrice):
		return `signData "goodsPrice" must be the item's price in fen, a positive whole number`
	case !validMidasOutTradeNo(f.OutTradeNo):
		return `signData "outTradeNo" must be 1 to 32 characters of 0-9 A-Z a-z _ - | * @, not starting with "_"`
	}
	return ""
}

// midasPaymentIn is the signData of mode "game": wx.requestMidasPayment's fields.
type midasPaymentIn struct {
	Mode         *string         `json:"mode"`
	Env          json.RawMessage `json:"env"`
	OfferID      *string         `json:"offerId"`
	CurrencyType *string         `json:"currencyType"`
	Platform     string          `json:"platform"`
	BuyQuantity  json.RawMessage `json:"buyQuantity"`
	ZoneID       *string         `json:"zoneId"`
	OutTradeNo   string          `json:"outTradeNo"`
}

// serveMidasPaymentParams checks and completes the object of wx.requestMidasPayment (game-coin
// purchase): WeChat signs nothing there, so no session_key is needed; offerId comes from the
// config, currencyType defaults to "CNY", env to 0 and zoneId to "1", as WeChat's own defaults.
func (g *generation) serveMidasPaymentParams(ctx *fasthttp.RequestCtx, a *appState, in *paymentParamsRequest) {
	fail := func(msg string) {
		g.fail(ctx, policies.RouteXpay, newError(fasthttp.StatusBadRequest, CodeBadRequest, msg))
	}
	var p midasPaymentIn
	d := json.NewDecoder(strings.NewReader(string(in.SignData)))
	d.DisallowUnknownFields()
	if len(in.SignData) == 0 || in.SignData[0] != '{' || d.Decode(&p) != nil {
		fail(`for mode "game", "signData" must be an object of wx.requestMidasPayment's fields: buyQuantity, outTradeNo and optionally env, zoneId, platform, currencyType, offerId`)
		return
	}
	out := MidasPaymentParams{Mode: MiniGameModeGame, OfferID: a.offerID, CurrencyType: "CNY", ZoneID: "1", Platform: p.Platform, OutTradeNo: p.OutTradeNo}
	if p.Mode != nil && *p.Mode != MiniGameModeGame {
		fail(`signData "mode" must be "game" (buy game coins) for wx.requestMidasPayment`)
		return
	}
	if p.OfferID != nil {
		out.OfferID = *p.OfferID
	}
	if out.OfferID == "" {
		fail(`"offerId" is missing: the app has no xpay.offer_id in the config and signData has none`)
		return
	}
	if p.CurrencyType != nil && *p.CurrencyType != "CNY" {
		fail(`signData "currencyType" must be "CNY", the only currency WeChat accepts`)
		return
	}
	if p.ZoneID != nil {
		out.ZoneID = *p.ZoneID
	}
	if out.ZoneID == "" {
		fail(`signData "zoneId" must not be empty (WeChat's default is "1")`)
		return
	}
	if p.Env != nil {
		env, ok := jsonscan.SmallInt(p.Env)
		if !ok || (env != 0 && env != 1) {
			g.fail(ctx, policies.RouteXpay, newError(fasthttp.StatusBadRequest, CodeBadEnv, `signData "env" must be the number 0 (production) or 1 (sandbox)`))
			return
		}
		out.Env = env
	}
	q, ok := jsonscan.SmallInt(p.BuyQuantity)
	if p.BuyQuantity == nil || !ok || q <= 0 {
		fail(`signData "buyQuantity" is required: the number of game coins to buy, a positive whole number`)
		return
	}
	out.BuyQuantity = q
	if !validMidasOutTradeNo(out.OutTradeNo) {
		fail(`signData "outTradeNo" is required: 1 to 32 characters of 0-9 A-Z a-z _ - | * @, not starting with "_", new for every purchase`)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
	g.observe(ctx, policies.RouteXpay, fasthttp.StatusOK)
}

// withMember returns an object signData with name set to value when absent; a string signData
// (exact text to sign) and other JSON are returned unchanged.
func withMember(raw json.RawMessage, name, value string) (json.RawMessage, error) {
	var members map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &members) != nil {
		return raw, nil // buildSignData explains what is wrong
	}
	if _, ok := members[name]; ok {
		return raw, nil
	}
	members[name], _ = json.Marshal(value)
	b, err := json.Marshal(members)
	if err != nil {
		return nil, fmt.Errorf(`"signData": %v`, err)
	}
	return b, nil
}

// positiveInt reports whether raw is a JSON whole number above zero.
func positiveInt(raw json.RawMessage) bool {
	n, ok := jsonscan.SmallInt(raw)
	return raw != nil && ok && n > 0
}

// validMidasOutTradeNo reports whether s is 1..32 characters of [0-9A-Za-z_-|*@] not starting
// with '_' (wx.requestMidasPayment / requestMidasPaymentGameItem outTradeNo rule).
func validMidasOutTradeNo(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("_-|*@", c) >= 0) {
			return false
		}
	}
	return true
}
