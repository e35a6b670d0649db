package emulator

import (
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// RequestPayment is what a mini program passes to wx.requestPayment, plus its own appid (which
// the WeChat client knows and signs with).
type RequestPayment struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"` // Unix seconds, as a string
	NonceStr  string `json:"nonceStr"`  // at most 32 characters
	Package   string `json:"package"`   // "prepay_id=<prepay_id>"
	SignType  string `json:"signType"`  // "RSA" for APIv3 orders; "MD5" (the default) or "HMAC-SHA256" for APIv2
	PaySign   string `json:"paySign"`
}

// maxPaySkew is how far timeStamp may be from the clock.
const maxPaySkew = 5 * time.Minute

// RequestPaymentClient does what wx.requestPayment does inside WeChat: it checks the
// parameters and verifies paySign like the client (APIv3 orders: signType "RSA" and
// SHA256withRSA over appId\ntimeStamp\nnonceStr\npackage\n with the merchant key; APIv2 orders:
// the v2 sign over appId, nonceStr, package, signType and timeStamp with the sign type used at
// unifiedorder). The package must name a live prepay_id of an unpaid order of that appid, and
// timeStamp be within five minutes of the clock. Then the user pays the order, and the payment
// notification is queued to the order's notify_url. It returns "requestPayment:ok" and true,
// or "requestPayment:fail <reason>" and false.
func (e *Emulator) RequestPaymentClient(req RequestPayment) (errMsg string, ok bool) {
	if reason := e.requestPayment(req); reason != "" {
		return "requestPayment:fail " + reason, false
	}
	return "requestPayment:ok", true
}

// requestPayment runs a client payment and returns why it failed, or "".
func (e *Emulator) requestPayment(req RequestPayment) string {
	for _, f := range []struct{ name, value string }{
		{"appId", req.AppID}, {"timeStamp", req.TimeStamp}, {"nonceStr", req.NonceStr},
		{"package", req.Package}, {"paySign", req.PaySign},
	} {
		if f.value == "" {
			return "parameter error: parameter." + f.name + " should be String instead of Undefined"
		}
	}
	if len(req.NonceStr) > 32 {
		return "nonceStr长度不能超过32个字符"
	}
	id, found := strings.CutPrefix(req.Package, "prepay_id=")
	if !found || id == "" {
		return "package格式错误，应为prepay_id=***"
	}
	now := e.now()
	ts, err := strconv.ParseInt(req.TimeStamp, 10, 64)
	if err != nil {
		return "timeStamp格式错误"
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > maxPaySkew || skew < -maxPaySkew {
		return "timeStamp与当前时间相差超过5分钟"
	}
	e.mch.mu.Lock()
	p := e.mch.prepays[id]
	var m *merchantState
	var appID string
	if p != nil {
		m, appID = p.order.m, p.order.appID
	}
	e.mch.mu.Unlock()
	if p == nil {
		return "prepay_id无效"
	}
	if appID != req.AppID {
		return "appId与下单时的appid不一致"
	}
	if m.partner != nil { // a sub-merchant's order: the service provider signed (mch_partner.go)
		m = m.partner.sp
	}
	if reason := verifyPaySign(m, p.signType, req); reason != "" {
		return reason
	}
	var ns notices
	defer e.flush(&ns) // after the unlock below
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	o := p.order
	switch {
	case o.state == tradeSuccess || o.state == tradeRefund:
		return "该订单已支付"
	case o.state == tradeClosed:
		return "该订单已关闭"
	case !now.Before(p.expires):
		return "prepay_id已过期，请重新下单"
	case !o.expiresAt.IsZero() && !now.Before(o.expiresAt):
		return "订单已过支付截止时间"
	}
	o.pay(now)
	ns.add(paidNotice(o))
	return ""
}

// verifyPaySign checks req.SignType against the prepay's and verifies paySign with the
// merchant's key. It returns why it failed, or "".
func verifyPaySign(m *merchantState, prepaySignType string, req RequestPayment) string {
	signType := req.SignType
	if signType == "" {
		signType = signer.V2SignMD5 // wx.requestPayment's default
	}
	if signType != prepaySignType {
		return "支付验证签名失败: signType应为" + prepaySignType
	}
	if signType == signTypeRSA {
		msg := signer.AppendPaySignMessage(nil, req.AppID, req.TimeStamp, req.NonceStr, req.Package)
		if m.verifyAnyAPICert(msg, req.PaySign) != nil {
			return "支付验证签名失败"
		}
		return ""
	}
	if m.v2 == nil {
		return "支付验证签名失败"
	}
	params := []signer.Param{
		{Key: "appId", Value: req.AppID}, {Key: "nonceStr", Value: req.NonceStr},
		{Key: "package", Value: req.Package}, {Key: "signType", Value: signType},
		{Key: "timeStamp", Value: req.TimeStamp}, {Key: "sign", Value: req.PaySign},
	}
	if m.v2.Verify(signType, params) != nil {
		return "支付验证签名失败"
	}
	return ""
}
