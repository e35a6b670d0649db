package emulator

import (
	"fmt"

	"github.com/valyala/fasthttp"
)

// Service-provider (partner, 服务商) mode, outbound (docs/protocol/wechatpay.md §11): a service
// provider (sp_mchid, the merchant whose key signs every call) places, queries, closes and
// refunds orders of its sub-merchants (sub_mchid). Each sub-merchant has its
// own order book; the answers are signed like any other. A paid or refunded partner order is
// notified to its notify_url with the partner resource (sp_mchid, sub_mchid...), signed and
// encrypted for the service provider (notify_pay.go, wechatpay.md §10.2).

// partnerBook is what a sub-merchant's state adds: its service provider and, per order, the
// partner terms its views repeat.
type partnerBook struct {
	sp    *merchantState
	terms map[string]partnerTerms // by out_trade_no
}

// partnerTerms are the partner fields of one order.
type partnerTerms struct {
	spAppID, subAppID   string
	spOpenID, subOpenID string
}

func init() {
	v3Routes = append(v3Routes,
		v3Route{method: "POST", prefix: "/v3/pay/partner/transactions/jsapi", handle: (*Emulator).partnerJSAPI},
		v3Route{method: "GET", prefix: "/v3/pay/partner/transactions/out-trade-no/", param: true, handle: (*Emulator).partnerQueryByOutTradeNo},
		v3Route{method: "GET", prefix: "/v3/pay/partner/transactions/id/", param: true, handle: (*Emulator).partnerQueryByTransactionID},
		v3Route{method: "POST", prefix: "/v3/pay/partner/transactions/out-trade-no/", suffix: "/close", param: true, handle: (*Emulator).partnerClose},
	)
	// Refunds share their paths with direct merchants: a sub_mchid (body or query) makes them
	// the sub-merchant's.
	for i := range v3Routes {
		r := &v3Routes[i]
		switch {
		case r.method == "POST" && r.prefix == "/v3/refund/domestic/refunds":
			r.handle = partnerRefund(r.handle, "body")
		case r.method == "GET" && r.prefix == "/v3/refund/domestic/refunds/":
			r.handle = partnerRefund(r.handle, "query")
		}
	}
}

// AddSubMerchant makes subMchID a sub-merchant of the service provider spMchID (a configured
// merchant), bound to the mini program subAppID ("" for none).
func (e *Emulator) AddSubMerchant(spMchID, subMchID, subAppID string) error {
	sp := e.merchant(spMchID)
	switch {
	case sp == nil:
		return fmt.Errorf("emulator: add sub-merchant: no merchant %q", spMchID)
	case subMchID == "" || e.merchant(subMchID) != nil:
		return fmt.Errorf("emulator: add sub-merchant: %q is empty or a configured merchant", subMchID)
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	if e.mch.subs == nil {
		e.mch.subs = make(map[string]*merchantState)
	}
	if _, dup := e.mch.subs[subMchID]; dup {
		return fmt.Errorf("emulator: add sub-merchant: %q exists", subMchID)
	}
	e.mch.subs[subMchID] = &merchantState{
		cfg: Merchant{MchID: subMchID, AppID: subAppID}, aead: sp.aead,
		orders: make(map[string]*mchOrder), byTxn: make(map[string]*mchOrder),
		refunds: make(map[string]*mchRefund), refundIDs: make(map[string]*mchRefund),
		partner: &partnerBook{sp: sp, terms: make(map[string]partnerTerms)},
	}
	return nil
}

// errSubMchID is the answer to a sub_mchid that is not the service provider's.
var errSubMchID = v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "sub_mchid与sp_mchid不存在服务商受理关系")

// subMerchant returns the sub-merchant subMchID of c's service provider, checking spMchID (when
// the request repeats it) against the Authorization's. Callers hold mchState.mu.
func (e *Emulator) subMerchant(c *v3Call, location, spMchID, subMchID string, checkSp bool) (*merchantState, *v3Error) {
	if checkSp {
		switch {
		case spMchID == "":
			return nil, v3ParamErr(location, "sp_mchid", ruleRequired)
		case spMchID != c.m.cfg.MchID:
			return nil, v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "请求中的sp_mchid与Authorization中的mchid不一致")
		}
	}
	if subMchID == "" {
		return nil, v3ParamErr(location, "sub_mchid", ruleRequired)
	}
	sub := e.mch.subs[subMchID]
	if sub == nil || sub.partner.sp != c.m {
		return nil, errSubMchID
	}
	return sub, nil
}

