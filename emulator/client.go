package emulator

import (
	"encoding/json"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Modes of wx.requestVirtualPayment.
const (
	ModeShortSeriesGoods = "short_series_goods" // 道具直购: creates a paid cash order
	ModeShortSeriesCoin  = "short_series_coin"  // 代币充值: credits coins
)

// ClientPayment is what a mini-program passes to wx.requestVirtualPayment, plus who calls it.
type ClientPayment struct {
	AppID     string // the mini-program
	OpenID    string // the logged-in user
	Mode      string // ModeShortSeriesGoods or ModeShortSeriesCoin
	SignData  string // the JSON text that was signed, exactly
	PaySig    string // HMAC-SHA256(AppKey for env, "requestVirtualPayment&" + SignData), lowercase hex
	Signature string // HMAC-SHA256(session_key, SignData), lowercase hex
}

// ClientPaymentResult is what wx.requestVirtualPayment reports: ErrCode 0 on success, otherwise
// the client error code (xpay.md §3.2) with ErrMsg "requestVirtualPayment:fail ...".
type ClientPaymentResult struct {
	ErrCode   int
	ErrMsg    string
	OrderID   string // the outTradeNo
	WxOrderID string // WeChat's id of the order
}

// signDataFields are the signData keys the WeChat client reads.
type signDataFields struct {
	OfferID              string          `json:"offerId"`
	BuyQuantity          int64           `json:"buyQuantity"`
	Env                  json.RawMessage `json:"env"`
	CurrencyType         string          `json:"currencyType"`
	ProductID            string          `json:"productId"`
	GoodsPrice           int64           `json:"goodsPrice"`
	ActivitySellingPrice *int64          `json:"activitySellingPrice"`
	OutTradeNo           string          `json:"outTradeNo"`
	Attach               string          `json:"attach"`
}

// Client-side errors (the -150xx table of wx.requestVirtualPayment).
var (
	errClientOutTradeNoUsed = &apiError{-15002, "outTradeNo重复使用,请换新单号重试"}
	errClientCurrency       = &apiError{-15004, "currencyType错误,目前只能填CNY"}
	errClientSignature      = &apiError{-15005, "用户态签名signature错误"}
	errClientPaySig         = &apiError{-15006, "支付签名paySig错误"}
	errClientSession        = &apiError{-15007, "session_key过期"}
	errClientGoodsPrice     = &apiError{-15013, "goodsPrice道具价格错误"}
	errClientSignData       = &apiError{-15016, "signData格式有问题"}
)

// clientParamErr is -15001 with the reason.
func clientParamErr(reason string) *apiError {
	return &apiError{-15001, "参数错误," + reason}
}

// RequestVirtualPayment does what wx.requestVirtualPayment does inside WeChat: it verifies
// signData, paySig and the user signature like the WeChat client, then (the user always pays)
// credits coins or creates a paid cash order, and pushes xpay_coin_pay_notify or
// xpay_goods_deliver_notify to the app's PushURL (notify_xpay.go).
func (e *Emulator) RequestVirtualPayment(req ClientPayment) ClientPaymentResult {
	res, cerr := e.requestVirtualPayment(req)
	if cerr != nil {
		return ClientPaymentResult{ErrCode: cerr.code, ErrMsg: "requestVirtualPayment:fail " + cerr.msg}
	}
	return res
}

func (e *Emulator) requestVirtualPayment(req ClientPayment) (ClientPaymentResult, *apiError) {
	a := e.apps[req.AppID]
	if a == nil {
		return ClientPaymentResult{}, clientParamErr("appid错误")
	}
	if req.Mode != ModeShortSeriesGoods && req.Mode != ModeShortSeriesCoin {
		return ClientPaymentResult{}, clientParamErr("mode只能是short_series_goods或short_series_coin")
	}
	sd := []byte(req.SignData)
	var f signDataFields
	if !isJSONObject(sd) || json.Unmarshal(sd, &f) != nil {
		return ClientPaymentResult{}, errClientSignData
	}
	if f.OfferID != a.cfg.OfferID {
		return ClientPaymentResult{}, clientParamErr("offerId错误")
	}
	if f.CurrencyType != "CNY" {
		return ClientPaymentResult{}, errClientCurrency
	}
	env, ok := parseEnv(f.Env)
	if !ok {
		return ClientPaymentResult{}, clientParamErr("env只能是0或1")
	}
	if k := a.keys[env]; k == nil || !k.VerifyClientPaySig([]byte(req.PaySig), sd) {
		return ClientPaymentResult{}, errClientPaySig
	}
	key, ok := e.sessionKey(a, req.OpenID)
	if !ok {
		return ClientPaymentResult{}, errClientSession
	}
	if !signer.VerifyUserSignature([]byte(req.Signature), key, sd) {
		return ClientPaymentResult{}, errClientSignature
	}
	if err := checkPurchase(req.Mode, &f); err != nil {
		return ClientPaymentResult{}, err
	}
	now := e.now()
	var ns notices
	defer e.flush(&ns) // after the unlock below
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, used := a.outTradeNos[f.OutTradeNo]; used {
		return ClientPaymentResult{}, errClientOutTradeNoUsed
	}
	st := a.envs[env]
	res := ClientPaymentResult{ErrMsg: "requestVirtualPayment:ok", OrderID: f.OutTradeNo}
	if req.Mode == ModeShortSeriesCoin {
		st.wallet(req.OpenID).save(f.BuyQuantity)
		res.WxOrderID = newWxID("wxo", now)
		ns.add(coinPayNotice(a, env, req.OpenID, &f, now))
	} else {
		if price, published := st.publishedPrice(f.ProductID); published && price != f.GoodsPrice {
			return ClientPaymentResult{}, errClientGoodsPrice
		}
		unit := f.GoodsPrice
		if f.ActivitySellingPrice != nil {
			unit = *f.ActivitySellingPrice
		}
		o := st.newCashOrder(env, req.OpenID, f.OutTradeNo, f.GoodsPrice*f.BuyQuantity, unit*f.BuyQuantity, now)
		res.WxOrderID = o.WxOrderID
		ns.add(goodsDeliverNotice(a, env, o, &f, now))
	}
	a.outTradeNos[f.OutTradeNo] = struct{}{}
	return res, nil
}

// checkPurchase validates the quantity, outTradeNo and, for goods, product and prices.
func checkPurchase(mode string, f *signDataFields) *apiError {
	if f.BuyQuantity < 1 || f.BuyQuantity > 1_000_000 {
		return clientParamErr("buyQuantity需要是正整数")
	}
	if !validOutTradeNo(f.OutTradeNo) {
		return clientParamErr("outTradeNo需要8-32个字符[0-9A-Za-z_-|*@]且不能以_开头")
	}
	if mode != ModeShortSeriesGoods {
		return nil
	}
	if f.ProductID == "" {
		return clientParamErr("道具直购需要productId")
	}
	if f.GoodsPrice <= 0 {
		return clientParamErr("道具直购需要goodsPrice")
	}
	if p := f.ActivitySellingPrice; p != nil && (*p > f.GoodsPrice || *p*10 < f.GoodsPrice*4) {
		return clientParamErr("activitySellingPrice需要在道具价格的40%到100%之间")
	}
	return nil
}

// validOutTradeNo reports whether s is 8..32 characters of [0-9A-Za-z_-|*@] not starting with '_'.
func validOutTradeNo(s string) bool {
	if !lengthIn(s, 8, 32) || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isURLSafeChar(s[i]) && !strings.ContainsRune("|*@", rune(s[i])) {
			return false
		}
	}
	return true
}

