package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/signer"
)

// unifiedOrderParams are the fields of a mini-program unifiedorder.
func unifiedOrderParams(outTradeNo, totalFee string) []signer.Param {
	return []signer.Param{
		p("body", "腾讯充值中心-QQ会员充值"), p("out_trade_no", outTradeNo), p("total_fee", totalFee),
		p("spbill_create_ip", "123.12.12.123"), p("notify_url", "https://127.0.0.1:1/wxpay/v2"),
		p("trade_type", "JSAPI"), p("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), p("attach", "x<y>&z"),
	}
}

// expectV2 checks return_code SUCCESS and the result_code (and err_code when FAIL).
func expectV2(t *testing.T, d v2Doc, errCode string) {
	t.Helper()
	if d.get("return_code") != "SUCCESS" {
		t.Fatalf("return_code FAIL: %s", d.raw)
	}
	want := "SUCCESS"
	if errCode != "" {
		want = "FAIL"
	}
	if d.get("result_code") != want || d.get("err_code") != errCode {
		t.Fatalf("answer %s, want result_code %s err_code %q", d.raw, want, errCode)
	}
}

// expectV2Fail checks a return_code FAIL answer.
func expectV2Fail(t *testing.T, d v2Doc, msg string) {
	t.Helper()
	if d.get("return_code") != "FAIL" || !strings.Contains(d.get("return_msg"), msg) {
		t.Fatalf("answer %s, want return_code FAIL with %q", d.raw, msg)
	}
}

func TestV2OrderFlow(t *testing.T) {
	for _, signType := range []string{"", signer.V2SignMD5, signer.V2SignHMACSHA256} {
		t.Run("sign_type="+signType, func(t *testing.T) {
			h := newMchHarness(t)
			payType := signType
			if payType == "" {
				payType = signer.V2SignMD5
			}
			d := h.v2(h.mp, "/pay/unifiedorder", signType, unifiedOrderParams("v2_order_1", "100"))
			expectV2(t, d, "")
			prepayID := d.get("prepay_id")
			if d.get("trade_type") != "JSAPI" || !strings.HasPrefix(prepayID, "wx") {
				t.Fatalf("unifiedorder: %s", d.raw)
			}
			if signType == signer.V2SignHMACSHA256 && len(d.get("sign")) != 64 || signType != signer.V2SignHMACSHA256 && len(d.get("sign")) != 32 {
				t.Errorf("answer sign %q does not match sign type %q", d.get("sign"), signType)
			}
			d = h.v2(h.mp, "/pay/orderquery", signType, []signer.Param{p("out_trade_no", "v2_order_1")})
			expectV2(t, d, "")
			if d.get("trade_state") != "NOTPAY" || d.get("total_fee") != "100" || d.get("transaction_id") != "" || d.get("attach") != "x<y>&z" {
				t.Fatalf("orderquery before payment: %s", d.raw)
			}
			// One order book: APIv3 sees the order too.
			if m := h.v3(h.mp, "GET", "/v3/pay/transactions/out-trade-no/v2_order_1?mchid="+mchIDP, nil).obj(t); m.str("trade_state") != "NOTPAY" {
				t.Fatalf("APIv3 query of an APIv2 order: %v", m)
			}
			wrong := signer.V2SignHMACSHA256
			if payType == wrong {
				wrong = signer.V2SignMD5
			}
			if msg, ok := h.emu.RequestPaymentClient(h.v2Payment(h.mp, wrong, prepayID)); ok || !strings.Contains(msg, "signType") {
				t.Fatalf("paySign with the other sign type: %s", msg)
			}
			if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(h.mp, prepayID)); ok {
				t.Fatalf("RSA paySign for an APIv2 order: %s", msg)
			}
			req := h.v2Payment(h.mp, payType, prepayID)
			if signType == "" {
				req.SignType = "" // wx.requestPayment's default is MD5
			}
			if msg, ok := h.emu.RequestPaymentClient(req); !ok {
				t.Fatalf("RequestPaymentClient: %s", msg)
			}
			d = h.v2(h.mp, "/pay/orderquery", signType, []signer.Param{p("out_trade_no", "v2_order_1")})
			expectV2(t, d, "")
			txn := d.get("transaction_id")
			if d.get("trade_state") != "SUCCESS" || len(txn) != 28 || d.get("time_end") != "20240501100000" || d.get("cash_fee") != "100" || d.get("openid") == "" {
				t.Fatalf("orderquery after payment: %s", d.raw)
			}
			expectV2(t, h.v2(h.mp, "/pay/orderquery", signType, []signer.Param{p("transaction_id", txn)}), "")
			expectV2(t, h.v2(h.mp, "/pay/closeorder", signType, []signer.Param{p("out_trade_no", "v2_order_1")}), "ORDERPAID")
			expectV2(t, h.v2(h.mp, "/pay/unifiedorder", signType, unifiedOrderParams("v2_order_1", "100")), "ORDERPAID")

			// Refund over TLS with the client certificate, then refundquery.
			d = h.v2(h.mp, "/secapi/pay/refund", signType, []signer.Param{
				p("out_trade_no", "v2_order_1"), p("out_refund_no", "v2_refund_1"), p("total_fee", "100"), p("refund_fee", "30"),
			}, v2Client(h.tlsClient, h.tlsBase))
			expectV2(t, d, "")
			if d.get("refund_id") == "" || d.get("refund_fee") != "30" || d.get("transaction_id") != txn {
				t.Fatalf("refund: %s", d.raw)
			}
			for _, q := range []signer.Param{p("out_refund_no", "v2_refund_1"), p("refund_id", d.get("refund_id")), p("out_trade_no", "v2_order_1"), p("transaction_id", txn)} {
				r := h.v2(h.mp, "/pay/refundquery", signType, []signer.Param{q})
				expectV2(t, r, "")
				if r.get("refund_count") != "1" || r.get("refund_status_0") != "SUCCESS" || r.get("out_refund_no_0") != "v2_refund_1" ||
					r.get("refund_fee_0") != "30" || r.get("refund_success_time_0") == "" {
					t.Fatalf("refundquery by %s: %s", q.Key, r.raw)
				}
			}
			expectV2(t, h.v2(h.mp, "/pay/refundquery", signType, []signer.Param{p("out_refund_no", "none")}), "REFUNDNOTEXIST")
			// APIv3 sees the APIv2 refund.
			if m := h.v3(h.mp, "GET", "/v3/refund/domestic/refunds/v2_refund_1", nil).obj(t); m.str("status") != "SUCCESS" {
				t.Fatalf("APIv3 refund query of an APIv2 refund: %v", m)
			}

			// Close an unpaid order; reuse rules.
			expectV2(t, h.v2(h.mp, "/pay/unifiedorder", signType, unifiedOrderParams("v2_order_2", "5")), "")
			expectV2(t, h.v2(h.mp, "/pay/unifiedorder", signType, unifiedOrderParams("v2_order_2", "6")), "INVALID_REQUEST")
			expectV2(t, h.v2(h.mp, "/pay/closeorder", signType, []signer.Param{p("out_trade_no", "v2_order_2")}), "")
			expectV2(t, h.v2(h.mp, "/pay/closeorder", signType, []signer.Param{p("out_trade_no", "v2_order_2")}), "ORDERCLOSED")
			expectV2(t, h.v2(h.mp, "/pay/closeorder", signType, []signer.Param{p("out_trade_no", "v2_none")}), "ORDERNOTEXIST")
			expectV2(t, h.v2(h.mp, "/pay/orderquery", signType, []signer.Param{p("out_trade_no", "v2_none")}), "ORDERNOTEXIST")
			if d := h.v2(h.mp, "/pay/orderquery", signType, []signer.Param{p("out_trade_no", "v2_order_2")}); d.get("trade_state") != "CLOSED" {
				t.Fatalf("orderquery of a closed order: %s", d.raw)
			}
		})
	}
}