// partnerJSAPIRequest is the body of POST /v3/pay/partner/transactions/jsapi.
type partnerJSAPIRequest struct {
	SpAppID  string `json:"sp_appid"`
	SpMchID  string `json:"sp_mchid"`
	SubAppID string `json:"sub_appid"`
	SubMchID string `json:"sub_mchid"`
	jsapiRequest
	Payer *struct {
		SpOpenID  string `json:"sp_openid"`
		SubOpenID string `json:"sub_openid"`
	} `json:"payer"`
}

// partnerJSAPI places a sub-merchant's order. The user pays in sub_appid when it is given, else
// in sp_appid: that appid is the order's (wx.requestPayment's appId).
func (e *Emulator) partnerJSAPI(c *v3Call) (*v3Reply, *v3Error) {
	var req partnerJSAPIRequest
	if verr := decodeV3(c.body, &req); verr != nil {
		return nil, verr
	}
	switch {
	case req.SpAppID == "":
		return nil, v3ParamErr("body", "sp_appid", ruleRequired)
	case req.SpAppID != c.m.cfg.AppID:
		return nil, v3Err(fasthttp.StatusBadRequest, "APPID_MCHID_NOT_MATCH", "sp_appid和sp_mchid不匹配，请检查后再试")
	case req.Payer == nil || (req.Payer.SpOpenID == "") == (req.Payer.SubOpenID == ""):
		return nil, v3ParamErr("body", "payer/sp_openid", ruleRequired) // exactly one of sp_openid, sub_openid
	case req.Payer.SubOpenID != "" && req.SubAppID == "":
		return nil, v3ParamErr("body", "sub_appid", ruleRequired) // sub_openid is an openid under sub_appid
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	sub, verr := e.subMerchant(c, "body", req.SpMchID, req.SubMchID, true)
	if verr != nil {
		return nil, verr
	}
	if req.SubAppID != "" && req.SubAppID != sub.cfg.AppID {
		return nil, v3Err(fasthttp.StatusBadRequest, "APPID_MCHID_NOT_MATCH", "sub_appid和sub_mchid不匹配，请检查后再试")
	}
	payIn := req.SpAppID
	openID := req.Payer.SpOpenID
	if req.SubAppID != "" {
		payIn = req.SubAppID
	}
	if req.Payer.SubOpenID != "" {
		openID = req.Payer.SubOpenID
	}
	// The common fields are checked as for a direct order, against a view of the sub-merchant
	// that pays in payIn.
	inner := req.jsapiRequest
	inner.AppID, inner.MchID = payIn, sub.cfg.MchID
	inner.Payer = &struct {
		OpenID string `json:"openid"`
	}{openID}
	view := *c
	view.m = &merchantState{cfg: Merchant{MchID: sub.cfg.MchID, AppID: payIn}}
	t, verr := checkJSAPI(&view, &inner)
	if verr != nil {
		return nil, verr
	}
	id, perr := e.placeOrder(sub, t, signTypeRSA, c.now)
	if perr != nil {
		return nil, perr.v3()
	}
	sub.partner.terms[t.outTradeNo] = partnerTerms{spAppID: req.SpAppID, subAppID: req.SubAppID, spOpenID: req.Payer.SpOpenID, subOpenID: req.Payer.SubOpenID}
	return &v3Reply{status: fasthttp.StatusOK, json: &prepayAnswer{PrepayID: id}}, nil
}

// partnerTransaction is the partner transaction object: the direct one (v3Transaction) with the
// provider's and the sub-merchant's ids, and the payer's openid under the appid it paid in.
type partnerTransaction struct {
	SpAppID  string `json:"sp_appid"`
	SpMchID  string `json:"sp_mchid"`
	SubAppID string `json:"sub_appid,omitempty"`
	SubMchID string `json:"sub_mchid"`
	v3Trade
	Payer         *partnerPayer `json:"payer,omitempty"`
	Amount        v3TradeAmount `json:"amount"`
	PromotionInfo []struct{}    `json:"promotion_detail"`
}

// partnerPayer is the payer of a partner transaction: the openid under the appid it paid in.
type partnerPayer struct {
	SpOpenID  string `json:"sp_openid,omitempty"`
	SubOpenID string `json:"sub_openid,omitempty"`
}

// partnerView renders a sub-merchant's order. Callers hold mchState.mu.
func partnerView(sub *merchantState, o *mchOrder) *partnerTransaction {
	d := transactionView(o)
	pt := sub.partner.terms[o.outTradeNo]
	v := &partnerTransaction{
		SpAppID: pt.spAppID, SpMchID: sub.partner.sp.cfg.MchID, SubAppID: pt.subAppID, SubMchID: sub.cfg.MchID,
		v3Trade: d.v3Trade, Amount: d.Amount, PromotionInfo: []struct{}{},
	}
	if d.Payer != nil {
		v.Payer = &partnerPayer{SpOpenID: pt.spOpenID, SubOpenID: pt.subOpenID}
	}
	return v
}

// partnerQueryByOutTradeNo answers GET /v3/pay/partner/transactions/out-trade-no/{no}?sp_mchid=&sub_mchid=.
func (e *Emulator) partnerQueryByOutTradeNo(c *v3Call) (*v3Reply, *v3Error) {
	return e.partnerQuery(c, "", c.param)
}

// partnerQueryByTransactionID answers GET /v3/pay/partner/transactions/id/{id}?sp_mchid=&sub_mchid=.
func (e *Emulator) partnerQueryByTransactionID(c *v3Call) (*v3Reply, *v3Error) {
	return e.partnerQuery(c, c.param, "")
}

func (e *Emulator) partnerQuery(c *v3Call, transactionID, outTradeNo string) (*v3Reply, *v3Error) {
	q := c.ctx.QueryArgs()
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	sub, verr := e.subMerchant(c, "query", string(q.Peek("sp_mchid")), string(q.Peek("sub_mchid")), true)
	if verr != nil {
		return nil, verr
	}
	o, verr := sub.queryOrder(transactionID, outTradeNo, c.now)
	if verr != nil {
		return nil, verr
	}
	return &v3Reply{status: fasthttp.StatusOK, json: partnerView(sub, o)}, nil
}

// partnerClose answers POST /v3/pay/partner/transactions/out-trade-no/{no}/close with 204, like
// the direct close.
func (e *Emulator) partnerClose(c *v3Call) (*v3Reply, *v3Error) {
	var req struct {
		SpMchID  string `json:"sp_mchid"`
		SubMchID string `json:"sub_mchid"`
	}
	if verr := decodeV3(c.body, &req); verr != nil {
		return nil, verr
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	sub, verr := e.subMerchant(c, "body", req.SpMchID, req.SubMchID, true)
	if verr != nil {
		return nil, verr
	}
	return sub.closeOrder(c.param)
}

// partnerRefund wraps a refund handler: with a sub_mchid (in the body or the query) the refund
// is the sub-merchant's, looked up in its order book; without one, the direct merchant's.
func partnerRefund(direct v3Handler, location string) v3Handler {
	return func(e *Emulator, c *v3Call) (*v3Reply, *v3Error) {
		var subMchID string
		if location == "query" {
			subMchID = string(c.ctx.QueryArgs().Peek("sub_mchid"))
		} else {
			var req struct {
				SubMchID string `json:"sub_mchid"`
			}
			if verr := decodeV3(c.body, &req); verr != nil {
				return nil, verr
			}
			subMchID = req.SubMchID
		}
		if subMchID == "" {
			return direct(e, c)
		}
		e.mch.mu.Lock()
		sub, verr := e.subMerchant(c, location, "", subMchID, false)
		e.mch.mu.Unlock()
		if verr != nil {
			return nil, verr
		}
		view := *c
		view.m = sub
		return direct(e, &view)
	}
}

// PartnerOrder returns a snapshot of a sub-merchant's order, like Order.
func (e *Emulator) PartnerOrder(subMchID, outTradeNo string) (Order, bool) {
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	sub := e.mch.subs[subMchID]
	if sub == nil || sub.orders[outTradeNo] == nil {
		return Order{}, false
	}
	o := sub.orders[outTradeNo]
	return Order{
		MchID: subMchID, AppID: o.appID, OutTradeNo: o.outTradeNo, TransactionID: o.transactionID,
		TradeState: o.state, Total: o.total, Refunded: o.refunded, OpenID: o.openID,
		Description: o.description, Attach: o.attach, CreateTime: o.created, SuccessTime: o.paidAt,
	}, true
}

// serveAddSubMerchant answers POST /_emulator/pay/partner/sub_merchant?sp_mchid=&sub_mchid=&sub_appid=.
func (e *Emulator) serveAddSubMerchant(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	if err := e.AddSubMerchant(string(q.Peek("sp_mchid")), string(q.Peek("sub_mchid")), string(q.Peek("sub_appid"))); err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: err.Error()})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: true})
}
