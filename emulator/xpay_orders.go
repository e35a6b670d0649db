package emulator

import "time"

// Cash-order ("现金单") endpoints: query_order, notify_provide_goods, refund_order. Cash orders are
// created by RequestVirtualPayment in mode short_series_goods.

// Order status values used by the emulator (xpay.md §1.3).
const (
	orderPaid     = 2 // 订单已经支付，待发货
	orderProvided = 4 // 订单已发货
	orderRefunded = 5 // 订单已经退款
)

// cashOrder is one goods order; its exported fields are query_order's order object.
type cashOrder struct {
	OrderID        string `json:"order_id"`
	CreateTime     int64  `json:"create_time"`
	UpdateTime     int64  `json:"update_time"`
	Status         int    `json:"status"`
	BizType        int    `json:"biz_type"`
	OrderFee       int64  `json:"order_fee"`
	CouponFee      int64  `json:"coupon_fee"`
	PaidFee        int64  `json:"paid_fee"`
	OrderType      int    `json:"order_type"`
	RefundFee      int64  `json:"refund_fee"`
	PaidTime       int64  `json:"paid_time"`
	ProvideTime    int64  `json:"provide_time"`
	BizMeta        string `json:"biz_meta"`
	EnvType        int    `json:"env_type"`
	Token          string `json:"token"`
	LeftFee        int64  `json:"left_fee"`
	WxOrderID      string `json:"wx_order_id"`
	ChannelOrderID string `json:"channel_order_id"`
	WxpayOrderID   string `json:"wxpay_order_id"`
	SettTime       int64  `json:"sett_time"`
	SettState      int    `json:"sett_state"`
	PlatformFeeFen int64  `json:"platform_fee_fen"`
	CpsFeeFen      int64  `json:"cps_fee_fen"`

	openid string
}

// newCashOrder records a paid goods order. Callers hold Emulator.mu.
func (st *envState) newCashOrder(env int, openid, outTradeNo string, orderFee, paidFee int64, now time.Time) *cashOrder {
	o := &cashOrder{
		OrderID:        outTradeNo,
		CreateTime:     now.Unix(),
		UpdateTime:     now.Unix(),
		Status:         orderPaid,
		OrderFee:       orderFee,
		CouponFee:      orderFee - paidFee,
		PaidFee:        paidFee,
		PaidTime:       now.Unix(),
		EnvType:        env + 1, // 1 production, 2 sandbox
		LeftFee:        paidFee,
		WxOrderID:      newWxID("wxo", now),
		ChannelOrderID: newWxID("mch", now),
		WxpayOrderID:   newWxID("4200", now),
		openid:         openid,
	}
	st.orders[o.OrderID] = o
	st.wxOrders[o.WxOrderID] = o
	return o
}

// findOrder looks an order up by exactly one of order_id and wx_order_id, and checks it belongs
// to openid when one is given.
func (st *envState) findOrder(orderID, wxOrderID, openid string) (*cashOrder, *apiError) {
	var o *cashOrder
	switch {
	case orderID != "" && wxOrderID != "":
		return nil, errBothOrderIDs
	case orderID != "":
		o = st.orders[orderID]
	case wxOrderID != "":
		o = st.wxOrders[wxOrderID]
	default:
		return nil, errNoOrderID
	}
	if o == nil || (openid != "" && o.openid != openid) {
		return nil, errNotFound
	}
	return o, nil
}

// orderRef is the body shape shared by query_order and notify_provide_goods.
type orderRef struct {
	OpenID    string `json:"openid"`
	OrderID   string `json:"order_id"`
	WxOrderID string `json:"wx_order_id"`
}

// queryOrderAnswer is query_order's answer.
type queryOrderAnswer struct {
	result
	Order cashOrder `json:"order"`
}

func queryOrder(c *xpayCall) (answer, *apiError) {
	var p orderRef
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	o, err := c.st.findOrder(p.OrderID, p.WxOrderID, p.OpenID)
	if err != nil {
		return nil, err
	}
	return &queryOrderAnswer{Order: *o}, nil
}

