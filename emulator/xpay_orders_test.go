package emulator

import (
	"fmt"
	"testing"
)

func TestCashOrders(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	bob, _ := h.login(appA, "bob")
	res := h.pay(appA, alice, ModeShortSeriesGoods, goodsSignData(0, "goods-order-01", 300, 2))

	q := func(fields string) obj { return h.xpay("/xpay/query_order", `{"env":0`+fields+`}`) }
	byID := fmt.Sprintf(`,"openid":%q,"order_id":"goods-order-01"`, alice)
	byWx := fmt.Sprintf(`,"openid":%q,"wx_order_id":%q`, alice, res.WxOrderID)

	m := q(byID)
	expectErr(t, m, 0)
	o := m.sub("order")
	want := map[string]int64{"status": 2, "order_fee": 600, "paid_fee": 600, "left_fee": 600, "refund_fee": 0, "env_type": 1, "biz_type": 0, "order_type": 0,
		"create_time": startTime.Unix(), "paid_time": startTime.Unix()}
	for k, v := range want {
		if o.num(k) != v {
			t.Errorf("order.%s = %d, want %d", k, o.num(k), v)
		}
	}
	for _, k := range []string{"update_time", "coupon_fee", "provide_time", "biz_meta", "token", "channel_order_id", "wxpay_order_id", "sett_time", "sett_state", "platform_fee_fen", "cps_fee_fen"} {
		if _, ok := o[k]; !ok {
			t.Errorf("order lacks %q", k)
		}
	}
	if o.str("order_id") != "goods-order-01" || o.str("wx_order_id") != res.WxOrderID {
		t.Errorf("order ids = %v", o)
	}
	if m := q(byWx); m.sub("order").str("order_id") != "goods-order-01" {
		t.Errorf("query by wx_order_id = %v", m)
	}
	for name, fields := range map[string]string{
		"both ids":      byID + fmt.Sprintf(`,"wx_order_id":%q`, res.WxOrderID),
		"neither id":    fmt.Sprintf(`,"openid":%q`, alice),
		"unknown id":    fmt.Sprintf(`,"openid":%q,"order_id":"nope-nope-01"`, alice),
		"another user":  fmt.Sprintf(`,"openid":%q,"order_id":"goods-order-01"`, bob),
		"wrong id type": `,"order_id":12345678`,
	} {
		t.Run("query_order "+name, func(t *testing.T) { expectErr(t, q(fields), 268490002) })
	}

	// Delivery: 2 -> 4, idempotent.
	for i := 0; i < 2; i++ {
		expectErr(t, h.xpay("/xpay/notify_provide_goods", `{"env":0,"order_id":"goods-order-01"}`), 0)
	}
	if o := q(byID).sub("order"); o.num("status") != 4 || o.num("provide_time") == 0 {
		t.Errorf("after notify_provide_goods: %v", o)
	}
	expectErr(t, h.xpay("/xpay/notify_provide_goods", `{"env":0,"order_id":"nope-nope-01"}`), 268490002)

	refund := func(refundID string, left, fee int64) obj {
		return h.xpay("/xpay/refund_order", fmt.Sprintf(
			`{"openid":%q,"order_id":"goods-order-01","refund_order_id":%q,"left_fee":%d,"refund_fee":%d,"biz_meta":"","refund_reason":"3","req_from":"2","env":0}`,
			alice, refundID, left, fee))
	}
	steps := []struct {
		name string
		do   func() obj
		want int64
	}{
		{"left_fee mismatch", func() obj { return refund("refund-0001", 599, 100) }, 268490016},
		{"refund_fee zero", func() obj { return refund("refund-0001", 600, 0) }, 268490002},
		{"refund_fee above left_fee", func() obj { return refund("refund-0001", 600, 601) }, 268490002},
		{"refund_order_id too short", func() obj { return refund("r-1", 600, 100) }, 268490002},
		{"refund_order_id bad character", func() obj { return refund("refund#0001", 600, 100) }, 268490002},
		{"bad refund_reason", func() obj {
			return h.xpay("/xpay/refund_order", fmt.Sprintf(`{"openid":%q,"order_id":"goods-order-01","refund_order_id":"refund-0009","left_fee":600,"refund_fee":1,"refund_reason":"9","req_from":"1","env":0}`, alice))
		}, 268490002},
		{"missing left_fee", func() obj {
			return h.xpay("/xpay/refund_order", fmt.Sprintf(`{"openid":%q,"order_id":"goods-order-01","refund_order_id":"refund-0009","refund_fee":1,"env":0}`, alice))
		}, 268490002},
		{"refund 100", func() obj { return refund("refund-0001", 600, 100) }, 0},
		{"stale left_fee", func() obj { return refund("refund-0002", 600, 100) }, 268490016},
		{"refund the rest", func() obj { return refund("refund-0002", 500, 500) }, 0},
		{"nothing left", func() obj { return refund("refund-0003", 0, 1) }, 268490002},
	}
	var first obj
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			m := s.do()
			expectErr(t, m, s.want)
			if s.name == "refund 100" {
				first = m
			}
		})
	}
	if first.str("refund_order_id") != "refund-0001" || first.str("refund_wx_order_id") == "" ||
		first.str("pay_order_id") != "goods-order-01" || first.str("pay_wx_order_id") != res.WxOrderID {
		t.Fatalf("refund answer %v", first)
	}
	// The same refund_order_id again gets the same answer, whatever the current left_fee.
	again := refund("refund-0001", 600, 100)
	expectErr(t, again, 0)
	if again.str("refund_wx_order_id") != first.str("refund_wx_order_id") {
		t.Errorf("retried refund answer %v, want %v", again, first)
	}
	if o := q(byID).sub("order"); o.num("status") != 5 || o.num("left_fee") != 0 || o.num("refund_fee") != 600 {
		t.Errorf("after refunds: %v", o)
	}
}

func TestActivitySellingPrice(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	sd := fmt.Sprintf(`{"offerId":%q,"buyQuantity":3,"env":0,"currencyType":"CNY","productId":"sku-1","goodsPrice":100,"activitySellingPrice":40,"outTradeNo":"activity-01"}`, appA.OfferID)
	h.pay(appA, alice, ModeShortSeriesGoods, sd)
	o := h.xpay("/xpay/query_order", fmt.Sprintf(`{"openid":%q,"env":0,"order_id":"activity-01"}`, alice)).sub("order")
	if o.num("order_fee") != 300 || o.num("paid_fee") != 120 || o.num("left_fee") != 120 || o.num("coupon_fee") != 180 {
		t.Errorf("order = %v", o)
	}
}