func TestV2Rejections(t *testing.T) {
	h := newMchHarness(t)
	query := []signer.Param{p("out_trade_no", "x")}
	unknown := h.mp
	unknown.MchID = "1900009999"
	unbound := h.mp
	unbound.AppID = appIDK
	without := func(key string) []signer.Param {
		var out []signer.Param
		for _, q := range unifiedOrderParams("v2_reject", "1") {
			if q.Key != key {
				out = append(out, q)
			}
		}
		return out
	}
	with := func(key, value string) []signer.Param {
		return append(without(key), p(key, value))
	}
	tests := []struct {
		name     string
		m        testMerchant
		path     string
		signType string
		params   []signer.Param
		opts     []v2Opt
		msg      string
	}{
		{"bad sign", h.mp, "/pay/orderquery", "", query, []v2Opt{v2Sign("9A0A8659F005D6984697E2CA0A9CF3B7")}, v2MsgSign},
		{"signed with another key", h.mp, "/pay/orderquery", "", query, []v2Opt{v2SignKey("another-key")}, v2MsgSign},
		{"HMAC sign under sign_type MD5", h.mp, "/pay/orderquery", signer.V2SignMD5, query, []v2Opt{v2Sign(strings.Repeat("A", 64))}, v2MsgSign},
		{"unknown sign_type", h.mp, "/pay/orderquery", "SHA1", query, nil, v2MsgSignType},
		{"unknown mch_id", unknown, "/pay/orderquery", "", query, nil, v2MsgMchID},
		{"merchant without APIv2", h.mk, "/pay/orderquery", "", query, []v2Opt{v2SignKey("anything")}, v2MsgSign},
		{"appid not bound", unbound, "/pay/orderquery", "", query, nil, v2MsgAppID},
		{"no nonce_str", h.mp, "/pay/orderquery", "", query, []v2Opt{v2NoNonce()}, "nonce_str"},
		{"orderquery without ids", h.mp, "/pay/orderquery", "", nil, nil, "out_trade_no"},
		{"unifiedorder without body", h.mp, "/pay/unifiedorder", "", without("body"), nil, "缺少参数body"},
		{"unifiedorder without openid", h.mp, "/pay/unifiedorder", "", without("openid"), nil, "JSAPI支付必须传openid"},
		{"unifiedorder NATIVE", h.mp, "/pay/unifiedorder", "", with("trade_type", "NATIVE"), nil, "trade_type"},
		{"unifiedorder total_fee not a number", h.mp, "/pay/unifiedorder", "", with("total_fee", "1.00"), nil, "total_fee"},
		{"unifiedorder notify_url with a query", h.mp, "/pay/unifiedorder", "", with("notify_url", "https://example.com/n?a=1"), nil, "notify_url"},
		{"unifiedorder time_expire in the past", h.mp, "/pay/unifiedorder", "", append(without(""), p("time_expire", "20240501090000")), nil, "time_expire"},
		{"refund over plain HTTP", h.mp, "/secapi/pay/refund", "", query, nil, v2MsgCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			expectV2Fail(t, h.v2(tt.m, tt.path, tt.signType, tt.params, tt.opts...), tt.msg)
		})
	}
	h.t = t
	for _, tc := range []struct{ method, path, body, msg string }{
		{"POST", "/pay/orderquery", `{"appid":"x"}`, v2MsgXML},
		{"POST", "/pay/orderquery", `<!DOCTYPE xml [<!ENTITY e "x">]><xml><appid>&e;</appid></xml>`, v2MsgXML},
		{"GET", "/pay/orderquery", "", v2MsgPost},
	} {
		status, body := h.do(tc.method, tc.path, []byte(tc.body))
		params, err := signer.ParseXML(body)
		if err != nil || status != 200 {
			t.Fatalf("%s %s: HTTP %d %s", tc.method, tc.path, status, body)
		}
		expectV2Fail(t, v2Doc{params: params, raw: body}, tc.msg)
	}
	if status, _ := h.do("POST", "/pay/nothing", []byte("<xml></xml>")); status != 404 {
		t.Errorf("unknown APIv2 path: HTTP %d, want 404", status)
	}
}

