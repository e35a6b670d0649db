package proxy

import "bytes"

// payAPIs are the WeChat Pay API templates the metrics and logs name: "*" stands for one path
// segment (an order number, a transaction id). A path that matches none is named by its prefix
// and "other", so that a label never carries request data.
var payAPIs = [...]string{
	"/v3/pay/transactions/jsapi",
	"/v3/pay/transactions/app",
	"/v3/pay/transactions/h5",
	"/v3/pay/transactions/native",
	"/v3/pay/transactions/id/*",
	"/v3/pay/transactions/out-trade-no/*",
	"/v3/pay/transactions/out-trade-no/*/close",
	"/v3/pay/partner/transactions/jsapi", // service-provider mode (docs/partner.md)
	"/v3/pay/partner/transactions/id/*",
	"/v3/pay/partner/transactions/out-trade-no/*",
	"/v3/pay/partner/transactions/out-trade-no/*/close",
	"/v3/refund/domestic/refunds",
	"/v3/refund/domestic/refunds/*",
	"/v3/certificates",
	"/v3/bill/tradebill",
	"/v3/bill/fundflowbill",
	"/v3/billdownload/file",
	"/pay/unifiedorder",
	"/pay/orderquery",
	"/pay/closeorder",
	"/pay/refundquery",
	"/pay/downloadbill",
	"/pay/micropay",
	"/secapi/pay/refund",
	"/secapi/pay/reverse",
	"/pay/downloadfundflow",
	"/pay/contractorder",
	"/pay/pappayapply",
	"/pay/paporderquery",
	"/papay/querycontract",
	"/papay/deletecontract",
	"/mmpaymkttransfers/promotion/transfers",
	"/mmpaymkttransfers/gettransferinfo",
	"/mmpaymkttransfers/sendredpack",
	"/mmpaymkttransfers/sendgroupredpack",
	"/mmpaymkttransfers/sendminiprogramhb",
	"/mmpaymkttransfers/gethbinfo",
	"/sandboxnew/pay/getsignkey",
	"/sandboxnew/pay/unifiedorder",
	"/sandboxnew/pay/orderquery",
	"/sandboxnew/pay/downloadbill",
}

// payAPI names a WeChat Pay path (without its query) for metrics and logs.
func payAPI(path []byte) string {
	for _, p := range payAPIs {
		if matchTemplate(p, path) {
			return p
		}
	}
	switch {
	case bytes.HasPrefix(path, []byte("/v3/")):
		return "/v3/other"
	case bytes.HasPrefix(path, []byte("/secapi/")):
		return "/secapi/other"
	case bytes.HasPrefix(path, []byte("/mmpaymkttransfers/")):
		return "/mmpaymkttransfers/other"
	case bytes.HasPrefix(path, []byte("/papay/")):
		return "/papay/other"
	case bytes.HasPrefix(path, []byte("/sandboxnew/")):
		return "/sandboxnew/other"
	}
	return "/pay/other"
}

// matchTemplate reports whether path has template's segments, "*" matching any non-empty one.
func matchTemplate(template string, path []byte) bool {
	for {
		ti := indexSlash(template)
		pi := bytes.IndexByte(path, '/')
		if pi < 0 {
			pi = len(path)
		}
		t, p := template[:ti], path[:pi]
		if t == "*" {
			if len(p) == 0 {
				return false
			}
		} else if t != string(p) {
			return false
		}
		if ti == len(template) || pi == len(path) {
			return ti == len(template) && pi == len(path)
		}
		template, path = template[ti+1:], path[pi+1:]
	}
}

// indexSlash is the index of the first '/' in s, or len(s).
func indexSlash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}
