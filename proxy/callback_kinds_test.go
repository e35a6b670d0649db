package proxy_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/signer"
)

// Merchant pk of testdata/merchants.toml, with one more appid that pays into it.
const (
	pkMchID    = "1900000001"
	pkAppID    = "wx00000000000000a1"
	pkExtraApp = "wx00000000000000d4" // listed in pk's appids by withPKAppIDs
	plainAppID = "wx00000000000000c3" // app "plain", also listed in pk's appids
	otherMchID = "1900000002"         // merchant certs
	otherAppID = "wx00000000000000b2" // certs' appid, not pk's
)

// withPKAppIDs lists pkExtraApp in merchant pk's appids.
func withPKAppIDs(text string) string {
	return strings.Replace(text, `appid = "`+pkAppID+`"`+"\nserial_no", `appid = "`+pkAppID+`"`+"\nappids = [\""+pkExtraApp+"\", \""+plainAppID+"\"]\nserial_no", 1)
}

// kindCase is one notification kind sent to pk's door: the emulator's kind and event type, the
// resource members the test sets, and the member whose value must reach the app unchanged.
type kindCase struct {
	name, kind, eventType string
	fields                map[string]any
	marker                string // a member of fields the forwarded data must carry
	app                   string // the event's app; "" means "shop", pk's appid's app
}

// newKindCases are the notification types beyond the direct payment and refund, as WeChat Pay
// sends them to merchant pk (wechatpay.md §10).
func newKindCases() []kindCase {
	return []kindCase{
		{"combine payment", emulator.NoticeCombine, "", map[string]any{"combine_out_trade_no": "kc-combine-1",
			// a sub-order of another merchant is part of a genuine combine payment
			"sub_orders": []any{map[string]any{"mchid": otherMchID, "out_trade_no": "kc-sub-1", "trade_state": "SUCCESS"}}}, "combine_out_trade_no", ""},
		{"combine payment under a listed appid", emulator.NoticeCombine, "", map[string]any{"combine_out_trade_no": "kc-combine-2", "combine_appid": pkExtraApp}, "combine_out_trade_no", ""},
		{"partner payment", emulator.NoticePartner, "", map[string]any{"out_trade_no": "kc-partner-1", "sub_mchid": "1900000109", "sub_appid": "wx00000000000000f9"}, "out_trade_no", ""},
		{"complaint created", emulator.NoticeComplaint, emulator.EventComplaintCreate, map[string]any{"complaint_id": "200201820200101080076610000"}, "complaint_id", ""},
		{"complaint state change", emulator.NoticeComplaint, emulator.EventComplaintState, map[string]any{"complaint_id": "200201820200101080076610001"}, "complaint_id", ""},
		{"merchant transfer", emulator.NoticeTransfer, "", map[string]any{"out_bill_no": "kctransfer1"}, "out_bill_no", ""},
		{"merchant transfer with mch_id", emulator.NoticeTransfer, "", map[string]any{"out_bill_no": "kctransfer2", "mchid": nil, "mch_id": pkMchID}, "out_bill_no", ""},
		{"profit sharing", emulator.NoticeProfitSharing, "", map[string]any{"out_order_no": "kc-ps-1"}, "out_order_no", ""},
		{"profit sharing returned", emulator.NoticeProfitSharing, emulator.EventProfitSharingBack, map[string]any{"out_order_no": "kc-ps-2"}, "out_order_no", ""},
		{"profit sharing from another merchant to pk", emulator.NoticeProfitSharing, "", map[string]any{"out_order_no": "kc-ps-3", "mchid": otherMchID,
			"receiver": map[string]any{"type": "MERCHANT_ID", "account": pkMchID, "amount": 10, "description": "分账"}}, "out_order_no", ""},
		{"payment under a listed appid", emulator.NoticePayment, "", map[string]any{"out_trade_no": "kc-pay-1", "appid": pkExtraApp}, "out_trade_no", ""},
		{"payment under the appid of another configured app", emulator.NoticePayment, "", map[string]any{"out_trade_no": "kc-pay-2", "appid": plainAppID}, "out_trade_no", "plain"},
		{"partner payment under that app's appid", emulator.NoticePartner, "", map[string]any{"out_trade_no": "kc-partner-2", "sp_appid": plainAppID}, "out_trade_no", "plain"},
	}
}