func TestV2SecapiRefund(t *testing.T) {
	h := newMchHarness(t)
	expectV2(t, h.v2(h.mp, "/pay/unifiedorder", "", unifiedOrderParams("secapi_order", "100")), "")
	if err := h.emu.PayOrder(mchIDP, "secapi_order"); err != nil {
		t.Fatal(err)
	}
	refund := func(outRefundNo, fee, total string) []signer.Param {
		return []signer.Param{p("out_trade_no", "secapi_order"), p("out_refund_no", outRefundNo), p("total_fee", total), p("refund_fee", fee)}
	}
	tests := []struct {
		name    string
		opt     v2Opt
		params  []signer.Param
		fail    string // return_msg of a return_code FAIL
		errCode string // err_code of a result_code FAIL
	}{
		{"no client certificate", v2Client(h.noCert, h.tlsBase), refund("secapi_r1", "10", "100"), v2MsgCert, ""},
		{"another client certificate", v2Client(h.wrongCert, h.tlsBase), refund("secapi_r1", "10", "100"), v2MsgCert, ""},
		{"plain HTTP", v2Client(h.client, h.base), refund("secapi_r1", "10", "100"), v2MsgCert, ""},
		{"the merchant's certificate", v2Client(h.tlsClient, h.tlsBase), refund("secapi_r1", "10", "100"), "", ""},
		{"same out_refund_no again", v2Client(h.tlsClient, h.tlsBase), refund("secapi_r1", "10", "100"), "", ""},
		{"same out_refund_no, other amount", v2Client(h.tlsClient, h.tlsBase), refund("secapi_r1", "11", "100"), "", "INVALID_REQUEST"},
		{"wrong total_fee", v2Client(h.tlsClient, h.tlsBase), refund("secapi_r2", "10", "99"), "", "PARAM_ERROR"},
		{"more than is left", v2Client(h.tlsClient, h.tlsBase), refund("secapi_r2", "91", "100"), "", "INVALID_REQUEST"},
		{"unknown order", v2Client(h.tlsClient, h.tlsBase), []signer.Param{p("out_trade_no", "nope"), p("out_refund_no", "secapi_r3"), p("total_fee", "1"), p("refund_fee", "1")}, "", "ORDERNOTEXIST"},
		{"refund_fee not a number", v2Client(h.tlsClient, h.tlsBase), refund("secapi_r2", "x", "100"), "refund_fee", ""},
		{"the rest", v2Client(h.tlsClient, h.tlsBase), refund("secapi_r2", "90", "100"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			d := h.v2(h.mp, "/secapi/pay/refund", "", tt.params, tt.opt)
			if tt.fail != "" {
				expectV2Fail(t, d, tt.fail)
				return
			}
			expectV2(t, d, tt.errCode)
		})
	}
	h.t = t
	expectV2(t, h.v2(h.mp, "/pay/orderquery", "", []signer.Param{p("out_trade_no", "secapi_order")}), "")
	if o, _ := h.emu.Order(mchIDP, "secapi_order"); o.TradeState != "REFUND" || o.Refunded != 100 {
		t.Fatalf("Order after full refund = %+v", o)
	}
	r := h.v2(h.mp, "/pay/refundquery", "", []signer.Param{p("out_trade_no", "secapi_order")})
	if r.get("refund_count") != "2" || r.get("refund_fee") != "100" || r.get("refund_status_1") != "SUCCESS" {
		t.Fatalf("refundquery: %s", r.raw)
	}
}

