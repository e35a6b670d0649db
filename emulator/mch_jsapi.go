package emulator

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// APIv3 JSAPI (mini program) orders: place, query, close (wechatpay.md §6.1-§6.3).

// jsapiRequest is the body of POST /v3/pay/transactions/jsapi (the fields the emulator reads).
type jsapiRequest struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire"`
	Attach      string `json:"attach"`
	NotifyURL   string `json:"notify_url"`
	Amount      *struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer *struct {
		OpenID string `json:"openid"`
	} `json:"payer"`
}

// prepayAnswer is the JSAPI order answer.
type prepayAnswer struct {
	PrepayID string `json:"prepay_id"`
}

// errAppIDMchIDMismatch is the answer to an appid the merchant is not bound to.
var errAppIDMchIDMismatch = v3Err(fasthttp.StatusBadRequest, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配，请检查后再试")

// v3JSAPI answers POST /v3/pay/transactions/jsapi.
func (e *Emulator) v3JSAPI(c *v3Call) (*v3Reply, *v3Error) {
	var req jsapiRequest
	if verr := decodeV3(c.body, &req); verr != nil {
		return nil, verr
	}
	t, verr := checkJSAPI(c, &req)
	if verr != nil {
		return nil, verr
	}
	e.mch.mu.Lock()
	id, perr := e.placeOrder(c.m, t, signTypeRSA, c.now)
	e.mch.mu.Unlock()
	if perr != nil {
		return nil, perr.v3()
	}
	return &v3Reply{status: fasthttp.StatusOK, json: &prepayAnswer{PrepayID: id}}, nil
}

// checkJSAPI validates a JSAPI order body field by field and returns the order terms.
func checkJSAPI(c *v3Call, req *jsapiRequest) (orderTerms, *v3Error) {
	switch {
	case req.AppID == "":
		return orderTerms{}, v3ParamErr("body", "appid", ruleRequired)
	case req.Description == "":
		return orderTerms{}, v3ParamErr("body", "description", ruleRequired)
	case utf8.RuneCountInString(req.Description) > 127:
		return orderTerms{}, v3ParamErr("body", "description", ruleRange)
	case req.OutTradeNo == "":
		return orderTerms{}, v3ParamErr("body", "out_trade_no", ruleRequired)
	case !validV3OutTradeNo(req.OutTradeNo):
		return orderTerms{}, v3ParamErr("body", "out_trade_no", ruleFormat)
	case utf8.RuneCountInString(req.Attach) > 128:
		return orderTerms{}, v3ParamErr("body", "attach", ruleRange)
	case req.NotifyURL == "":
		return orderTerms{}, v3ParamErr("body", "notify_url", ruleRequired)
	case !validNotifyURL(req.NotifyURL, !c.httpNotify):
		return orderTerms{}, v3ParamErr("body", "notify_url", ruleFormat)
	case req.Amount == nil || req.Amount.Total == nil:
		return orderTerms{}, v3ParamErr("body", "amount/total", ruleRequired)
	case *req.Amount.Total <= 0:
		return orderTerms{}, v3ParamErr("body", "amount/total", ruleRange)
	case req.Amount.Currency != "" && req.Amount.Currency != "CNY":
		return orderTerms{}, v3ParamErr("body", "amount/currency", ruleRange)
	case req.Payer == nil || req.Payer.OpenID == "":
		return orderTerms{}, v3ParamErr("body", "payer/openid", ruleRequired)
	}
	if verr := checkMchID(c, "body", req.MchID); verr != nil {
		return orderTerms{}, verr
	}
	var expires time.Time
	if req.TimeExpire != "" {
		t, err := time.Parse(time.RFC3339, req.TimeExpire)
		if err != nil {
			return orderTerms{}, v3ParamErr("body", "time_expire", ruleFormat)
		}
		if !t.After(c.now) {
			return orderTerms{}, v3ParamErr("body", "time_expire", ruleRange)
		}
		expires = t
	}
	if req.AppID != c.m.cfg.AppID {
		return orderTerms{}, errAppIDMchIDMismatch
	}
	return orderTerms{
		appID: req.AppID, outTradeNo: req.OutTradeNo, description: req.Description, attach: req.Attach,
		notifyURL: req.NotifyURL, openID: req.Payer.OpenID, total: *req.Amount.Total, expiresAt: expires,
	}, nil
}

// validV3OutTradeNo reports whether s is 6..32 characters of [0-9A-Za-z_-|*].
func validV3OutTradeNo(s string) bool {
	return lengthIn(s, 6, 32) && onlyChars(s, "_-|*")
}

// onlyChars reports whether s holds only ASCII letters, digits and the extra characters.
func onlyChars(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && !strings.ContainsRune(extra, rune(c)) {
			return false
		}
	}
	return true
}

// validNotifyURL reports whether s is an absolute URL without query or fragment, at most 256
// characters, with scheme https (or http too when httpsOnly is false, as APIv2 allows).
func validNotifyURL(s string, httpsOnly bool) bool {
	if len(s) > 256 || strings.ContainsAny(s, "?# ") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return u.Scheme == "https" || (!httpsOnly && u.Scheme == "http")
}

