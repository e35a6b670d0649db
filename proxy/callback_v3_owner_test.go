package proxy

import (
	"strings"
	"testing"
)

// TestCheckV3Owner pins the owner rules of docs/protocol/wechatpay.md §10.7 on decrypted
// resources, for a merchant with appids and one without: which ids must be the merchant's, which
// are passed on, which appid the event is named after, and the error for each refusal.
func TestCheckV3Owner(t *testing.T) {
	const me, other = "1900000001", "1900000002"
	listed := &merchantState{name: "pk", mchID: me, appID: "wx00000000000000a1", appIDs: []string{"wx00000000000000a1", "wx00000000000000d4"}}
	bare := &merchantState{name: "bare", mchID: me}
	tests := []struct {
		name      string
		m         *merchantState
		eventType string
		resource  string
		app       string // the appid returned
		err       string // "" when owned
	}{
		{"payment", listed, "TRANSACTION.SUCCESS", `{"mchid":"` + me + `","appid":"wx00000000000000a1"}`, "wx00000000000000a1", ""},
		{"payment under a listed appid", listed, "TRANSACTION.SUCCESS", `{"mchid":"` + me + `","appid":"wx00000000000000d4"}`, "wx00000000000000d4", ""},
		{"payment under another appid", listed, "TRANSACTION.SUCCESS", `{"mchid":"` + me + `","appid":"wx00000000000000b2"}`, "", `appid "wx00000000000000b2" is not one of merchant "pk"'s appids`},
		{"merchant without appids checks none", bare, "TRANSACTION.SUCCESS", `{"mchid":"` + me + `","appid":"wx00000000000000b2"}`, "wx00000000000000b2", ""},
		{"payment of another merchant", listed, "TRANSACTION.SUCCESS", `{"mchid":"` + other + `"}`, "", `mchid "1900000002", not merchant "pk"`},
		{"payment naming no merchant", listed, "TRANSACTION.SUCCESS", `{"appid":"wx00000000000000a1"}`, "", "names no merchant"},
		{"an empty mchid names none", listed, "TRANSACTION.SUCCESS", `{"mchid":""}`, "", "names no merchant"},
		{"null mchid names none", listed, "TRANSACTION.SUCCESS", `{"mchid":null}`, "", "names no merchant"},
		{"mchid not a string", listed, "TRANSACTION.SUCCESS", `{"mchid":1900000001}`, "", "mchid is not a string"},
		{"mchid escaped", listed, "TRANSACTION.SUCCESS", `{"mchid":"190000000\u0031"}`, "", ""},
		{"mchid named in another case", listed, "TRANSACTION.SUCCESS", `{"MchID":"` + other + `"}`, "", `not merchant "pk"`},
		{"mchid twice", listed, "TRANSACTION.SUCCESS", `{"mchid":"` + me + `","mchid":"` + other + `"}`, "", "occurs twice"},
		{"one of two ids foreign", listed, "REFUND.SUCCESS", `{"mchid":"` + me + `","sp_mchid":"` + other + `"}`, "", "sp_mchid"},
		{"refund without appid", listed, "REFUND.SUCCESS", `{"mchid":"` + me + `"}`, "", ""},
		{"partner", listed, "TRANSACTION.SUCCESS", `{"sp_mchid":"` + me + `","sub_mchid":"` + other + `","sp_appid":"wx00000000000000d4","sub_appid":"wx00000000000000f9"}`, "wx00000000000000d4", ""},
		{"partner with pk as sub-merchant", listed, "TRANSACTION.SUCCESS", `{"sp_mchid":"` + other + `","sub_mchid":"` + me + `"}`, "", "sp_mchid"},
		{"combine", listed, "TRANSACTION.SUCCESS", `{"combine_mchid":"` + me + `","combine_appid":"wx00000000000000a1","sub_orders":[{"mchid":"` + other + `","appid":"wx00000000000000b2"}]}`, "wx00000000000000a1", ""},
		{"combine of another merchant", listed, "TRANSACTION.SUCCESS", `{"combine_mchid":"` + other + `"}`, "", "combine_mchid"},
		{"combine under another appid", listed, "TRANSACTION.SUCCESS", `{"combine_mchid":"` + me + `","combine_appid":"wx00000000000000b2"}`, "", "combine_appid"},
		{"complaint", listed, "COMPLAINT.CREATE", `{"complaint_id":"200201820200101080076610000","action_type":"CREATE_COMPLAINT"}`, "", ""},
		{"complaint naming another merchant", listed, "COMPLAINT.STATE_CHANGE", `{"complaint_id":"1","mchid":"` + other + `"}`, "", "mchid"},
		{"transfer", listed, "MCHTRANSFER.BILL.FINISHED", `{"mch_id":"` + me + `","out_bill_no":"x"}`, "", ""},
		{"transfer of another merchant", listed, "MCHTRANSFER.BILL.FINISHED", `{"mch_id":"` + other + `"}`, "", "mch_id"},
		{"unknown family names the merchant", listed, "VIOLATION.PUNISH", `{"sp_mchid":"` + me + `"}`, "", ""},
		{"unknown family naming none", listed, "PAYSCORE.USER_PAID", `{"service_id":"1"}`, "", "names no merchant"},
		{"sharing by pk", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + me + `","receiver":{"type":"MERCHANT_ID","account":"` + other + `"}}`, "", ""},
		{"sharing to pk", listed, "PROFITSHARING.RETURN", `{"mchid":"` + other + `","receiver":{"type":"MERCHANT_ID","account":"` + me + `"}}`, "", ""},
		{"partner sharing to pk", listed, "PROFITSHARING.SUCCESS", `{"sp_mchid":"` + other + `","sub_mchid":"` + other + `","receiver":{"type":"MERCHANT_ID","account":"` + me + `"}}`, "", ""},
		{"sharing by the service provider pk", listed, "PROFITSHARING.SUCCESS", `{"sp_mchid":"` + me + `","sub_mchid":"` + other + `","receiver":{"type":"MERCHANT_ID","account":"` + other + `"}}`, "", ""},
		{"sharing neither by nor to pk", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + other + `","receiver":{"type":"MERCHANT_ID","account":"` + other + `"}}`, "", "neither by nor to"},
		{"sharing to a person named like pk", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + other + `","receiver":{"type":"PERSONAL_OPENID","account":"` + me + `"}}`, "", "neither by nor to"},
		{"sharing to another merchant, no sharer named", listed, "PROFITSHARING.SUCCESS", `{"receiver":{"type":"MERCHANT_ID","account":"` + other + `"}}`, "", "neither by nor to"},
		{"sharing naming nobody", listed, "PROFITSHARING.SUCCESS", `{"out_order_no":"x"}`, "", "names no merchant"},
		{"sharing with a null receiver", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + me + `","receiver":null}`, "", ""},
		{"sharing with a receiver that is not an object", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + me + `","receiver":"` + me + `"}`, "", "receiver is not an object"},
		{"sharing with a receiver account not a string", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + other + `","receiver":{"type":"MERCHANT_ID","account":1900000001}}`, "", "receiver.account is not a string"},
		{"sharing with a receiver member twice", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + other + `","receiver":{"type":"MERCHANT_ID","account":"` + me + `","ACCOUNT":"` + other + `"}}`, "", "occurs twice"},
		{"sharing under another appid", listed, "PROFITSHARING.SUCCESS", `{"mchid":"` + me + `","appid":"wx00000000000000b2"}`, "", "appid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := tt.m.checkV3Owner(tt.eventType, []byte(tt.resource))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			case err == nil && app != tt.app:
				t.Fatalf("appid %q, want %q", app, tt.app)
			}
		})
	}
}
