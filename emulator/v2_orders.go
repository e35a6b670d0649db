package emulator

import (
	"strconv"
	"time"
)

// APIv2 orders: unifiedorder, orderquery, closeorder (wechatpay.md §7.3, §7.4). They share the
// merchant's order book with APIv3.

// v2TimeLayout is APIv2's time format (Beijing time).
const v2TimeLayout = "20060102150405"

// v2Required returns the first of keys missing from c, or "".
func v2Required(c *v2Call, keys ...string) string {
	for _, k := range keys {
		if c.get(k) == "" {
			return k
		}
	}
	return ""
}

// parseFen parses a positive integer amount in fen.
func parseFen(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// v2UnifiedOrder answers /pay/unifiedorder for trade_type JSAPI (mini program).
func (e *Emulator) v2UnifiedOrder(c *v2Call) *v2Result {
	if k := v2Required(c, "body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type"); k != "" {
		return v2Fail("缺少参数" + k)
	}
	total, ok := parseFen(c.get("total_fee"))
	var expires time.Time
	switch {
	case len(c.get("body")) > 128:
		return v2Fail("body参数长度有误")
	case !lengthIn(c.get("out_trade_no"), 1, 32) || !onlyChars(c.get("out_trade_no"), "_-|*@"):
		return v2Fail("out_trade_no参数格式错误")
	case !ok:
		return v2Fail("invalid total_fee")
	case c.get("fee_type") != "" && c.get("fee_type") != "CNY":
		return v2Fail("invalid fee_type")
	case !validNotifyURL(c.get("notify_url"), false):
		return v2Fail("invalid notify_url")
	case c.get("trade_type") != "JSAPI":
		return v2Fail("invalid trade_type: the emulator serves JSAPI (mini program) orders only")
	case c.get("openid") == "":
		return v2Fail("JSAPI支付必须传openid")
	case len(c.get("attach")) > 127:
		return v2Fail("attach参数长度有误")
	}
	if s := c.get("time_expire"); s != "" {
		t, err := time.ParseInLocation(v2TimeLayout, s, beijing)
		if err != nil {
			return v2Fail("time_expire时间格式错误")
		}
		if !t.After(c.now) {
			return v2Fail("time_expire时间过短")
		}
		expires = t
	}
	t := orderTerms{
		appID: c.get("appid"), outTradeNo: c.get("out_trade_no"), description: c.get("body"),
		attach: c.get("attach"), notifyURL: c.get("notify_url"), openID: c.get("openid"),
		total: total, expiresAt: expires,
	}
	e.mch.mu.Lock()
	id, perr := e.placeOrder(c.m, t, c.signType, c.now)
	e.mch.mu.Unlock()
	if perr != nil {
		return v2Business(perr)
	}
	return v2OK(param("trade_type", "JSAPI"), param("prepay_id", id))
}

// v2OrderQuery answers /pay/orderquery by transaction_id or out_trade_no.
func (e *Emulator) v2OrderQuery(c *v2Call) *v2Result {
	if c.get("transaction_id") == "" && c.get("out_trade_no") == "" {
		return v2Fail("transaction_id和out_trade_no必须传一个")
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	o := c.m.findOrder(c.get("transaction_id"), c.get("out_trade_no"))
	if o == nil {
		return v2Business(errPayOrderNotExist)
	}
	o.settleRefunds(c.now)
	total := strconv.FormatInt(o.total, 10)
	res := v2OK(
		param("out_trade_no", o.outTradeNo), param("attach", o.attach), param("total_fee", total),
		param("fee_type", "CNY"), param("trade_state", o.state), param("trade_state_desc", tradeStateDesc[o.state]),
	)
	if o.transactionID != "" {
		res.fields = append(res.fields,
			param("openid", o.openID), param("is_subscribe", "N"), param("trade_type", "JSAPI"),
			param("bank_type", "OTHERS"), param("cash_fee", total), param("cash_fee_type", "CNY"),
			param("transaction_id", o.transactionID), param("time_end", o.paidAt.In(beijing).Format(v2TimeLayout)))
	}
	return res
}

// v2CloseOrder answers /pay/closeorder.
func (e *Emulator) v2CloseOrder(c *v2Call) *v2Result {
	if c.get("out_trade_no") == "" {
		return v2Fail("缺少参数out_trade_no")
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	o := c.m.orders[c.get("out_trade_no")]
	switch {
	case o == nil:
		return v2Business(errPayOrderNotExist)
	case o.state == tradeSuccess || o.state == tradeRefund:
		return v2Business(errPayOrderPaid)
	case o.state == tradeClosed:
		return v2Business(errPayOrderClosed)
	}
	o.state = tradeClosed
	return v2OK(param("result_msg", "OK"))
}