// v3Transaction is the APIv3 transaction object (wechatpay.md §6.2). Unpaid orders carry only
// the fields WeChat Pay sends for them.
type v3Transaction struct {
	AppID string `json:"appid"`
	MchID string `json:"mchid"`
	v3Trade
	Payer           *v3Payer      `json:"payer,omitempty"`
	Amount          v3TradeAmount `json:"amount"`
	PromotionDetail []struct{}    `json:"promotion_detail"`
}

// v3Trade are the members of a transaction object between the merchant's ids and the payer, the
// same for a direct merchant's order and a sub-merchant's (partnerTransaction).
type v3Trade struct {
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id,omitempty"`
	TradeType      string `json:"trade_type,omitempty"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	BankType       string `json:"bank_type,omitempty"`
	Attach         string `json:"attach,omitempty"`
	SuccessTime    string `json:"success_time,omitempty"`
}

// v3Payer is the payer of a transaction.
type v3Payer struct {
	OpenID string `json:"openid"`
}

// v3TradeAmount is the amount of a transaction; payer_total only once paid.
type v3TradeAmount struct {
	Total         int64  `json:"total"`
	PayerTotal    *int64 `json:"payer_total,omitempty"`
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency"`
}

// tradeStateDesc describes a trade state like WeChat Pay.
var tradeStateDesc = map[string]string{
	tradeNotPay:  "订单未支付",
	tradeSuccess: "支付成功",
	tradeClosed:  "订单已关闭",
	tradeRefund:  "订单发生过退款，退款详情请查询退款单",
}

// rfc3339 formats t like WeChat Pay: Beijing time with its offset.
func rfc3339(t time.Time) string { return t.In(beijing).Format(time.RFC3339) }

// transactionView renders o. Callers hold mchState.mu.
func transactionView(o *mchOrder) *v3Transaction {
	v := &v3Transaction{
		AppID: o.appID, MchID: o.m.cfg.MchID,
		v3Trade:         v3Trade{OutTradeNo: o.outTradeNo, TradeState: o.state, TradeStateDesc: tradeStateDesc[o.state], Attach: o.attach},
		Amount:          v3TradeAmount{Total: o.total, Currency: "CNY", PayerCurrency: "CNY"},
		PromotionDetail: []struct{}{},
	}
	if o.transactionID != "" {
		total := o.total
		v.TransactionID, v.TradeType, v.BankType = o.transactionID, "JSAPI", "OTHERS"
		v.SuccessTime = rfc3339(o.paidAt)
		v.Payer = &v3Payer{OpenID: o.openID}
		v.Amount.PayerTotal = &total
	}
	return v
}

// v3QueryByOutTradeNo answers GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=.
func (e *Emulator) v3QueryByOutTradeNo(c *v3Call) (*v3Reply, *v3Error) {
	return e.v3Query(c, "", c.param)
}

// v3QueryByTransactionID answers GET /v3/pay/transactions/id/{transaction_id}?mchid=. Only paid
// orders have a transaction_id.
func (e *Emulator) v3QueryByTransactionID(c *v3Call) (*v3Reply, *v3Error) {
	return e.v3Query(c, c.param, "")
}

// v3Query answers an order query by transaction_id or out_trade_no.
func (e *Emulator) v3Query(c *v3Call, transactionID, outTradeNo string) (*v3Reply, *v3Error) {
	if verr := checkMchID(c, "query", string(c.ctx.QueryArgs().Peek("mchid"))); verr != nil {
		return nil, verr
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	o, verr := c.m.queryOrder(transactionID, outTradeNo, c.now)
	if verr != nil {
		return nil, verr
	}
	return &v3Reply{status: fasthttp.StatusOK, json: transactionView(o)}, nil
}

// queryOrder finds an order to query (findOrder) and settles its refunds first. Callers hold
// mchState.mu.
func (m *merchantState) queryOrder(transactionID, outTradeNo string, now time.Time) (*mchOrder, *v3Error) {
	o := m.findOrder(transactionID, outTradeNo)
	if o == nil {
		return nil, errPayOrderNotExist.v3()
	}
	o.settleRefunds(now)
	return o, nil
}

// closeRequest is the body of the close-order request.
type closeRequest struct {
	MchID string `json:"mchid"`
}

// errV3ClosePaid is the answer to closing a paid order.
var errV3ClosePaid = v3Err(fasthttp.StatusBadRequest, "ORDERPAID", "订单已支付，不能关闭")

// v3Close answers POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close with 204. Closing
// an unknown or already closed order also answers 204 (WeChat Pay does not report it,
// wechatpay.md §6.3); a paid order cannot be closed.
func (e *Emulator) v3Close(c *v3Call) (*v3Reply, *v3Error) {
	var req closeRequest
	if verr := decodeV3(c.body, &req); verr != nil {
		return nil, verr
	}
	if verr := checkMchID(c, "body", req.MchID); verr != nil {
		return nil, verr
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	return c.m.closeOrder(c.param)
}

// closeOrder closes the order outTradeNo and answers 204; an unknown or closed order answers 204
// too, a paid one ORDERPAID. Callers hold mchState.mu.
func (m *merchantState) closeOrder(outTradeNo string) (*v3Reply, *v3Error) {
	if o := m.orders[outTradeNo]; o != nil {
		switch o.state {
		case tradeSuccess, tradeRefund:
			return nil, errV3ClosePaid
		case tradeNotPay:
			o.state = tradeClosed
		}
	}
	return &v3Reply{status: fasthttp.StatusNoContent}, nil
}
