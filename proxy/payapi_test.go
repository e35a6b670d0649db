package proxy

import "testing"

// TestPayAPI: WeChat Pay paths are named by their template; order numbers and unknown paths
// never become a name of their own.
func TestPayAPI(t *testing.T) {
	for path, want := range map[string]string{
		"/v3/pay/transactions/jsapi":                    "/v3/pay/transactions/jsapi",
		"/v3/pay/transactions/out-trade-no/o-123":       "/v3/pay/transactions/out-trade-no/*",
		"/v3/pay/transactions/out-trade-no/o-123/close": "/v3/pay/transactions/out-trade-no/*/close",
		"/v3/pay/transactions/out-trade-no/":            "/v3/other",
		"/v3/pay/transactions/id/4200000001":            "/v3/pay/transactions/id/*",
		"/v3/refund/domestic/refunds/r-9":               "/v3/refund/domestic/refunds/*",
		"/v3/refund/domestic/refunds/r-9/extra":         "/v3/other",
		"/v3/certificates":                              "/v3/certificates",
		"/v3/pay/partner/transactions/out-trade-no/p-1": "/v3/pay/partner/transactions/out-trade-no/*",
		"/v3/pay/partner/transactions/id/4200000002":    "/v3/pay/partner/transactions/id/*",
		"/v3/merchant-service/complaints-v2":            "/v3/other",
		"/pay/unifiedorder":                             "/pay/unifiedorder",
		"/pay/unifiedorder/x":                           "/pay/other",
		"/pay/anything":                                 "/pay/other",
		"/secapi/pay/refund":                            "/secapi/pay/refund",
		"/secapi/pay/other-thing":                       "/secapi/other",
	} {
		if got := payAPI([]byte(path)); got != want {
			t.Errorf("payAPI(%q) = %q, want %q", path, got, want)
		}
	}
	if raceEnabled {
		return // allocation counts are not meaningful under -race
	}
	if n := testing.AllocsPerRun(100, func() { payAPI([]byte("/v3/pay/transactions/out-trade-no/o-123")) }); n != 0 {
		t.Errorf("payAPI allocates %.0f times", n)
	}
}
