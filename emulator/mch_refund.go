package emulator

import (
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// Refunds: the shared rules (APIv2 and APIv3) and the APIv3 endpoints (wechatpay.md §6.4).

// refundTerms is a refund request in either API.
type refundTerms struct {
	transactionID, outTradeNo, outRefundNo, reason, notifyURL string
	refund, total                                             int64 // fen
}

// Refund errors.
var (
	errRefundOrderNotExist = &payError{fasthttp.StatusNotFound, "RESOURCE_NOT_EXISTS", "ORDERNOTEXIST", "订单不存在"}
	errRefundNotPaid       = &payError{fasthttp.StatusBadRequest, "INVALID_REQUEST", "INVALID_REQUEST", "订单未支付，不能退款"}
	errRefundTotal         = &payError{fasthttp.StatusBadRequest, "PARAM_ERROR", "PARAM_ERROR", "订单金额或退款金额与之前请求不一致，请核实后再试"}
	errRefundExceeds       = &payError{fasthttp.StatusBadRequest, "INVALID_REQUEST", "INVALID_REQUEST", "申请退款金额超过订单可退金额"}
	errRefundNoReused      = &payError{fasthttp.StatusBadRequest, "INVALID_REQUEST", "INVALID_REQUEST", "商户退款单号已被使用，请求参数与原退款单不一致"}
	errRefundNotExist      = &payError{fasthttp.StatusNotFound, "RESOURCE_NOT_EXISTS", "REFUNDNOTEXIST", "退款单不存在"}
)

// createRefund accepts a refund (PROCESSING) of a paid order. The same out_refund_no with the
// same order and amount returns the existing refund; the refunds of an order may not exceed its
// total, and the request must repeat the order total. Callers hold mchState.mu.
func (m *merchantState) createRefund(t refundTerms, now time.Time) (*mchRefund, *payError) {
	o := m.findOrder(t.transactionID, t.outTradeNo)
	if r := m.refunds[t.outRefundNo]; r != nil {
		if r.order == o && r.amount == t.refund {
			return r, nil
		}
		return nil, errRefundNoReused
	}
	switch {
	case o == nil:
		return nil, errRefundOrderNotExist
	case o.state != tradeSuccess && o.state != tradeRefund:
		return nil, errRefundNotPaid
	case t.total != o.total:
		return nil, errRefundTotal
	case o.refunded+t.refund > o.total:
		return nil, errRefundExceeds
	}
	r := &mchRefund{
		order: o, refundID: newWxID("503", now), outRefundNo: t.outRefundNo, reason: t.reason,
		notifyURL: t.notifyURL, amount: t.refund, status: refundProcessing, created: now,
	}
	o.refunds = append(o.refunds, r)
	o.refunded += t.refund
	m.refunds[r.outRefundNo] = r
	m.refundIDs[r.refundID] = r
	return r, nil
}

// refundRequest is the body of POST /v3/refund/domestic/refunds (the fields the emulator reads).
type refundRequest struct {
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	OutRefundNo   string `json:"out_refund_no"`
	Reason        string `json:"reason"`
	NotifyURL     string `json:"notify_url"`
	Amount        *struct {
		Refund   *int64 `json:"refund"`
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

// checkRefundRequest validates a refund body and returns its terms; httpsOnly rejects http://
// notify URLs.
func checkRefundRequest(req *refundRequest, httpsOnly bool) (refundTerms, *v3Error) {
	switch {
	case req.TransactionID == "" && req.OutTradeNo == "":
		return refundTerms{}, v3ParamErr("body", "out_trade_no", ruleRequired)
	case req.OutRefundNo == "":
		return refundTerms{}, v3ParamErr("body", "out_refund_no", ruleRequired)
	case !validOutRefundNo(req.OutRefundNo):
		return refundTerms{}, v3ParamErr("body", "out_refund_no", ruleFormat)
	case utf8.RuneCountInString(req.Reason) > 80:
		return refundTerms{}, v3ParamErr("body", "reason", ruleRange)
	case req.NotifyURL != "" && !validNotifyURL(req.NotifyURL, httpsOnly):
		return refundTerms{}, v3ParamErr("body", "notify_url", ruleFormat)
	case req.Amount == nil || req.Amount.Refund == nil:
		return refundTerms{}, v3ParamErr("body", "amount/refund", ruleRequired)
	case req.Amount.Total == nil:
		return refundTerms{}, v3ParamErr("body", "amount/total", ruleRequired)
	case req.Amount.Currency == "":
		return refundTerms{}, v3ParamErr("body", "amount/currency", ruleRequired)
	case req.Amount.Currency != "CNY":
		return refundTerms{}, v3ParamErr("body", "amount/currency", ruleRange)
	case *req.Amount.Refund <= 0:
		return refundTerms{}, v3ParamErr("body", "amount/refund", ruleRange)
	case *req.Amount.Total <= 0:
		return refundTerms{}, v3ParamErr("body", "amount/total", ruleRange)
	}
	return refundTerms{
		transactionID: req.TransactionID, outTradeNo: req.OutTradeNo, outRefundNo: req.OutRefundNo,
		reason: req.Reason, notifyURL: req.NotifyURL, refund: *req.Amount.Refund, total: *req.Amount.Total,
	}, nil
}

// validOutRefundNo reports whether s is 1..64 characters of [0-9A-Za-z_-|*@].
func validOutRefundNo(s string) bool {
	return lengthIn(s, 1, 64) && onlyChars(s, "_-|*@")
}

// v3RefundObject is the APIv3 refund object (wechatpay.md §6.4).
type v3RefundObject struct {
	RefundID            string         `json:"refund_id"`
	OutRefundNo         string         `json:"out_refund_no"`
	TransactionID       string         `json:"transaction_id"`
	OutTradeNo          string         `json:"out_trade_no"`
	Channel             string         `json:"channel"`
	UserReceivedAccount string         `json:"user_received_account"`
	SuccessTime         string         `json:"success_time,omitempty"`
	CreateTime          string         `json:"create_time"`
	Status              string         `json:"status"`
	FundsAccount        string         `json:"funds_account"`
	Amount              v3RefundAmount `json:"amount"`
	PromotionDetail     []struct{}     `json:"promotion_detail"`
}

// v3RefundAmount is the amount of a refund object (no coupons: payer amounts equal the totals).
type v3RefundAmount struct {
	Total            int64      `json:"total"`
	Refund           int64      `json:"refund"`
	From             []struct{} `json:"from"`
	PayerTotal       int64      `json:"payer_total"`
	PayerRefund      int64      `json:"payer_refund"`
	SettlementRefund int64      `json:"settlement_refund"`
	SettlementTotal  int64      `json:"settlement_total"`
	DiscountRefund   int64      `json:"discount_refund"`
	Currency         string     `json:"currency"`
	RefundFee        int64      `json:"refund_fee"`
}

// refundView renders r. Callers hold mchState.mu.
func refundView(r *mchRefund) *v3RefundObject {
	o := r.order
	v := &v3RefundObject{
		RefundID: r.refundID, OutRefundNo: r.outRefundNo, TransactionID: o.transactionID,
		OutTradeNo: o.outTradeNo, Channel: "ORIGINAL", UserReceivedAccount: "支付用户零钱",
		CreateTime: rfc3339(r.created), Status: r.status, FundsAccount: "AVAILABLE",
		Amount: v3RefundAmount{
			Total: o.total, Refund: r.amount, From: []struct{}{}, PayerTotal: o.total, PayerRefund: r.amount,
			SettlementRefund: r.amount, SettlementTotal: o.total, Currency: "CNY",
		},
		PromotionDetail: []struct{}{},
	}
	if !r.succeeded.IsZero() {
		v.SuccessTime = rfc3339(r.succeeded)
	}
	return v
}

// v3CreateRefund answers POST /v3/refund/domestic/refunds. The answer says PROCESSING; the
// refund succeeds right after it, and its REFUND.SUCCESS notification is queued (notify_pay.go).
func (e *Emulator) v3CreateRefund(c *v3Call) (*v3Reply, *v3Error) {
	var req refundRequest
	if verr := decodeV3(c.body, &req); verr != nil {
		return nil, verr
	}
	t, verr := checkRefundRequest(&req, !c.httpNotify)
	if verr != nil {
		return nil, verr
	}
	var ns notices
	defer e.flush(&ns) // after the unlock below
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	r, perr := c.m.createRefund(t, c.now)
	if perr != nil {
		return nil, perr.v3()
	}
	view := refundView(r)
	ns.add(settleNewRefund(r, c.now, true))
	return &v3Reply{status: fasthttp.StatusOK, json: view}, nil
}

// v3QueryRefund answers GET /v3/refund/domestic/refunds/{out_refund_no}.
func (e *Emulator) v3QueryRefund(c *v3Call) (*v3Reply, *v3Error) {
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	r := c.m.refunds[c.param]
	if r == nil {
		return nil, errRefundNotExist.v3()
	}
	r.order.settleRefunds(c.now)
	return &v3Reply{status: fasthttp.StatusOK, json: refundView(r)}, nil
}
