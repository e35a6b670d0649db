package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestNotifyControlKinds: POST /_emulator/pay/notify queues, for every kind, a notification a
// merchant backend verifies like the SDKs do (signature, timestamp, AEAD under its APIv3 key)
// whose resource has the kind's shape and event type; fields replace or remove members.
func TestNotifyControlKinds(t *testing.T) {
	h, r := newNotifyHarness(t, 0.0001)
	tests := []struct {
		kind, eventType string
		fields          string
		wantType, otype string
		want            map[string]any // top-level members of the decrypted resource
		absent          []string
	}{
		{"payment", "", "", EventTransactionSuccess, "transaction", map[string]any{"mchid": mchIDP, "appid": appIDP, "trade_state": "SUCCESS"}, nil},
		{"refund", "REFUND.CLOSED", "", "REFUND.CLOSED", "refund", map[string]any{"mchid": mchIDP, "refund_status": "CLOSED"}, []string{"appid"}},
		{"combine", "", "", EventTransactionSuccess, "transaction", map[string]any{"combine_mchid": mchIDP, "combine_appid": appIDP}, []string{"mchid", "appid"}},
		{"partner", "", `{"sub_mchid":"1900000109","sub_appid":"wx00000000000000f9"}`, EventTransactionSuccess, "transaction",
			map[string]any{"sp_mchid": mchIDP, "sp_appid": appIDP, "sub_mchid": "1900000109", "sub_appid": "wx00000000000000f9"}, []string{"mchid", "appid"}},
		{"complaint", "", "", EventComplaintCreate, "complaint", map[string]any{"action_type": "CREATE_COMPLAINT"}, []string{"mchid", "sp_mchid", "appid"}},
		{"complaint", EventComplaintState, "", EventComplaintState, "complaint", map[string]any{"action_type": "MERCHANT_CONFIRM_COMPLETE"}, nil},
		{"transfer", "", `{"state":"FAIL","fail_reason":"PAYEE_ACCOUNT_ABNORMAL"}`, EventTransferFinished, "mch_payment",
			map[string]any{"mchid": mchIDP, "state": "FAIL", "fail_reason": "PAYEE_ACCOUNT_ABNORMAL"}, nil},
		{"profitsharing", "", `{"mchid":"1900000777"}`, EventProfitSharing, "profitsharing", map[string]any{"mchid": "1900000777"}, nil},
		{"payment", "", `{"attach":null}`, EventTransactionSuccess, "transaction", map[string]any{"mchid": mchIDP}, []string{"attach"}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.kind, tt.wantType), func(t *testing.T) {
			fields := tt.fields
			if fields == "" {
				fields = "{}"
			}
			body := fmt.Sprintf(`{"kind":%q,"mchid":%q,"url":%q,"event_type":%q,"fields":%s}`, tt.kind, mchIDP, r.base+"/v3/"+mchIDP, tt.eventType, fields)
			status, ans := h.do("POST", "/_emulator/pay/notify", []byte(body))
			var a struct {
				OK    bool   `json:"ok"`
				ID    string `json:"id"`
				Index *int   `json:"index"`
			}
			if status != 200 || json.Unmarshal(ans, &a) != nil || !a.OK || a.ID == "" || a.Index == nil || *a.Index != i {
				t.Fatalf("notify: %d %s", status, ans)
			}
			got := r.wait(i + 1)[i]
			if got.err != nil {
				t.Fatalf("the merchant's backend refused it: %v", got.err)
			}
			var n v3Notice
			if err := json.Unmarshal(got.body, &n); err != nil {
				t.Fatal(err)
			}
			if n.ID != a.ID || n.EventType != tt.wantType || n.Resource.OriginalType != tt.otype || n.Resource.AssociatedData != tt.otype || n.Summary == "" {
				t.Fatalf("envelope %+v", n)
			}
			var res map[string]any
			if err := json.Unmarshal(got.plain, &res); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if res[k] != v {
					t.Errorf("resource %s = %v, want %v (%s)", k, res[k], v, got.plain)
				}
			}
			for _, k := range tt.absent {
				if _, ok := res[k]; ok {
					t.Errorf("resource has %s: %s", k, got.plain)
				}
			}
		})
	}
}

// TestNotifyControlErrors: a bad request is a 400 naming the problem, and nothing is queued.
func TestNotifyControlErrors(t *testing.T) {
	h, r := newNotifyHarness(t, 0.0001)
	url := r.base + "/v3/" + mchIDP
	for _, tt := range []struct{ name, body, want string }{
		{"not JSON", `kind=payment`, "JSON object"},
		{"unknown kind", fmt.Sprintf(`{"kind":"lottery","mchid":%q,"url":%q}`, mchIDP, url), "unknown notification kind"},
		{"unknown merchant", fmt.Sprintf(`{"kind":"payment","mchid":"1999999999","url":%q}`, url), "unknown merchant"},
		{"event type of another kind", fmt.Sprintf(`{"kind":"complaint","mchid":%q,"url":%q,"event_type":"TRANSACTION.SUCCESS"}`, mchIDP, url), "COMPLAINT.CREATE"},
		{"url with a query", fmt.Sprintf(`{"kind":"payment","mchid":%q,"url":%q}`, mchIDP, url+"?x=1"), "url"},
		{"no url", fmt.Sprintf(`{"kind":"payment","mchid":%q}`, mchIDP), "url"},
	} {
		status, ans := h.do("POST", "/_emulator/pay/notify", []byte(tt.body))
		if status != 400 || !strings.Contains(string(ans), tt.want) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", tt.name, status, ans, tt.want)
		}
	}
	if ds := h.emu.Deliveries(); len(ds) != 0 {
		t.Fatalf("%d notifications queued by bad requests", len(ds))
	}
}
