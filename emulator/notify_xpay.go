package emulator

import (
	"encoding/xml"
	"fmt"
	"time"
)

// xpay events (xpay.md §4.5), pushed to an app's PushURL through message push:
//
//   - RequestVirtualPayment, short_series_goods: xpay_goods_deliver_notify;
//   - RequestVirtualPayment, short_series_coin: xpay_coin_pay_notify;
//   - refund_order (a new refund, not a retry): xpay_refund_notify, the refund succeeding at once.
//
// Field names are the official ones (OpenId, WeChatPayInfo, ...). RetryTimes stays 0: retries
// replay the same push.

// xpay event names.
const (
	EventGoodsDeliver = "xpay_goods_deliver_notify" // 道具发货推送
	EventCoinPay      = "xpay_coin_pay_notify"      // 代币支付推送
	EventXpayRefund   = "xpay_refund_notify"        // 退款推送
)

// pushSender is the FromUserName of xpay events: a fixed WeChat account, not the user (the
// user's openid is OpenId). The emulator's own value.
const pushSender = "oWxPay0000000000000000000000"

// coinPriceFen is what one coin costs in the emulator (1 CNY = 10 coins), for CoinInfo prices.
const coinPriceFen = 10

// cdata is a string written in XML as a CDATA section, as WeChat writes text (and in JSON as a
// plain string).
type cdata string

// MarshalXML writes s as <name><![CDATA[s]]></name>.
func (s cdata) MarshalXML(enc *xml.Encoder, start xml.StartElement) error {
	return enc.EncodeElement(struct {
		Text string `xml:",cdata"`
	}{string(s)}, start)
}

// pushEventHead is the head every pushed event starts with.
type pushEventHead struct {
	ToUserName   cdata `json:"ToUserName" xml:"ToUserName"`
	FromUserName cdata `json:"FromUserName" xml:"FromUserName"`
	CreateTime   int64 `json:"CreateTime" xml:"CreateTime"`
	MsgType      cdata `json:"MsgType" xml:"MsgType"`
	Event        cdata `json:"Event" xml:"Event"`
}

// weChatPayInfo is the WeChat Pay payment behind an xpay purchase.
type weChatPayInfo struct {
	MchOrderNo    cdata `json:"MchOrderNo" xml:"MchOrderNo"`
	TransactionID cdata `json:"TransactionId" xml:"TransactionId"`
	PaidTime      int64 `json:"PaidTime" xml:"PaidTime"`
}

// goodsInfo is the item of a goods purchase; prices are the order's totals in fen.
type goodsInfo struct {
	ProductID   cdata `json:"ProductId" xml:"ProductId"`
	Quantity    int64 `json:"Quantity" xml:"Quantity"`
	OrigPrice   int64 `json:"OrigPrice" xml:"OrigPrice"`
	ActualPrice int64 `json:"ActualPrice" xml:"ActualPrice"`
	Attach      cdata `json:"Attach" xml:"Attach"`
}

// paidEvent is what the two payment events share after the head: the payer, the order and the
// WeChat Pay details.
type paidEvent struct {
	OpenID        cdata         `json:"OpenId" xml:"OpenId"`
	OutTradeNo    cdata         `json:"OutTradeNo" xml:"OutTradeNo"`
	Env           int           `json:"Env" xml:"Env"`
	WeChatPayInfo weChatPayInfo `json:"WeChatPayInfo" xml:"WeChatPayInfo"`
}

// goodsDeliverEvent is xpay_goods_deliver_notify.
type goodsDeliverEvent struct {
	XMLName xml.Name `json:"-" xml:"xml"`
	pushEventHead
	paidEvent
	GoodsInfo goodsInfo `json:"GoodsInfo" xml:"GoodsInfo"`
}

// coinInfo is the coins of a top-up; prices in fen.
type coinInfo struct {
	Quantity    int64 `json:"Quantity" xml:"Quantity"`
	OrigPrice   int64 `json:"OrigPrice" xml:"OrigPrice"`
	ActualPrice int64 `json:"ActualPrice" xml:"ActualPrice"`
	Attach      cdata `json:"Attach" xml:"Attach"`
}

// coinPayEvent is xpay_coin_pay_notify.
type coinPayEvent struct {
	XMLName xml.Name `json:"-" xml:"xml"`
	pushEventHead
	paidEvent
	CoinInfo coinInfo `json:"CoinInfo" xml:"CoinInfo"`
}

