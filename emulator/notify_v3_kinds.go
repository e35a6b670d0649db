package emulator

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// On-demand APIv3 notifications of every kind wxgate forwards (wechatpay.md §10): payments,
// refunds, combine payments, service-provider (partner) payments, complaints, merchant transfers
// and profit sharing. Payments and refunds are also sent on their own when an order is paid or
// refunded (notify_pay.go); the others have no order book in the emulator, so tests and the demo
// ask for them: BuildV3Event, or POST /_emulator/pay/notify.

// APIv3 event types of the kinds below, beyond EventTransactionSuccess and EventRefundSuccess.
const (
	EventComplaintCreate   = "COMPLAINT.CREATE"          // a user filed a complaint
	EventComplaintState    = "COMPLAINT.STATE_CHANGE"    // a complaint changed state
	EventTransferFinished  = "MCHTRANSFER.BILL.FINISHED" // a merchant transfer reached its final state
	EventProfitSharing     = "PROFITSHARING.SUCCESS"     // profit shared to a receiver
	EventProfitSharingBack = "PROFITSHARING.RETURN"      // shared profit returned
)

// Kinds of on-demand notifications (V3Event.Kind).
const (
	NoticePayment       = "payment"       // TRANSACTION.SUCCESS of a direct merchant: mchid, appid
	NoticeRefund        = "refund"        // REFUND.*: mchid
	NoticeCombine       = "combine"       // TRANSACTION.SUCCESS of a combine payment: combine_mchid, sub_orders
	NoticePartner       = "partner"       // TRANSACTION.SUCCESS of a service provider: sp_mchid, sub_mchid
	NoticeComplaint     = "complaint"     // COMPLAINT.*: complaint_id, action_type, no merchant id
	NoticeTransfer      = "transfer"      // MCHTRANSFER.BILL.FINISHED: mchid, out_bill_no, state
	NoticeProfitSharing = "profitsharing" // PROFITSHARING.*: mchid (the sharer), receiver
)

// noticeKind describes one kind: its event types (the first is the default) and resource type.
type noticeKind struct {
	events       []string
	originalType string
	resource     func(m *merchantState, eventType string, t time.Time) map[string]any
}