func TestV2SecapiWithoutClientCert(t *testing.T) {
	h := newMchHarness(t, func(c *Config) { c.Merchants[0].ClientCert = nil })
	expectV2(t, h.v2(h.mp, "/pay/unifiedorder", "", unifiedOrderParams("nocert_order", "100")), "")
	if err := h.emu.PayOrder(mchIDP, "nocert_order"); err != nil {
		t.Fatal(err)
	}
	d := h.v2(h.mp, "/secapi/pay/refund", "", []signer.Param{
		p("out_trade_no", "nocert_order"), p("out_refund_no", "nocert_r1"), p("total_fee", "100"), p("refund_fee", "1"),
	}, v2Client(h.tlsClient, h.tlsBase))
	expectV2Fail(t, d, v2MsgCert)
}

func TestV2DownloadBill(t *testing.T) {
	h := newMchHarness(t)
	expectV2(t, h.v2(h.mp, "/pay/unifiedorder", signer.V2SignHMACSHA256, unifiedOrderParams("v2_bill_order", "321")), "")
	if err := h.emu.PayOrder(mchIDP, "v2_bill_order"); err != nil {
		t.Fatal(err)
	}
	// The APIv3 bill of the same day, for comparison.
	v3Bill, _ := fetchBill(t, h, "bill_date=2024-05-01&bill_type=ALL", false)
	for _, tc := range []struct {
		name, signType string
		params         []signer.Param
		gzip           bool
	}{
		{"ALL, MD5", "", []signer.Param{p("bill_date", "20240501")}, false},
		{"ALL, HMAC-SHA256, gzip", signer.V2SignHMACSHA256, []signer.Param{p("bill_date", "20240501"), p("bill_type", "ALL"), p("tar_type", "GZIP")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			d := h.v2(h.mp, "/pay/downloadbill", tc.signType, tc.params)
			if d.status != 200 || d.params != nil {
				t.Fatalf("downloadbill: HTTP %d %s", d.status, d.raw)
			}
			bill := d.raw
			if tc.gzip {
				zr, err := gzip.NewReader(bytes.NewReader(d.raw))
				if err != nil {
					t.Fatal(err)
				}
				if bill, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if a, b := sha1.Sum(bill), sha1.Sum(v3Bill); hex.EncodeToString(a[:]) != hex.EncodeToString(b[:]) {
				t.Fatalf("APIv2 bill differs from the APIv3 bill:\n%s\n%s", bill, v3Bill)
			}
			_, rows, _ := parseBill(t, bill)
			if len(rows) != 1 || rows[0][6] != "`v2_bill_order" {
				t.Fatalf("bill rows %v", rows)
			}
		})
	}
	h.t = t
	for _, tc := range []struct{ date, code, msg string }{
		{"20240430", "20002", "No Bill Exist"},
		{"2024-05-01", "20001", "bill_date"},
		{"20240502", "20001", "bill_date"},
	} {
		d := h.v2(h.mp, "/pay/downloadbill", "", []signer.Param{p("bill_date", tc.date)})
		expectV2Fail(t, d, tc.msg)
		if d.get("error_code") != tc.code {
			t.Errorf("bill_date %s: error_code %q, want %s", tc.date, d.get("error_code"), tc.code)
		}
	}
}
