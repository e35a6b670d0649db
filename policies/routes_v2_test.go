package policies

import "testing"

// TestV2RouteLookup: each APIv2 family gets its client certificate, sign type, field names and
// answer rule; the sandbox twins of /pay/ and /secapi/ paths keep them; unlisted
// /mmpaymkttransfers/ and /papay/ paths are not routed.
func TestV2RouteLookup(t *testing.T) {
	rt := NewRouteTable(nil)
	tests := []struct {
		path                    string
		found                   bool
		cert, unsigned, sandbox bool
		signType, appID, mchID  string
		noNonce                 bool
	}{
		{"/pay/unifiedorder", true, false, false, false, "", "appid", "mch_id", false},
		{"/pay/downloadbill", true, false, true, false, "", "appid", "mch_id", false},
		{"/pay/downloadfundflow", true, true, true, false, V2SignHMACSHA256, "appid", "mch_id", false},
		{"/pay/contractorder", true, false, false, false, "", "appid", "mch_id", false},
		{"/secapi/pay/refund", true, true, false, false, "", "appid", "mch_id", false},
		{"/mmpaymkttransfers/promotion/transfers", true, true, true, false, "", "mch_appid", "mchid", false},
		{"/mmpaymkttransfers/gettransferinfo", true, true, true, false, "", "appid", "mch_id", false},
		{"/mmpaymkttransfers/sendredpack", true, true, true, false, "", "wxappid", "mch_id", false},
		{"/mmpaymkttransfers/sendgroupredpack", true, true, true, false, "", "wxappid", "mch_id", false},
		{"/mmpaymkttransfers/sendminiprogramhb", true, true, true, false, "", "wxappid", "mch_id", false},
		{"/mmpaymkttransfers/gethbinfo", true, true, true, false, "", "appid", "mch_id", false},
		{"/papay/querycontract", true, false, false, false, "", "appid", "mch_id", true},
		{"/papay/deletecontract", true, false, false, false, V2SignMD5, "appid", "mch_id", true},
		{"/sandboxnew/pay/unifiedorder", true, false, false, true, "", "appid", "mch_id", false},
		{"/sandboxnew/pay/downloadbill", true, false, true, true, "", "appid", "mch_id", false},
		{"/sandboxnew/pay/downloadfundflow", true, true, true, true, V2SignHMACSHA256, "appid", "mch_id", false},
		{"/sandboxnew/secapi/pay/refund", true, true, false, true, "", "appid", "mch_id", false},
		{"/mmpaymkttransfers/unknown", false, false, false, false, "", "", "", false},
		{"/papay/entrustweb", false, false, false, false, "", "", "", false},
		{"/sandboxnew/other/x", false, false, false, false, "", "", "", false},
		{"/sandboxnew/", false, false, false, false, "", "", "", false},
	}
	for _, tt := range tests {
		r, ok := rt.Lookup([]byte(tt.path))
		if ok != tt.found {
			t.Errorf("Lookup(%s) found %v, want %v", tt.path, ok, tt.found)
			continue
		}
		if !ok {
			continue
		}
		v := r.V2
		if r.Kind != RoutePayV2 || v == nil || r.ClientCert != tt.cert || v.ClientCert != tt.cert || v.Unsigned != tt.unsigned ||
			v.Sandbox != tt.sandbox || v.SignType != tt.signType || v.AppIDField != tt.appID || v.MchIDField != tt.mchID || v.NoNonce != tt.noNonce {
			t.Errorf("Lookup(%s) = %+v %+v", tt.path, r, v)
		}
	}
	if n := testing.AllocsPerRun(100, func() { rt.Lookup([]byte("/mmpaymkttransfers/sendredpack")) }); n != 0 {
		t.Errorf("an APIv2 lookup allocates %v times", n)
	}
	if rs := V2Routes(); len(rs) != len(v2Table) || rs[0].Path > rs[1].Path {
		t.Errorf("V2Routes: %d routes, want %d, sorted", len(rs), len(v2Table))
	}
}