// clientPaymentRequest is the JSON body of POST /_emulator/xpay/request_virtual_payment.
type clientPaymentRequest struct {
	AppID     string `json:"appid"`
	OpenID    string `json:"openid"`
	Mode      string `json:"mode"`
	SignData  string `json:"signData"`
	PaySig    string `json:"paySig"`
	Signature string `json:"signature"`
}

// clientPaymentAnswer is the JSON answer of POST /_emulator/xpay/request_virtual_payment.
type clientPaymentAnswer struct {
	ErrCode   int    `json:"errCode"`
	ErrMsg    string `json:"errMsg"`
	OrderID   string `json:"order_id"`
	WxOrderID string `json:"wx_order_id"`
}

// serveClientPayment answers POST /_emulator/xpay/request_virtual_payment.
func (e *Emulator) serveClientPayment(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	var req clientPaymentRequest
	if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), &req) != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, &clientPaymentAnswer{
			ErrCode: 1001, ErrMsg: "requestVirtualPayment:fail 参数错误: body must be a JSON object",
		})
		return
	}
	res := e.RequestVirtualPayment(ClientPayment(req))
	writeJSON(ctx, fasthttp.StatusOK, &clientPaymentAnswer{
		ErrCode: res.ErrCode, ErrMsg: res.ErrMsg, OrderID: res.OrderID, WxOrderID: res.WxOrderID,
	})
}
