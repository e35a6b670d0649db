package emulator

import (
	"strconv"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// The notifications the emulator sends on its own. A state change records what its
// notification needs while the state's lock is held; the notification is built (signed,
// encrypted) and queued by flush once the lock is released:
//
//   - an order becomes paid (RequestPaymentClient, PayOrder) with a notify_url: APIv3 orders get
//     TRANSACTION.SUCCESS, APIv2 orders the pay notification signed with the order's sign type;
//   - a refund is accepted: WeChat Pay settles it (PROCESSING -> SUCCESS) right after the answer
//     that accepted it, and that is when its notification is queued — APIv3: REFUND.SUCCESS to the
//     refund's notify_url, else the order's; APIv2: the refund notification, only to the refund's
//     notify_url (APIv2 has no per-order refund URL). A repeated refund request notifies nothing;
//   - xpay events when the app has a PushURL (notify_xpay.go).

// notice is one notification to build: its kind and URL, and how to build it.
type notice struct {
	kind, url string
	build     func(e *Emulator) (Notification, error)
}

// notices are the notifications a locked section produced, waiting for flush.
type notices []*notice

// add records n; nil (nothing to send) is ignored.
func (ns *notices) add(n *notice) {
	if n != nil {
		*ns = append(*ns, n)
	}
}

// flush builds and queues the notifications. Call it without holding the emulator's locks. A
// notification that cannot be built is recorded as given up with the reason.
func (e *Emulator) flush(ns *notices) {
	for _, no := range *ns {
		n, err := no.build(e)
		if err != nil {
			e.notify.failed(Notification{Kind: no.kind, URL: no.url}, err)
			continue
		}
		e.Send(n)
	}
	*ns = nil
}

// failed records a notification that could not be built as given up.
func (nt *notifier) failed(n Notification, err error) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	nt.list = append(nt.list, &Delivery{Notification: cloneNotification(n), GaveUp: true, LastError: err.Error()})
	nt.finished++
	nt.changed.Broadcast()
}

// paidNotice returns the notification of o's payment, or nil when o has no notify_url. A
// sub-merchant's order is notified with the partner transaction (sp_mchid, sub_mchid, sp_appid,
// sub_appid, payer.sp_openid / sub_openid), signed and encrypted for its service provider
// (wechatpay.md §10.2). Callers hold mchState.mu.
func paidNotice(o *mchOrder) *notice {
	if o.notifyURL == "" {
		return nil
	}
	if o.signType == signTypeRSA {
		if o.m.partner != nil {
			return newV3Notice(o.m.partner.sp.cfg.MchID, EventTransactionSuccess, o.notifyURL, partnerView(o.m, o))
		}
		return newV3Notice(o.m.cfg.MchID, EventTransactionSuccess, o.notifyURL, transactionView(o))
	}
	mchID, url := o.m.cfg.MchID, o.notifyURL
	params := v2PayParams(o)
	return &notice{kind: KindV2, url: url, build: func(e *Emulator) (Notification, error) {
		return e.BuildV2PayNotification(mchID, params, url)
	}}
}

// v2PayParams are the fields of o's APIv2 pay notification (wechatpay.md §8.1). Callers hold
// mchState.mu.
func v2PayParams(o *mchOrder) []signer.Param {
	total := strconv.FormatInt(o.total, 10)
	ps := []signer.Param{param("appid", o.appID)}
	if o.signType != signer.V2SignMD5 {
		ps = append(ps, param("sign_type", o.signType)) // MD5 is the default and goes unnamed
	}
	return append(ps,
		param("result_code", "SUCCESS"), param("openid", o.openID), param("is_subscribe", "N"),
		param("trade_type", "JSAPI"), param("bank_type", "OTHERS"), param("total_fee", total),
		param("fee_type", "CNY"), param("cash_fee", total), param("cash_fee_type", "CNY"),
		param("transaction_id", o.transactionID), param("out_trade_no", o.outTradeNo),
		param("attach", o.attach), param("time_end", o.paidAt.In(beijing).Format(v2TimeLayout)))
}

// settleNewRefund settles a refund just accepted over APIv3 (v3) or APIv2 and returns its
// notification; a refund returned again for a repeated request was settled (and notified)
// before, and returns nil. Callers hold mchState.mu.
func settleNewRefund(r *mchRefund, now time.Time, v3 bool) *notice {
	if r.status != refundProcessing {
		return nil
	}
	r.order.settleRefunds(now)
	if v3 {
		return v3RefundNotice(r)
	}
	return v2RefundNotice(r)
}