// xpayRefundEvent is xpay_refund_notify.
type xpayRefundEvent struct {
	XMLName xml.Name `json:"-" xml:"xml"`
	pushEventHead
	OpenID                   cdata `json:"OpenId" xml:"OpenId"`
	WxRefundID               cdata `json:"WxRefundId" xml:"WxRefundId"`
	MchRefundID              cdata `json:"MchRefundId" xml:"MchRefundId"`
	WxOrderID                cdata `json:"WxOrderId" xml:"WxOrderId"`
	MchOrderID               cdata `json:"MchOrderId" xml:"MchOrderId"`
	RefundFee                int64 `json:"RefundFee" xml:"RefundFee"`
	RetCode                  int   `json:"RetCode" xml:"RetCode"`
	RetMsg                   cdata `json:"RetMsg" xml:"RetMsg"`
	RefundStartTimestamp     int64 `json:"RefundStartTimestamp" xml:"RefundStartTimestamp"`
	RefundSuccTimestamp      int64 `json:"RefundSuccTimestamp" xml:"RefundSuccTimestamp"`
	WxpayRefundTransactionID cdata `json:"WxpayRefundTransactionId" xml:"WxpayRefundTransactionId"`
	RetryTimes               int   `json:"RetryTimes" xml:"RetryTimes"`
}

// head returns the head of an event pushed with these settings, created at now.
func (ps *pushSettings) head(event string, now time.Time) pushEventHead {
	return pushEventHead{
		ToUserName: cdata(ps.originalID), FromUserName: pushSender, CreateTime: now.Unix(), MsgType: "event", Event: cdata(event),
	}
}

// pushNotice returns the push of event to a's PushURL, or nil when a pushes nothing. event
// must share no memory with the emulator's state.
func pushNotice(a *appState, event any) *notice {
	ps := a.push
	if ps.url == "" {
		return nil
	}
	return &notice{kind: KindPush, url: ps.url, build: func(e *Emulator) (Notification, error) {
		msg, err := encodeEvent(ps.format, event)
		if err != nil {
			return Notification{}, err
		}
		return e.buildPush(a, msg, ps.url, NotifyOptions{})
	}}
}

// encodeEvent writes an event in a push format: compact JSON without HTML escaping, or XML
// with CDATA strings.
func encodeEvent(format string, event any) ([]byte, error) {
	if format == pushXML {
		b, err := xml.Marshal(event)
		if err != nil {
			return nil, fmt.Errorf("emulator: encode push event: %w", err)
		}
		return b, nil
	}
	return marshalV3(event)
}

// goodsDeliverNotice returns the xpay_goods_deliver_notify push of a paid goods order. Callers
// hold Emulator.mu.
func goodsDeliverNotice(a *appState, env int, o *cashOrder, f *signDataFields, now time.Time) *notice {
	return pushNotice(a, &goodsDeliverEvent{
		pushEventHead: a.push.head(EventGoodsDeliver, now),
		paidEvent: paidEvent{OpenID: cdata(o.openid), OutTradeNo: cdata(o.OrderID), Env: env,
			WeChatPayInfo: weChatPayInfo{MchOrderNo: cdata(o.ChannelOrderID), TransactionID: cdata(o.WxpayOrderID), PaidTime: o.PaidTime}},
		GoodsInfo: goodsInfo{
			ProductID: cdata(f.ProductID), Quantity: f.BuyQuantity, OrigPrice: o.OrderFee, ActualPrice: o.PaidFee, Attach: cdata(f.Attach),
		},
	})
}

// coinPayNotice returns the xpay_coin_pay_notify push of a coin top-up.
func coinPayNotice(a *appState, env int, openid string, f *signDataFields, now time.Time) *notice {
	price := f.BuyQuantity * coinPriceFen
	return pushNotice(a, &coinPayEvent{
		pushEventHead: a.push.head(EventCoinPay, now),
		paidEvent: paidEvent{OpenID: cdata(openid), OutTradeNo: cdata(f.OutTradeNo), Env: env,
			WeChatPayInfo: weChatPayInfo{MchOrderNo: cdata(newWxID("mch", now)), TransactionID: cdata(newWxID("4200", now)), PaidTime: now.Unix()}},
		CoinInfo: coinInfo{Quantity: f.BuyQuantity, OrigPrice: price, ActualPrice: price, Attach: cdata(f.Attach)},
	})
}

// xpayRefundNotice returns the xpay_refund_notify push of a refund_order that succeeded at
// now. Callers hold Emulator.mu.
func xpayRefundNotice(a *appState, o *cashOrder, ans *refundAnswer, fee int64, now time.Time) *notice {
	return pushNotice(a, &xpayRefundEvent{
		pushEventHead: a.push.head(EventXpayRefund, now),
		OpenID:        cdata(o.openid), WxRefundID: cdata(ans.RefundWxOrderID), MchRefundID: cdata(ans.RefundOrderID),
		WxOrderID: cdata(o.WxOrderID), MchOrderID: cdata(o.OrderID), RefundFee: fee, RetCode: 0, RetMsg: "success",
		RefundStartTimestamp: now.Unix(), RefundSuccTimestamp: now.Unix(),
		WxpayRefundTransactionID: cdata(newWxID("50300", now)),
	})
}
