package emulator

import (
	"strconv"

	"github.com/wxgate/wxgate/signer"
)

// APIv2 refunds: /secapi/pay/refund (client certificate checked in serveV2) and
// /pay/refundquery. They share the refund rules of APIv3 (mch_refund.go).

// v2Refund answers /secapi/pay/refund. The refund succeeds right after the answer, and its
// refund notification is queued when the request had a notify_url (notify_pay.go).
func (e *Emulator) v2Refund(c *v2Call) *v2Result {
	if c.get("transaction_id") == "" && c.get("out_trade_no") == "" {
		return v2Fail("transaction_id和out_trade_no必须传一个")
	}
	if k := v2Required(c, "out_refund_no", "total_fee", "refund_fee"); k != "" {
		return v2Fail("缺少参数" + k)
	}
	total, okTotal := parseFen(c.get("total_fee"))
	refund, okRefund := parseFen(c.get("refund_fee"))
	switch {
	case !validOutRefundNo(c.get("out_refund_no")):
		return v2Fail("out_refund_no参数格式错误")
	case !okTotal:
		return v2Fail("invalid total_fee")
	case !okRefund:
		return v2Fail("invalid refund_fee")
	case c.get("refund_fee_type") != "" && c.get("refund_fee_type") != "CNY":
		return v2Fail("invalid refund_fee_type")
	case c.get("notify_url") != "" && !validNotifyURL(c.get("notify_url"), false):
		return v2Fail("invalid notify_url")
	}
	t := refundTerms{
		transactionID: c.get("transaction_id"), outTradeNo: c.get("out_trade_no"),
		outRefundNo: c.get("out_refund_no"), reason: c.get("refund_desc"), notifyURL: c.get("notify_url"),
		refund: refund, total: total,
	}
	var ns notices
	defer e.flush(&ns) // after the unlock below
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	r, perr := c.m.createRefund(t, c.now)
	if perr != nil {
		return v2Business(perr)
	}
	ns.add(settleNewRefund(r, c.now, false))
	o := r.order
	amount, orderTotal := strconv.FormatInt(r.amount, 10), strconv.FormatInt(o.total, 10)
	return v2OK(
		param("transaction_id", o.transactionID), param("out_trade_no", o.outTradeNo),
		param("out_refund_no", r.outRefundNo), param("refund_id", r.refundID),
		param("refund_fee", amount), param("settlement_refund_fee", amount),
		param("total_fee", orderTotal), param("settlement_total_fee", orderTotal), param("fee_type", "CNY"),
		param("cash_fee", orderTotal), param("cash_fee_type", "CNY"), param("cash_refund_fee", amount),
		param("coupon_refund_fee", "0"), param("coupon_refund_count", "0"),
	)
}

// v2RefundQuery answers /pay/refundquery by refund_id, out_refund_no, transaction_id or
// out_trade_no (in that order of precedence, as WeChat Pay documents), listing the refunds found.
func (e *Emulator) v2RefundQuery(c *v2Call) *v2Result {
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	var refunds []*mchRefund
	var o *mchOrder
	switch {
	case c.get("refund_id") != "":
		if r := c.m.refundIDs[c.get("refund_id")]; r != nil {
			refunds, o = []*mchRefund{r}, r.order
		}
	case c.get("out_refund_no") != "":
		if r := c.m.refunds[c.get("out_refund_no")]; r != nil {
			refunds, o = []*mchRefund{r}, r.order
		}
	case c.get("transaction_id") != "" || c.get("out_trade_no") != "":
		if o = c.m.findOrder(c.get("transaction_id"), c.get("out_trade_no")); o != nil {
			refunds = o.refunds
		}
	default:
		return v2Fail("refund_id、out_refund_no、transaction_id、out_trade_no必须传一个")
	}
	if len(refunds) == 0 {
		return v2Business(errRefundNotExist)
	}
	o.settleRefunds(c.now)
	total := strconv.FormatInt(o.total, 10)
	var sum int64
	fields := []signer.Param{
		param("transaction_id", o.transactionID), param("out_trade_no", o.outTradeNo),
		param("total_fee", total), param("cash_fee", total), param("fee_type", "CNY"),
		param("refund_count", strconv.Itoa(len(refunds))), param("total_refund_count", strconv.Itoa(len(o.refunds))),
	}
	for i, r := range refunds {
		n := "_" + strconv.Itoa(i)
		amount := strconv.FormatInt(r.amount, 10)
		sum += r.amount
		fields = append(fields,
			param("out_refund_no"+n, r.outRefundNo), param("refund_id"+n, r.refundID),
			param("refund_channel"+n, "ORIGINAL"), param("refund_fee"+n, amount),
			param("settlement_refund_fee"+n, amount), param("refund_status"+n, r.status),
			param("refund_account"+n, "REFUND_SOURCE_UNSETTLED_FUNDS"),
			param("refund_recv_accout"+n, "支付用户的零钱"))
		if !r.succeeded.IsZero() {
			fields = append(fields, param("refund_success_time"+n, billTime(r.succeeded)))
		}
	}
	fields = append(fields, param("refund_fee", strconv.FormatInt(sum, 10)))
	return v2OK(fields...)
}
