package emulator

import (
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Mini-game virtual payment 2.0 server APIs (docs/protocol/xpay.md, "Mini-game virtual
// payment"): POST /wxa/game/{getbalance,pay,cancelpay,present,queryorderinfo}. WeChat checks, in
// this order: the access_token, the JSON body, sig_method=hmac_sha256, pay_sig (AppKey of the
// body's env over uri + "&" + body: 90011), the user signature (session_key over the body:
// 90010, 90016 with no session), then the call's own parameters (90018).

// Mini-game errors (the errcode tables of the pay_v2 pages).
var (
	errAPIUnauthorized  = &apiError{48001, "api unauthorized"}
	errGameNoOrder      = &apiError{90000, "订单不存在"}
	errGameSignature    = &apiError{90010, "[signature] signature is invalid"}
	errGamePaySig       = &apiError{90011, "[pay_sig] pay_sig is invalid"}
	errGameDuplicate    = &apiError{90012, "订单已存在"}
	errGameInsufficient = &apiError{90013, "余额不足"}
	errGameSession      = &apiError{90016, "sessionkey fail"}
)

// gameParamErr is 90018 (参数错误) with the reason.
func gameParamErr(reason string) *apiError { return &apiError{90018, "参数错误: " + reason} }

// gameState is one mini game's state in one env, guarded by Emulator.mu.
type gameState struct {
	wallets  map[string]*wallet    // openid + "\x00" + zone_id -> game-coin account
	pays     map[string]*gamePay   // pay bill_no -> deduction
	cancels  map[string]struct{}   // cancelpay bill_no values used
	presents map[string]struct{}   // present bill_no values used
	orders   map[string]*gameOrder // client purchases by outTradeNo
}

func newGameState() *gameState {
	return &gameState{
		wallets: make(map[string]*wallet), pays: make(map[string]*gamePay),
		cancels: make(map[string]struct{}), presents: make(map[string]struct{}), orders: make(map[string]*gameOrder),
	}
}

// wallet returns a user's account in a zone, creating an empty one.
func (st *gameState) wallet(openid, zone string) *wallet {
	k := openid + "\x00" + zone
	w := st.wallets[k]
	if w == nil {
		w = &wallet{}
		st.wallets[k] = w
	}
	return w
}

// gamePay is one pay deduction: cancelpay may return up to amount, in several parts.
type gamePay struct {
	openid, zone string
	amount       int64
	returned     int64
}

// gameOrder is a client purchase (coins or an item), for queryorderinfo.
type gameOrder struct {
	openid        string
	bizID         int // 1 coins, 2 item
	productID     string
	paidAt        int64
	mchOrderNo    string
	transactionID string
}

// gameBody is every body member the mini-game APIs read.
type gameBody struct {
	OpenID     string          `json:"openid"`
	OfferID    string          `json:"offer_id"`
	Ts         json.RawMessage `json:"ts"`
	ZoneID     string          `json:"zone_id"`
	Env        json.RawMessage `json:"env"`
	Amount     int64           `json:"amount"`
	BillNo     string          `json:"bill_no"`
	PayBillNo  string          `json:"pay_bill_no"`
	OutTradeNo string          `json:"out_trade_no"`
	BizID      int             `json:"biz_id"`
}

// gameCall is one verified mini-game call.
type gameCall struct {
	app *appState
	st  *gameState
	b   *gameBody
	now time.Time
}

type gameHandler func(c *gameCall) (answer, *apiError)

// gameRoutes are the mini-game APIs; every one needs pay_sig and the user signature.
var gameRoutes = map[string]gameHandler{
	"/wxa/game/getbalance":     gameGetBalance,
	"/wxa/game/pay":            gamePayCoins,
	"/wxa/game/cancelpay":      gameCancelPay,
	"/wxa/game/present":        gamePresent,
	"/wxa/game/queryorderinfo": gameQueryOrder,
}

// serveGame answers one /wxa/game/ virtual-payment request.
func (e *Emulator) serveGame(ctx *fasthttp.RequestCtx, path string) {
	now := e.now()
	ans, aerr := e.game(ctx, path, now)
	if aerr != nil {
		writeError(ctx, now, aerr)
		return
	}
	writeAnswer(ctx, now, ans)
}

// game verifies a request in WeChat's order and runs the API.
func (e *Emulator) game(ctx *fasthttp.RequestCtx, path string, now time.Time) (answer, *apiError) {
	a, aerr := e.paymentApp(ctx, now, true)
	if aerr != nil {
		return nil, aerr
	}
	q := ctx.QueryArgs()
	body := ctx.PostBody()
	var b gameBody
	if !isJSONObject(body) || json.Unmarshal(body, &b) != nil {
		return nil, gameParamErr("post body不是合法的json或字段类型错误")
	}
	if string(q.Peek("sig_method")) != "hmac_sha256" {
		return nil, gameParamErr("sig_method只支持hmac_sha256")
	}
	env, ok := parseEnv(b.Env)
	if !ok || b.Env == nil {
		return nil, gameParamErr("env只能是0或1")
	}
	if k := a.keys[env]; k == nil || !k.VerifyPaySig(q.Peek("pay_sig"), path, body) {
		return nil, errGamePaySig
	}
	key, ok := e.sessionKey(a, b.OpenID)
	if !ok {
		return nil, errGameSession
	}
	if !signer.VerifyUserSignature(q.Peek("signature"), key, body) {
		return nil, errGameSignature
	}
	switch {
	case b.OfferID != a.cfg.OfferID:
		return nil, gameParamErr("offer_id错误")
	case b.Ts == nil:
		return nil, gameParamErr("缺少ts")
	case b.ZoneID == "":
		return nil, gameParamErr("缺少zone_id")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return gameRoutes[path](&gameCall{app: a, st: a.game[env], b: &b, now: now})
}

// gameGetBalance answers getbalance like query_user_balance (balanceAnswer), for the zone's wallet.
func gameGetBalance(c *gameCall) (answer, *apiError) {
	return balanceOf(c.st.wallet(c.b.OpenID, c.b.ZoneID)), nil
}

// gamePayAnswer is pay's answer.
type gamePayAnswer struct {
	result
	BillNo            string `json:"bill_no"`
	Balance           int64  `json:"balance"`
	UsedPresentAmount int64  `json:"used_present_amount"`
}

// checkBillNo checks a bill_no: at most 63 characters of [0-9A-Za-z_-*], not starting with '_'.
func checkBillNo(s string) *apiError {
	if s == "" || len(s) > 63 || s[0] == '_' {
		return gameParamErr("bill_no长度不超过63且不能以下划线开头")
	}
	for i := 0; i < len(s); i++ {
		if !isURLSafeChar(s[i]) && s[i] != '*' {
			return gameParamErr("bill_no只能是数字、英文大小写字母及_-*的组合")
		}
	}
	return nil
}

// gamePayCoins deducts coins, present coins first; the same bill_no again is 90012.
func gamePayCoins(c *gameCall) (answer, *apiError) {
	b := c.b
	if err := checkBillNo(b.BillNo); err != nil {
		return nil, err
	}
	if b.Amount <= 0 {
		return nil, gameParamErr("amount需要大于0")
	}
	if _, dup := c.st.pays[b.BillNo]; dup {
		return nil, errGameDuplicate
	}
	w := c.st.wallet(b.OpenID, b.ZoneID)
	if w.total() < b.Amount {
		return nil, errGameInsufficient
	}
	fromPresent := w.spend(b.Amount)
	c.st.pays[b.BillNo] = &gamePay{openid: b.OpenID, zone: b.ZoneID, amount: b.Amount}
	return &gamePayAnswer{BillNo: b.BillNo, Balance: w.total(), UsedPresentAmount: fromPresent}, nil
}

// gameBillAnswer is the answer of cancelpay and present.
type gameBillAnswer struct {
	result
	BillNo  string `json:"bill_no"`
	Balance int64  `json:"balance"`
}

// gameCancelPay returns part or all of a pay deduction.
func gameCancelPay(c *gameCall) (answer, *apiError) {
	b := c.b
	if err := checkBillNo(b.BillNo); err != nil {
		return nil, err
	}
	if b.Amount <= 0 {
		return nil, gameParamErr("amount需要大于0")
	}
	p := c.st.pays[b.PayBillNo]
	if p == nil || p.openid != b.OpenID || p.zone != b.ZoneID {
		return nil, errGameNoOrder
	}
	if _, dup := c.st.cancels[b.BillNo]; dup {
		return nil, errGameDuplicate
	}
	if p.returned+b.Amount > p.amount {
		return nil, gameParamErr("退回数量超过原扣除数量")
	}
	p.returned += b.Amount
	c.st.cancels[b.BillNo] = struct{}{}
	w := c.st.wallet(b.OpenID, b.ZoneID)
	w.paid += b.Amount
	w.sumCost -= b.Amount
	return &gameBillAnswer{BillNo: b.BillNo, Balance: w.total()}, nil
}

// gamePresent gives coins; the same bill_no again is 90012.
func gamePresent(c *gameCall) (answer, *apiError) {
	b := c.b
	if err := checkBillNo(b.BillNo); err != nil {
		return nil, err
	}
	if b.Amount <= 0 {
		return nil, gameParamErr("amount不能为0")
	}
	if _, dup := c.st.presents[b.BillNo]; dup {
		return nil, errGameDuplicate
	}
	c.st.presents[b.BillNo] = struct{}{}
	w := c.st.wallet(b.OpenID, b.ZoneID)
	w.give(b.Amount)
	return &gameBillAnswer{BillNo: b.BillNo, Balance: w.total()}, nil
}

// gameOrderAnswer is queryorderinfo's answer.
type gameOrderAnswer struct {
	result
	ProductID     string `json:"product_id"`
	PayState      int    `json:"pay_state"`     // 1 unpaid, 2 paid
	DeliverState  int    `json:"deliver_state"` // 1 not delivered, 2 delivered
	PayFinishTime int64  `json:"pay_finish_time"`
	OutTradeNo    string `json:"out_trade_no"`
	MchOrderNo    string `json:"mch_order_no"`
	TransactionID string `json:"transaction_id"`
}

// gameQueryOrder reports a client purchase by out_trade_no and biz_id (1 coins, 2 item).
func gameQueryOrder(c *gameCall) (answer, *apiError) {
	b := c.b
	if b.BizID != 1 && b.BizID != 2 {
		return nil, gameParamErr("biz_id只能是1(代币)或2(道具直购)")
	}
	o := c.st.orders[b.OutTradeNo]
	if o == nil || o.openid != b.OpenID || o.bizID != b.BizID {
		return nil, errGameNoOrder
	}
	return &gameOrderAnswer{ProductID: o.productID, PayState: 2, DeliverState: 2, PayFinishTime: o.paidAt,
		OutTradeNo: b.OutTradeNo, MchOrderNo: o.mchOrderNo, TransactionID: o.transactionID}, nil
}
