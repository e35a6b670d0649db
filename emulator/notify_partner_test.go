package emulator

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestPartnerPaymentNotification: PayOrder pays a sub-merchant's order by its sub_mchid, and the
// partner TRANSACTION.SUCCESS reaches the order's notify_url verified like a merchant backend
// verifies the service provider's notifications (signature under the provider's WeChat Pay keys,
// resource decrypted with the provider's APIv3 key); the resource names sp_mchid and sub_mchid
// and no mchid.
func TestPartnerPaymentNotification(t *testing.T) {
	for _, tc := range []struct {
		name string
		sp   func(h *mchHarness) testMerchant
	}{
		{"provider with platform certificates", func(h *mchHarness) testMerchant { return h.mp }},
		{"provider with the public key", func(h *mchHarness) testMerchant { return h.mk }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, r := newNotifyHarness(t, 0.001)
			sp := tc.sp(h)
			const sub, subApp = "1900000909", "wx00000000000000f9"
			if err := h.emu.AddSubMerchant(sp.MchID, sub, subApp); err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(map[string]any{
				"sp_appid": sp.AppID, "sp_mchid": sp.MchID, "sub_appid": subApp, "sub_mchid": sub,
				"description": "partner", "out_trade_no": "partner_notify_1", "notify_url": r.base + "/v3/" + sp.MchID,
				"amount": map[string]any{"total": 120}, "payer": map[string]any{"sub_openid": "o-sub"},
			})
			if res := h.v3(sp, "POST", "/v3/pay/partner/transactions/jsapi", body); res.status != fasthttp.StatusOK {
				t.Fatalf("partner jsapi: HTTP %d %s", res.status, res.body)
			}
			if err := h.emu.PayOrder(sub, "partner_notify_1"); err != nil {
				t.Fatalf("PayOrder of the sub-merchant's order: %v", err)
			}
			rec := r.wait(1)[0]
			if rec.err != nil {
				t.Fatalf("the partner notification does not verify for the provider: %v", rec.err)
			}
			var res map[string]any
			if err := json.Unmarshal(rec.plain, &res); err != nil {
				t.Fatal(err)
			}
			o, _ := h.emu.PartnerOrder(sub, "partner_notify_1")
			if res["sp_mchid"] != sp.MchID || res["sub_mchid"] != sub || res["sp_appid"] != sp.AppID || res["sub_appid"] != subApp ||
				res["mchid"] != nil || res["appid"] != nil || res["trade_state"] != "SUCCESS" || res["transaction_id"] != o.TransactionID ||
				res["payer"].(map[string]any)["sub_openid"] != "o-sub" {
				t.Fatalf("partner resource: %s", rec.plain)
			}
		})
	}
}
