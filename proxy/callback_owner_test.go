package proxy_test

import (
	"strings"
	"testing"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/signer"
)

// TestV2NotificationOwner: an APIv2 notification genuinely signed (or encrypted) with merchant
// pk's APIv2 key but naming another merchant or app is refused at pk's door and never forwarded;
// the same notification naming pk is forwarded.
func TestV2NotificationOwner(t *testing.T) {
	e := startEnv(t, nil)
	url := e.callbackURL + "/callbacks/wechatpay-v2/pk"
	pay := func(mchID, appID string) emulator.Notification {
		params := []signer.Param{{Key: "appid", Value: appID}, {Key: "mch_id", Value: mchID}, {Key: "result_code", Value: "SUCCESS"},
			{Key: "out_trade_no", Value: "owner-" + mchID + appID}, {Key: "transaction_id", Value: "42" + mchID + appID[len(appID)-2:]}, {Key: "total_fee", Value: "1"}}
		n, err := e.emu.BuildV2PayNotification("1900000001", params, url)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	refund := func(mchID string) emulator.Notification {
		info := []signer.Param{{Key: "out_trade_no", Value: "owner-r"}, {Key: "refund_id", Value: "5000" + mchID}, {Key: "refund_status", Value: "SUCCESS"}}
		n, err := e.emu.BuildV2RefundNotification("1900000001", info, url)
		if err != nil {
			t.Fatal(err)
		}
		// The outer document of a refund is not signed: only req_info is (by encryption).
		n.Body = []byte(strings.Replace(string(n.Body), "1900000001", mchID, 1))
		return n
	}
	for _, tc := range []struct {
		name string
		n    emulator.Notification
	}{
		{"payment for another merchant", pay("1900000002", "wx00000000000000a1")},
		{"payment for an unknown merchant", pay("1999999999", "wx00000000000000a1")},
		{"payment for another app", pay("1900000001", "wx00000000000000b2")},
		{"refund for another merchant", refund("1900000002")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acked, status, body, err := e.emu.Deliver(tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if acked || status < 400 || status > 499 || !strings.Contains(string(body), "FAIL") {
				t.Fatalf("acknowledged or not refused: %d %s", status, body)
			}
		})
	}
	if evs, _, _ := e.recv.snapshot(); len(evs) != 0 {
		t.Fatalf("%d foreign notifications reached the app", len(evs))
	}
	for _, n := range []emulator.Notification{pay("1900000001", "wx00000000000000a1"), refund("1900000001")} {
		if acked, status, body, _ := e.emu.Deliver(n); !acked {
			t.Fatalf("the merchant's own notification: %d %s", status, body)
		}
	}
	e.recv.waitEvents(2, waitTime)
}
