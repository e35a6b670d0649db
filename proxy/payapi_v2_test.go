package proxy

import "testing"

// TestPayAPIV2Families: the APIv2 families beyond /pay/ and /secapi/ are named by their path or
// by their family's "other", never by request data.
func TestPayAPIV2Families(t *testing.T) {
	for path, want := range map[string]string{
		"/mmpaymkttransfers/promotion/transfers": "/mmpaymkttransfers/promotion/transfers",
		"/mmpaymkttransfers/gethbinfo":           "/mmpaymkttransfers/gethbinfo",
		"/mmpaymkttransfers/whatever-123":        "/mmpaymkttransfers/other",
		"/papay/deletecontract":                  "/papay/deletecontract",
		"/papay/x":                               "/papay/other",
		"/pay/downloadfundflow":                  "/pay/downloadfundflow",
		"/sandboxnew/pay/getsignkey":             "/sandboxnew/pay/getsignkey",
		"/sandboxnew/pay/refundquery":            "/sandboxnew/other",
	} {
		if got := payAPI([]byte(path)); got != want {
			t.Errorf("payAPI(%q) = %q, want %q", path, got, want)
		}
	}
}