// TestV3NotificationKindsEndToEnd: for every notification type, the emulator emits it (its
// control endpoint, with WeChat's retries) and wxgate verifies, decrypts and forwards it: the app
// gets a clean JSON event of that type for pk whose data is the resource, and WeChat gets its
// acknowledgement.
func TestV3NotificationKindsEndToEnd(t *testing.T) {
	e := startEnv(t, withPKAppIDs)
	cases := newKindCases()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fields, _ := json.Marshal(c.fields)
			req := fmt.Sprintf(`{"kind":%q,"mchid":%q,"url":%q,"event_type":%q,"fields":%s}`,
				c.kind, pkMchID, e.callbackURL+"/callbacks/wechatpay/pk", c.eventType, fields)
			a := e.doURL("POST", e.emuAddr+"/_emulator/pay/notify", []byte(req))
			var ans struct {
				OK bool   `json:"ok"`
				ID string `json:"id"`
			}
			if a.Status != 200 || json.Unmarshal(a.Body, &ans) != nil || !ans.OK {
				t.Fatalf("emulator notify: %d %s", a.Status, a.Body)
			}
			evs := e.recv.waitEvents(i+1, waitTime)
			ev := evs[len(evs)-1]
			wantType := c.eventType
			if wantType == "" {
				wantType = map[string]string{emulator.NoticeCombine: "TRANSACTION.SUCCESS", emulator.NoticePartner: "TRANSACTION.SUCCESS",
					emulator.NoticePayment: "TRANSACTION.SUCCESS", emulator.NoticeTransfer: "MCHTRANSFER.BILL.FINISHED",
					emulator.NoticeProfitSharing: "PROFITSHARING.SUCCESS"}[c.kind]
			}
			wantApp := c.app
			if wantApp == "" {
				wantApp = "shop"
			}
			if ev.ID != ans.ID || ev.Source != event.SourceWeChatPayV3 || ev.Type != wantType || ev.Merchant != "pk" || ev.App != wantApp {
				t.Fatalf("event %+v, want id %s type %s for pk and app %s", ev, ans.ID, wantType, wantApp)
			}
			var data map[string]any
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatalf("data is not JSON: %v: %s", err, ev.Data)
			}
			if data[c.marker] != c.fields[c.marker] {
				t.Fatalf("data %s = %v, want %v: %s", c.marker, data[c.marker], c.fields[c.marker], ev.Data)
			}
		})
	}
	ds, err := e.emu.WaitDeliveries(len(cases), waitTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !d.Acked || d.Attempts != 1 {
			t.Errorf("WeChat's view of %s: acked %v after %d attempts (%s)", d.Notification.ID, d.Acked, d.Attempts, d.LastError)
		}
	}
}