// v3RefundResource is the plaintext resource of a REFUND.* notification (wechatpay.md §3.3): a
// direct merchant's names mchid, a sub-merchant's sp_mchid and sub_mchid instead (§10.2).
type v3RefundResource struct {
	SpMchID             string               `json:"sp_mchid,omitempty"`
	SubMchID            string               `json:"sub_mchid,omitempty"`
	MchID               string               `json:"mchid,omitempty"`
	OutTradeNo          string               `json:"out_trade_no"`
	TransactionID       string               `json:"transaction_id"`
	OutRefundNo         string               `json:"out_refund_no"`
	RefundID            string               `json:"refund_id"`
	RefundStatus        string               `json:"refund_status"`
	SuccessTime         string               `json:"success_time,omitempty"`
	UserReceivedAccount string               `json:"user_received_account"`
	Amount              v3RefundNoticeAmount `json:"amount"`
}

// v3RefundNoticeAmount is the amount of a refund notification's resource.
type v3RefundNoticeAmount struct {
	Total       int64 `json:"total"`
	Refund      int64 `json:"refund"`
	PayerTotal  int64 `json:"payer_total"`
	PayerRefund int64 `json:"payer_refund"`
}

// v3RefundNotice returns r's REFUND.SUCCESS notification to the refund's notify_url, else the
// order's; a sub-merchant's refund is notified to its service provider. Callers hold
// mchState.mu.
func v3RefundNotice(r *mchRefund) *notice {
	o := r.order
	url := r.notifyURL
	if url == "" {
		url = o.notifyURL
	}
	if url == "" {
		return nil
	}
	res := &v3RefundResource{
		MchID: o.m.cfg.MchID, OutTradeNo: o.outTradeNo, TransactionID: o.transactionID,
		OutRefundNo: r.outRefundNo, RefundID: r.refundID, RefundStatus: r.status,
		UserReceivedAccount: "支付用户零钱",
		Amount:              v3RefundNoticeAmount{Total: o.total, Refund: r.amount, PayerTotal: o.total, PayerRefund: r.amount},
	}
	if !r.succeeded.IsZero() {
		res.SuccessTime = rfc3339(r.succeeded)
	}
	notified := o.m.cfg.MchID
	if o.m.partner != nil {
		notified = o.m.partner.sp.cfg.MchID
		res.SpMchID, res.SubMchID, res.MchID = notified, o.m.cfg.MchID, ""
	}
	return newV3Notice(notified, EventRefundSuccess, url, res)
}

// newV3Notice returns the APIv3 notification of eventType with the resource (marshalled now, under
// the caller's lock) for merchant mchID, sent to url.
func newV3Notice(mchID, eventType, url string, resource any) *notice {
	plain, err := marshalV3(resource)
	return &notice{kind: KindV3, url: url, build: func(e *Emulator) (Notification, error) {
		if err != nil {
			return Notification{}, err
		}
		return e.BuildV3Notification(mchID, eventType, plain, url, NotifyOptions{})
	}}
}

// v2RefundNotice returns r's APIv2 refund notification, or nil when the refund request had no
// notify_url. Callers hold mchState.mu.
func v2RefundNotice(r *mchRefund) *notice {
	if r.notifyURL == "" {
		return nil
	}
	o := r.order
	total, amount := strconv.FormatInt(o.total, 10), strconv.FormatInt(r.amount, 10)
	info := []signer.Param{
		param("transaction_id", o.transactionID), param("out_trade_no", o.outTradeNo),
		param("refund_id", r.refundID), param("out_refund_no", r.outRefundNo),
		param("total_fee", total), param("settlement_total_fee", total),
		param("refund_fee", amount), param("settlement_refund_fee", amount),
		param("refund_status", r.status), param("success_time", billTime(r.succeeded)),
		param("refund_recv_accout", "支付用户零钱"), param("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS"),
		param("refund_request_source", "API"),
	}
	mchID, url := o.m.cfg.MchID, r.notifyURL
	return &notice{kind: KindV2, url: url, build: func(e *Emulator) (Notification, error) {
		return e.BuildV2RefundNotification(mchID, info, url)
	}}
}