func notifyProvideGoods(c *xpayCall) (answer, *apiError) {
	var p orderRef
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	o, err := c.st.findOrder(p.OrderID, p.WxOrderID, "")
	if err != nil {
		return nil, err
	}
	switch o.Status {
	case orderPaid:
		o.Status = orderProvided
		o.ProvideTime = c.now.Unix()
		o.UpdateTime = c.now.Unix()
	case orderProvided:
		// already delivered: notifying again is harmless
	default:
		return nil, newErr(268490002, "订单状态(%d)不允许发货", o.Status)
	}
	return &result{}, nil
}

// refundParams is refund_order's body.
type refundParams struct {
	OpenID        string `json:"openid"`
	OrderID       string `json:"order_id"`
	WxOrderID     string `json:"wx_order_id"`
	RefundOrderID string `json:"refund_order_id"`
	LeftFee       *int64 `json:"left_fee"`
	RefundFee     int64  `json:"refund_fee"`
	BizMeta       string `json:"biz_meta"`
	RefundReason  string `json:"refund_reason"`
	ReqFrom       string `json:"req_from"`
}

// refundAnswer is refund_order's answer.
type refundAnswer struct {
	result
	RefundOrderID   string `json:"refund_order_id"`
	RefundWxOrderID string `json:"refund_wx_order_id"`
	PayOrderID      string `json:"pay_order_id"`
	PayWxOrderID    string `json:"pay_wx_order_id"`
}

// cashRefund is one accepted refund_order, remembered so a retry gets the same answer.
type cashRefund struct {
	order  *cashOrder
	answer refundAnswer
}

// validRefundReasons and validReqFrom are the values refund_order accepts.
var (
	validRefundReasons = map[string]bool{"0": true, "1": true, "2": true, "3": true, "4": true, "5": true}
	validReqFrom       = map[string]bool{"1": true, "2": true, "3": true}
)

// check validates refund_order's own fields (the order is looked up afterwards).
func (p *refundParams) check() *apiError {
	switch {
	case !isURLSafeID(p.RefundOrderID, 8, 32):
		return newErr(268490002, "refund_order_id长度需要在[8,32]，只允许字母、数字、'_'、'-'")
	case len(p.BizMeta) > 1024:
		return newErr(268490002, "biz_meta长度需要在[0,1024]")
	case p.RefundReason != "" && !validRefundReasons[p.RefundReason]:
		return newErr(268490002, "refund_reason只能是0-5")
	case p.ReqFrom != "" && !validReqFrom[p.ReqFrom]:
		return newErr(268490002, "req_from只能是1-3")
	case p.LeftFee == nil:
		return newErr(268490002, "缺少left_fee")
	}
	return nil
}

func refundOrder(c *xpayCall) (answer, *apiError) {
	var p refundParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	o, err := c.st.findOrder(p.OrderID, p.WxOrderID, p.OpenID)
	if err != nil {
		return nil, err
	}
	if r := c.st.refunds[p.RefundOrderID]; r != nil {
		if r.order != o {
			return nil, newErr(268490002, "refund_order_id已被其他订单使用")
		}
		ans := r.answer // a retry with the same refund_order_id: the same answer
		return &ans, nil
	}
	if o.Status != orderPaid && o.Status != orderProvided && o.Status != orderRefunded {
		return nil, newErr(268490002, "订单状态(%d)不允许退款", o.Status)
	}
	if *p.LeftFee != o.LeftFee {
		return nil, errLeftFeeMismatch
	}
	if p.RefundFee <= 0 || p.RefundFee > o.LeftFee {
		return nil, newErr(268490002, "refund_fee需要在(0,left_fee]")
	}
	o.RefundFee += p.RefundFee
	o.LeftFee -= p.RefundFee
	o.Status = orderRefunded
	o.UpdateTime = c.now.Unix()
	r := &cashRefund{order: o, answer: refundAnswer{
		RefundOrderID:   p.RefundOrderID,
		RefundWxOrderID: newWxID("wxr", c.now),
		PayOrderID:      o.OrderID,
		PayWxOrderID:    o.WxOrderID,
	}}
	c.st.refunds[p.RefundOrderID] = r
	c.notices.add(xpayRefundNotice(c.app, o, &r.answer, p.RefundFee, c.now))
	ans := r.answer
	return &ans, nil
}