// TestV3NotificationKindsTamper: for every new notification type, a genuine notification altered
// in its body, signature, serial, timestamp or nonce, signed by a key WeChat never published, or
// encrypted with another merchant's APIv3 key, is refused with a 4xx and never forwarded; the
// genuine one then passes once.
func TestV3NotificationKindsTamper(t *testing.T) {
	e := startEnv(t, withPKAppIDs)
	url := e.callbackURL + "/callbacks/wechatpay/pk"
	delivered := 0
	for _, c := range newKindCases() {
		t.Run(c.name, func(t *testing.T) {
			build := func(mchID string, opts emulator.NotifyOptions) emulator.Notification {
				n, err := e.emu.BuildV3Event(emulator.V3Event{Kind: c.kind, MchID: mchID, URL: url, EventType: c.eventType, Fields: c.fields, Options: opts})
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			genuine := build(pkMchID, emulator.NotifyOptions{})
			variants := map[string]emulator.Notification{
				"foreign key":                        build(pkMchID, emulator.NotifyOptions{ForeignKey: true}),
				"unknown serial":                     build(pkMchID, emulator.NotifyOptions{Serial: "PUB_KEY_ID_0000000000000000000000000000000099"}),
				"old timestamp":                      build(pkMchID, emulator.NotifyOptions{Timestamp: time.Now().Add(-6 * time.Minute)}),
				"SIGNTEST probe":                     build(pkMchID, emulator.NotifyOptions{SignTest: true}),
				"encrypted with certs' APIv3 key":    build(otherMchID, emulator.NotifyOptions{Serial: genuine.Header["Wechatpay-Serial"]}),
				"body: ciphertext byte flipped":      flipIn(genuine, `"ciphertext":"`, 10),
				"body: event_type changed":           replaceIn(genuine, `"event_type":"`, `"event_type":"X`),
				"body: associated_data changed":      replaceIn(genuine, `"associated_data":"`, `"associated_data":"x`),
				"body: trailing space":               appendBody(genuine, " "),
				"header: signature altered":          withHeader(genuine, "Wechatpay-Signature", alterFirst(genuine.Header["Wechatpay-Signature"])),
				"header: serial altered":             withHeader(genuine, "Wechatpay-Serial", alter(genuine.Header["Wechatpay-Serial"])),
				"header: timestamp one second later": withHeader(genuine, "Wechatpay-Timestamp", plusOne(genuine.Header["Wechatpay-Timestamp"])),
				"header: nonce altered":              withHeader(genuine, "Wechatpay-Nonce", alter(genuine.Header["Wechatpay-Nonce"])),
			}
			for name, n := range variants {
				acked, status, body, err := e.emu.Deliver(n)
				if acked || err != nil || status < 400 || status > 499 || !strings.Contains(string(body), "FAIL") {
					t.Errorf("%s: acked %v, status %d %s %v; want a 4xx FAIL", name, acked, status, body, err)
				}
			}
			if evs, _, _ := e.recv.snapshot(); len(evs) != delivered {
				t.Fatalf("tampered notifications reached the app: %d events, want %d", len(evs), delivered)
			}
			if acked, status, body, _ := e.emu.Deliver(genuine); !acked {
				t.Fatalf("the genuine notification was refused: %d %s", status, body)
			}
			delivered++
			e.recv.waitEvents(delivered, waitTime)
		})
	}
}

// TestV3NotificationOwnerRefusals: genuine notifications (signed by WeChat Pay, encrypted with
// pk's APIv3 key) whose resource names another merchant, or an appid outside pk's list, are
// refused at pk's door with a 4xx, a "callback refused" log line and the rejected count, and
// never forwarded.
func TestV3NotificationOwnerRefusals(t *testing.T) {
	logs := &syncBuffer{}
	e := startEnvWith(t, envOptions{edit: withPKAppIDs, logs: logs})
	url := e.callbackURL + "/callbacks/wechatpay/pk"
	tests := []struct {
		name, kind, eventType string
		fields                map[string]any
		reason                string // in the refusal's message
	}{
		{"payment of another merchant", emulator.NoticePayment, "", map[string]any{"mchid": otherMchID}, `mchid \"1900000002\"`},
		{"payment of an appid outside the list", emulator.NoticePayment, "", map[string]any{"appid": otherAppID}, "not one of merchant"},
		{"payment naming no merchant", emulator.NoticePayment, "", map[string]any{"mchid": nil}, "names no merchant"},
		{"refund of another merchant", emulator.NoticeRefund, "", map[string]any{"mchid": otherMchID}, "1900000002"},
		{"combine payment of another merchant", emulator.NoticeCombine, "", map[string]any{"combine_mchid": otherMchID}, "combine_mchid"},
		{"combine payment of an appid outside the list", emulator.NoticeCombine, "", map[string]any{"combine_appid": otherAppID}, "combine_appid"},
		{"partner payment of another service provider", emulator.NoticePartner, "", map[string]any{"sp_mchid": otherMchID}, "sp_mchid"},
		{"partner payment with pk as the sub-merchant", emulator.NoticePartner, "", map[string]any{"sp_mchid": otherMchID, "sub_mchid": pkMchID}, "sp_mchid"},
		{"partner payment of an appid outside the list", emulator.NoticePartner, "", map[string]any{"sp_appid": otherAppID}, "sp_appid"},
		{"complaint naming another merchant", emulator.NoticeComplaint, "", map[string]any{"mchid": otherMchID}, "mchid"},
		{"transfer of another merchant", emulator.NoticeTransfer, "", map[string]any{"mchid": otherMchID}, "mchid"},
		{"transfer of another merchant (mch_id)", emulator.NoticeTransfer, "", map[string]any{"mchid": nil, "mch_id": otherMchID}, "mch_id"},
		{"transfer of an appid outside the list", emulator.NoticeTransfer, "", map[string]any{"appid": otherAppID}, "appid"},
		{"profit sharing neither by nor to pk", emulator.NoticeProfitSharing, "", map[string]any{"mchid": otherMchID,
			"receiver": map[string]any{"type": "MERCHANT_ID", "account": otherMchID, "amount": 1}}, "neither by nor to"},
		{"profit sharing to a person whose account is pk's mchid", emulator.NoticeProfitSharing, "", map[string]any{"mchid": otherMchID,
			"receiver": map[string]any{"type": "PERSONAL_OPENID", "account": pkMchID, "amount": 1}}, "neither by nor to"},
		{"profit sharing with a duplicated receiver member", emulator.NoticeProfitSharing, "", map[string]any{"mchid": otherMchID,
			"receiver": map[string]any{"type": "MERCHANT_ID", "account": pkMchID, "Account": otherMchID}}, "occurs twice"},
	}
	for _, tt := range tests { // the first refusals of this gateway
		t.Run(tt.name, func(t *testing.T) {
			n, err := e.emu.BuildV3Event(emulator.V3Event{Kind: tt.kind, MchID: pkMchID, URL: url, EventType: tt.eventType, Fields: tt.fields})
			if err != nil {
				t.Fatal(err)
			}
			acked, status, body, err := e.emu.Deliver(n)
			if acked || err != nil || status != 400 || !strings.Contains(string(body), tt.reason) {
				t.Fatalf("acked %v, status %d %s %v; want 400 naming %q", acked, status, body, err, tt.reason)
			}
		})
	}
	if evs, _, _ := e.recv.snapshot(); len(evs) != 0 {
		t.Fatalf("%d foreign notifications reached the app", len(evs))
	}
	if got := e.metric(t, `wxgate_callbacks_total{source="wechatpay.v3",outcome="rejected"}`); got != float64(len(tests)) {
		t.Errorf("rejected count rose by %v, want %d", got, len(tests))
	}
	if !strings.Contains(logs.String(), `"msg":"callback refused"`) || !strings.Contains(logs.String(), `is not one of merchant \"pk\"'s appids`) {
		t.Errorf("no refusal log line naming the appid list:\n%s", logs.String())
	}
}

// TestV2NotificationAppIDs: an APIv2 payment notification under an appid in pk's appids is
// forwarded; one under an appid outside the list is refused.
func TestV2NotificationAppIDs(t *testing.T) {
	e := startEnv(t, withPKAppIDs)
	url := e.callbackURL + "/callbacks/wechatpay-v2/pk"
	pay := func(appID, no string) emulator.Notification {
		params := []signer.Param{{Key: "appid", Value: appID}, {Key: "mch_id", Value: pkMchID}, {Key: "result_code", Value: "SUCCESS"},
			{Key: "out_trade_no", Value: no}, {Key: "transaction_id", Value: "4200" + no}, {Key: "total_fee", Value: "1"}}
		n, err := e.emu.BuildV2PayNotification(pkMchID, params, url)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if acked, status, body, _ := e.emu.Deliver(pay(otherAppID, "90001")); acked || status < 400 || status > 499 {
		t.Fatalf("appid outside the list: acked %v %d %s", acked, status, body)
	}
	if acked, status, body, _ := e.emu.Deliver(pay(pkExtraApp, "90002")); !acked {
		t.Fatalf("listed appid refused: %d %s", status, body)
	}
	if evs := e.recv.waitEvents(1, waitTime); len(evs) != 1 || !strings.Contains(string(evs[0].Data), "90002") {
		t.Fatalf("events %+v", evs)
	}
}

// flipIn returns n with one byte flipped at offset off after the first occurrence of marker.
func flipIn(n emulator.Notification, marker string, off int) emulator.Notification {
	c := clone(n)
	i := strings.Index(string(c.Body), marker) + len(marker) + off
	c.Body[i] ^= 0x01
	return c
}

// replaceIn returns n with the first occurrence of old in its body replaced by repl.
func replaceIn(n emulator.Notification, old, repl string) emulator.Notification {
	c := clone(n)
	c.Body = []byte(strings.Replace(string(c.Body), old, repl, 1))
	return c
}

// appendBody returns n with s appended to its body.
func appendBody(n emulator.Notification, s string) emulator.Notification {
	c := clone(n)
	c.Body = append(c.Body, s...)
	return c
}

// withHeader returns n with header h set to v.
func withHeader(n emulator.Notification, h, v string) emulator.Notification {
	c := clone(n)
	c.Header[h] = v
	return c
}

// alter changes the last character of s.
func alter(s string) string {
	if strings.HasSuffix(s, "0") {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

// plusOne adds one to a decimal timestamp.
func plusOne(ts string) string {
	v, _ := strconv.ParseInt(ts, 10, 64)
	return strconv.FormatInt(v+1, 10)
}

// alterFirst changes the first character of s (a base64 signature stays valid base64).
func alterFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// TestReloadAppliesAppIDs: a SIGHUP reload that adds an appid to pk's appids makes notifications
// under it pass; one that removes it refuses them again (the merchant's keys are otherwise
// unchanged, so this is the list alone).
func TestReloadAppliesAppIDs(t *testing.T) {
	e := startEnv(t, nil)
	url := e.callbackURL + "/callbacks/wechatpay/pk"
	send := func(no string) bool {
		n, err := e.emu.BuildV3Event(emulator.V3Event{Kind: emulator.NoticePayment, MchID: pkMchID, URL: url,
			Fields: map[string]any{"appid": pkExtraApp, "out_trade_no": no}})
		if err != nil {
			t.Fatal(err)
		}
		acked, _, _, err := e.emu.Deliver(n)
		if err != nil {
			t.Fatal(err)
		}
		return acked
	}
	if send("rl-1") {
		t.Fatal("an appid not in the config was accepted")
	}
	if err := e.reloadText(t, withPKAppIDs); err != nil {
		t.Fatal(err)
	}
	if !send("rl-2") {
		t.Fatal("the appid listed by the reload was refused")
	}
	if err := e.reloadText(t, func(s string) string { return s }); err != nil {
		t.Fatal(err)
	}
	if send("rl-3") {
		t.Fatal("the appid removed by the reload was still accepted")
	}
	if evs := e.recv.waitEvents(1, waitTime); len(evs) != 1 || !strings.Contains(string(evs[0].Data), "rl-2") {
		t.Fatalf("events %+v", evs)
	}
}
