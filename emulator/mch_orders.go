package emulator

import (
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// Trade states (wechatpay.md §6.2) the emulator uses.
const (
	tradeNotPay  = "NOTPAY"
	tradeSuccess = "SUCCESS"
	tradeClosed  = "CLOSED"
	tradeRefund  = "REFUND"
)

// prepayLifetime is how long a prepay_id can be paid (about two hours, wechatpay.md §6.1).
const prepayLifetime = 2 * time.Hour

// signTypeRSA is the wx.requestPayment signType of APIv3 orders.
const signTypeRSA = "RSA"

// mchOrder is one WeChat Pay order. APIv2 and APIv3 share a merchant's order book. Guarded by
// mchState.mu.
type mchOrder struct {
	m             *merchantState
	appID         string
	outTradeNo    string
	description   string
	attach        string
	notifyURL     string
	openID        string
	signType      string // how it was placed: signTypeRSA (APIv3) or the APIv2 sign_type
	total         int64  // fen
	state         string
	transactionID string    // set when paid
	created       time.Time //
	paidAt        time.Time // zero until paid
	expiresAt     time.Time // time_expire; zero when none was given
	refunds       []*mchRefund
	refunded      int64 // refunds accepted so far (processing or succeeded), fen
}

// mchRefund is one refund of an order. Guarded by mchState.mu.
type mchRefund struct {
	order       *mchOrder
	refundID    string
	outRefundNo string
	reason      string
	notifyURL   string
	amount      int64 // fen
	status      string
	created     time.Time
	succeeded   time.Time // zero while PROCESSING
}

// Refund statuses.
const (
	refundProcessing = "PROCESSING"
	refundSuccess    = "SUCCESS"
)

// prepay is one prepay_id: the order it pays and how its paySign is made.
type prepay struct {
	id       string
	order    *mchOrder
	signType string // signTypeRSA (APIv3) or the APIv2 sign_type of unifiedorder
	expires  time.Time
}

// orderTerms are the fields of an order request that the emulator keeps.
type orderTerms struct {
	appID, outTradeNo, description, attach, notifyURL, openID string
	total                                                     int64
	expiresAt                                                 time.Time
}

// payError is a business error of the shared order book, with its APIv3 and APIv2 forms.
type payError struct {
	status int    // APIv3 HTTP status
	code   string // APIv3 code
	v2Code string // APIv2 err_code
	msg    string
}

// v3 returns the APIv3 form of pe.
func (pe *payError) v3() *v3Error {
	return &v3Error{status: pe.status, Code: pe.code, Message: pe.msg}
}

// Order book errors.
var (
	errPayOrderNotExist  = &payError{fasthttp.StatusNotFound, "ORDER_NOT_EXIST", "ORDERNOTEXIST", "订单不存在"}
	errPayOrderPaid      = &payError{fasthttp.StatusForbidden, "ORDERPAID", "ORDERPAID", "该订单已支付"}
	errPayOrderClosed    = &payError{fasthttp.StatusBadRequest, "ORDER_CLOSED", "ORDERCLOSED", "该订单已关闭"}
	errPayOutTradeNoUsed = &payError{fasthttp.StatusForbidden, "OUT_TRADE_NO_USED", "INVALID_REQUEST", "201 商户订单号重复"}
)

// placeOrder creates an order, or issues a new prepay_id for an unpaid one placed again with the
// same amount and appid (wechatpay.md §6.1). Callers hold mchState.mu.
func (e *Emulator) placeOrder(m *merchantState, t orderTerms, signType string, now time.Time) (string, *payError) {
	o := m.orders[t.outTradeNo]
	switch {
	case o == nil:
		o = &mchOrder{
			m: m, appID: t.appID, outTradeNo: t.outTradeNo, description: t.description,
			attach: t.attach, notifyURL: t.notifyURL, openID: t.openID, signType: signType, total: t.total,
			state: tradeNotPay, created: now, expiresAt: t.expiresAt,
		}
		m.orders[t.outTradeNo] = o
	case o.state == tradeSuccess || o.state == tradeRefund:
		return "", errPayOrderPaid
	case o.state == tradeClosed:
		return "", errPayOrderClosed
	case o.total != t.total || o.appID != t.appID:
		return "", errPayOutTradeNoUsed
	}
	p := &prepay{
		id:       "wx" + now.In(beijing).Format("20060102150405") + randomHex(10),
		order:    o,
		signType: signType,
		expires:  now.Add(prepayLifetime),
	}
	e.mch.prepays[p.id] = p
	return p.id, nil
}

// pay marks o paid at now. Callers hold mchState.mu.
func (o *mchOrder) pay(now time.Time) {
	o.state = tradeSuccess
	o.paidAt = now
	o.transactionID = newWxID("4200", now)
	o.m.byTxn[o.transactionID] = o
}

// settleRefunds completes o's processing refunds: WeChat Pay finishes a refund shortly after
// accepting it, so the emulator does it right after the answer that accepted it (and, to be
// sure, whenever the refund or its order is queried). The order turns REFUND once the succeeded
// refunds add up to its total. Callers hold mchState.mu.
func (o *mchOrder) settleRefunds(now time.Time) {
	var done int64
	for _, r := range o.refunds {
		if r.status == refundProcessing {
			r.status, r.succeeded = refundSuccess, now
		}
		done += r.amount
	}
	if done >= o.total && o.state == tradeSuccess {
		o.state = tradeRefund
	}
}

// findOrder looks an order up by transaction_id (preferred, as WeChat Pay does) or
// out_trade_no. Callers hold mchState.mu.
func (m *merchantState) findOrder(transactionID, outTradeNo string) *mchOrder {
	if transactionID != "" {
		return m.byTxn[transactionID]
	}
	return m.orders[outTradeNo]
}

// Order is a snapshot of a WeChat Pay order, for tests.
type Order struct {
	MchID         string
	AppID         string
	OutTradeNo    string
	TransactionID string // "" until paid
	TradeState    string // NOTPAY, SUCCESS, CLOSED or REFUND
	Total         int64  // fen
	Refunded      int64  // refunds accepted so far, processing or succeeded, fen
	OpenID        string
	Description   string
	Attach        string
	NotifyURL     string
	CreateTime    time.Time
	SuccessTime   time.Time // zero until paid
}

// Order returns a snapshot of the merchant's order outTradeNo, placed over APIv2 or APIv3.
func (e *Emulator) Order(mchID, outTradeNo string) (Order, bool) {
	m := e.merchant(mchID)
	if m == nil {
		return Order{}, false
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	o := m.orders[outTradeNo]
	if o == nil {
		return Order{}, false
	}
	return Order{
		MchID: m.cfg.MchID, AppID: o.appID, OutTradeNo: o.outTradeNo, TransactionID: o.transactionID,
		TradeState: o.state, Total: o.total, Refunded: o.refunded, OpenID: o.openID,
		Description: o.description, Attach: o.attach, NotifyURL: o.notifyURL,
		CreateTime: o.created, SuccessTime: o.paidAt,
	}, true
}

// ErrNoOrder is returned by PayOrder for an unknown merchant or order.
var ErrNoOrder = errors.New("no such order")

// PayOrder makes the user pay the merchant's unpaid order outTradeNo (NOTPAY -> SUCCESS) without
// a client payment, for tests. mchID is a configured merchant or a sub-merchant (AddSubMerchant).
// Like a client payment, it queues the payment notification to the order's notify_url (a
// sub-merchant's goes to its service provider, as a partner TRANSACTION.SUCCESS).
func (e *Emulator) PayOrder(mchID, outTradeNo string) error {
	var ns notices
	defer e.flush(&ns) // after the unlock below
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	m := e.merchant(mchID)
	if m == nil {
		m = e.mch.subs[mchID]
	}
	var o *mchOrder
	if m != nil {
		o = m.orders[outTradeNo]
	}
	if o == nil {
		return fmt.Errorf("emulator: pay order %s of merchant %s: %w", outTradeNo, mchID, ErrNoOrder)
	}
	if o.state != tradeNotPay {
		return fmt.Errorf("emulator: pay order %s of merchant %s: trade state is %s, want NOTPAY", outTradeNo, mchID, o.state)
	}
	o.pay(e.now())
	ns.add(paidNotice(o))
	return nil
}