// noticeKinds are the kinds BuildV3Event knows, with resources shaped as wechatpay.md §10 says.
var noticeKinds = map[string]noticeKind{
	NoticePayment: {[]string{EventTransactionSuccess}, "transaction", func(m *merchantState, _ string, t time.Time) map[string]any {
		now := rfc3339(t)
		return map[string]any{
			"appid": m.cfg.AppID, "mchid": m.cfg.MchID, "out_trade_no": "emu-" + randomDigits(),
			"transaction_id": newWxID("4200", t), "trade_type": "JSAPI", "trade_state": "SUCCESS",
			"trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "", "success_time": now,
			"payer":  map[string]any{"openid": "oEmulatorPayer0000000000000"},
			"amount": map[string]any{"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
		}
	}},
	NoticeRefund: {[]string{EventRefundSuccess, "REFUND.ABNORMAL", "REFUND.CLOSED"}, "refund", func(m *merchantState, eventType string, t time.Time) map[string]any {
		now := rfc3339(t)
		status := strings.TrimPrefix(eventType, "REFUND.")
		return map[string]any{
			"mchid": m.cfg.MchID, "out_trade_no": "emu-" + randomDigits(), "transaction_id": newWxID("4200", t),
			"out_refund_no": "emur-" + randomDigits(), "refund_id": newWxID("5030", t), "refund_status": status,
			"success_time": now, "user_received_account": "支付用户零钱",
			"amount": map[string]any{"total": 100, "refund": 100, "payer_total": 100, "payer_refund": 100},
		}
	}},
	NoticeCombine: {[]string{EventTransactionSuccess}, "transaction", func(m *merchantState, _ string, t time.Time) map[string]any {
		now := rfc3339(t)
		sub := func(no string) map[string]any {
			return map[string]any{
				"mchid": m.cfg.MchID, "trade_type": "JSAPI", "trade_state": "SUCCESS", "bank_type": "OTHERS",
				"attach": "", "success_time": now, "transaction_id": newWxID("4200", t), "out_trade_no": no,
				"amount": map[string]any{"total_amount": 50, "payer_amount": 50, "currency": "CNY", "payer_currency": "CNY"},
			}
		}
		return map[string]any{
			"combine_appid": m.cfg.AppID, "combine_mchid": m.cfg.MchID, "combine_out_trade_no": "emuc-" + randomDigits(),
			"combine_payer_info": map[string]any{"openid": "oEmulatorPayer0000000000000"},
			"scene_info":         map[string]any{"device_id": "POS1:1"},
			"sub_orders":         []any{sub("emuc-1-" + randomDigits()), sub("emuc-2-" + randomDigits())},
		}
	}},
	NoticePartner: {[]string{EventTransactionSuccess}, "transaction", func(m *merchantState, _ string, t time.Time) map[string]any {
		now := rfc3339(t)
		return map[string]any{
			"sp_appid": m.cfg.AppID, "sp_mchid": m.cfg.MchID, "sub_mchid": "1230000109",
			"out_trade_no": "emup-" + randomDigits(), "transaction_id": newWxID("4200", t), "trade_type": "JSAPI",
			"trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "", "success_time": now,
			"payer":  map[string]any{"sp_openid": "oEmulatorPayer0000000000000"},
			"amount": map[string]any{"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
		}
	}},
	NoticeComplaint: {[]string{EventComplaintCreate, EventComplaintState}, "complaint", func(_ *merchantState, eventType string, t time.Time) map[string]any {
		action := "CREATE_COMPLAINT"
		if eventType == EventComplaintState {
			action = "MERCHANT_CONFIRM_COMPLETE"
		}
		return map[string]any{"complaint_id": "2002018" + newWxID("", t), "action_type": action}
	}},
	NoticeTransfer: {[]string{EventTransferFinished}, "mch_payment", func(m *merchantState, _ string, t time.Time) map[string]any {
		now := rfc3339(t)
		return map[string]any{
			"mchid": m.cfg.MchID, "out_bill_no": "emut" + randomDigits(), "transfer_bill_no": newWxID("1330", t),
			"state": "SUCCESS", "transfer_amount": 100, "openid": "oEmulatorPayee0000000000000",
			"create_time": now, "update_time": now,
		}
	}},
	NoticeProfitSharing: {[]string{EventProfitSharing, EventProfitSharingBack}, "profitsharing", func(m *merchantState, _ string, t time.Time) map[string]any {
		now := rfc3339(t)
		return map[string]any{
			"mchid": m.cfg.MchID, "transaction_id": newWxID("4200", t), "order_id": newWxID("3008", t),
			"out_order_no": "emus-" + randomDigits(),
			"receiver":     map[string]any{"type": "MERCHANT_ID", "account": m.cfg.MchID, "amount": 10, "description": "分账"},
			"success_time": now,
		}
	}},
}

// NoticeKinds lists the kinds BuildV3Event knows, sorted.
func NoticeKinds() []string {
	out := make([]string, 0, len(noticeKinds))
	for k := range noticeKinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// V3Event asks for one APIv3 notification of a kind.
type V3Event struct {
	Kind  string // NoticePayment, NoticeCombine, NoticeComplaint, ...
	MchID string // the merchant notified: its APIv3 key encrypts, its mode picks the signing key
	URL   string // where it is sent
	// EventType is one of the kind's event types; "" means its first (TRANSACTION.SUCCESS,
	// COMPLAINT.CREATE, ...).
	EventType string
	// Fields replace top-level members of the generated resource, or add them; a nil value
	// removes one. E.g. {"sub_mchid": "1900000109"} or {"receiver": {...}}.
	Fields map[string]any
	// Options forge the notification (NotifyOptions); the zero value builds a genuine one.
	Options NotifyOptions
}

// BuildV3Event builds the notification ev describes: a resource of ev.Kind for merchant ev.MchID
// (fresh ids, now as times), changed by ev.Fields, encrypted and signed as BuildV3Notification
// does, with the kind's original_type ("mch_payment" for transfers).
func (e *Emulator) BuildV3Event(ev V3Event) (Notification, error) {
	k, ok := noticeKinds[ev.Kind]
	if !ok {
		return Notification{}, fmt.Errorf("emulator: unknown notification kind %q (one of %s)", ev.Kind, strings.Join(NoticeKinds(), ", "))
	}
	eventType := ev.EventType
	if eventType == "" {
		eventType = k.events[0]
	}
	if !slices.Contains(k.events, eventType) {
		return Notification{}, fmt.Errorf("emulator: a %s notification is one of %s, not %q", ev.Kind, strings.Join(k.events, ", "), eventType)
	}
	m := e.merchant(ev.MchID)
	if m == nil {
		return Notification{}, fmt.Errorf("emulator: build %s notification: unknown merchant %q", ev.Kind, ev.MchID)
	}
	now := ev.Options.Timestamp
	if now.IsZero() {
		now = e.now()
	}
	res := k.resource(m, eventType, now)
	for name, v := range ev.Fields {
		if v == nil {
			delete(res, name)
		} else {
			res[name] = v
		}
	}
	plain, err := marshalV3(res)
	if err != nil {
		return Notification{}, err
	}
	return e.buildV3Notification(ev.MchID, eventType, k.originalType, plain, ev.URL, ev.Options)
}

// notifyControlRequest is the body of POST /_emulator/pay/notify.
type notifyControlRequest struct {
	Kind      string         `json:"kind"`
	MchID     string         `json:"mchid"`
	URL       string         `json:"url"`
	EventType string         `json:"event_type"`
	Fields    map[string]any `json:"fields"`
}

// notifyControlAnswer is the answer of POST /_emulator/pay/notify.
type notifyControlAnswer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	ID    string `json:"id,omitempty"`    // the notification's id
	Index *int   `json:"index,omitempty"` // its index in GET /_emulator/deliveries
}

// serveNotifyControl answers POST /_emulator/pay/notify {"kind","mchid","url","event_type",
// "fields"}: it builds the notification (BuildV3Event) and queues it for delivery with WeChat's
// retry schedule, answering {"ok":true,"id":"...","index":N}.
func (e *Emulator) serveNotifyControl(ctx *fasthttp.RequestCtx) {
	var req notifyControlRequest
	if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), &req) != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, &notifyControlAnswer{
			Error: `body must be a JSON object {"kind", "mchid", "url", "event_type" (optional), "fields" (optional object)}`,
		})
		return
	}
	if !validNotifyURL(req.URL, !e.allowHTTPNotify) {
		writeJSON(ctx, fasthttp.StatusBadRequest, &notifyControlAnswer{Error: "url must be an absolute https URL without a query (http too when the emulator allows it)"})
		return
	}
	n, err := e.BuildV3Event(V3Event{Kind: req.Kind, MchID: req.MchID, URL: req.URL, EventType: req.EventType, Fields: req.Fields})
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, &notifyControlAnswer{Error: err.Error()})
		return
	}
	index := e.queue(n)
	writeJSON(ctx, fasthttp.StatusOK, &notifyControlAnswer{OK: true, ID: n.ID, Index: &index})
}
