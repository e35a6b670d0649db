package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// jsapiBody is a v3 mini-program order for merchant m.
func jsapiBody(appID, mchID, outTradeNo string, total int) []byte {
	return []byte(fmt.Sprintf(`{"appid":%q,"mchid":%q,"description":"wxgate test","out_trade_no":%q,"notify_url":"https://127.0.0.1:1/notify","amount":{"total":%d,"currency":"CNY"},"payer":{"openid":"o-payer-0001"}}`,
		appID, mchID, outTradeNo, total))
}

// TestV3OrderLifecycle places, pays (through the emulated client with wxgate's payment params),
// queries and refunds an order, for a merchant in public-key mode and one in certificates mode.
func TestV3OrderLifecycle(t *testing.T) {
	e := startEnv(t, nil)
	for _, m := range e.cfg.Merchants {
		t.Run(m.Name, func(t *testing.T) {
			h := []string{proxy.HeaderMerchant, m.Name}
			no := "v3order-" + m.Name
			a := e.do("POST", "/v3/pay/transactions/jsapi", jsapiBody(m.AppID, m.MchID, no, 990), h...)
			prepay, _ := a.json(t)["prepay_id"].(string)
			if a.Status != 200 || prepay == "" {
				t.Fatalf("jsapi: %d %s", a.Status, a.Body)
			}
			if a.Header["Wechatpay-Signature"] == "" {
				t.Fatal("WeChat Pay's signature headers were not passed on")
			}
			a = e.do("POST", proxy.PathV3PaymentParams, []byte(`{"prepay_id":"`+prepay+`"}`), h...)
			var p proxy.RequestPaymentParams
			if err := json.Unmarshal(a.Body, &p); err != nil || a.Status != 200 || p.SignType != "RSA" || p.Package != "prepay_id="+prepay {
				t.Fatalf("payment params: %d %s", a.Status, a.Body)
			}
			if msg, ok := e.emu.RequestPaymentClient(emulator.RequestPayment{AppID: m.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign}); !ok {
				t.Fatalf("the client rejected wxgate's payment params: %s", msg)
			}
			a = e.do("GET", "/v3/pay/transactions/out-trade-no/"+no+"?mchid="+m.MchID, nil, h...)
			txn, _ := a.json(t)["transaction_id"].(string)
			if a.Status != 200 || a.json(t)["trade_state"] != "SUCCESS" || txn == "" {
				t.Fatalf("query: %d %s", a.Status, a.Body)
			}
			if a = e.do("GET", "/v3/pay/transactions/id/"+txn+"?mchid="+m.MchID, nil, h...); a.Status != 200 || a.json(t)["out_trade_no"] != no {
				t.Fatalf("query by id: %d %s", a.Status, a.Body)
			}
			refund := fmt.Sprintf(`{"out_trade_no":%q,"out_refund_no":"rf-%s","amount":{"refund":990,"total":990,"currency":"CNY"}}`, no, m.Name)
			if a = e.do("POST", "/v3/refund/domestic/refunds", []byte(refund), h...); a.Status != 200 || a.json(t)["status"] != "PROCESSING" {
				t.Fatalf("refund: %d %s", a.Status, a.Body)
			}
			if a = e.do("GET", "/v3/refund/domestic/refunds/rf-"+m.Name, nil, h...); a.Status != 200 || a.json(t)["status"] != "SUCCESS" {
				t.Fatalf("refund query: %d %s", a.Status, a.Body)
			}
			// Close an unpaid order: 204 with an empty, signed body.
			e.do("POST", "/v3/pay/transactions/jsapi", jsapiBody(m.AppID, m.MchID, no+"-c", 5), h...)
			if a = e.do("POST", "/v3/pay/transactions/out-trade-no/"+no+"-c/close", []byte(`{"mchid":"`+m.MchID+`"}`), h...); a.Status != 204 || len(a.Body) != 0 {
				t.Fatalf("close: %d %s", a.Status, a.Body)
			}
			// WeChat Pay's own errors are signed and pass through unchanged.
			if a = e.do("GET", "/v3/pay/transactions/out-trade-no/no-such-order?mchid="+m.MchID, nil, h...); a.Status != 404 || a.json(t)["code"] != "ORDER_NOT_EXIST" {
				t.Fatalf("unknown order: %d %s", a.Status, a.Body)
			}
		})
	}
}

// TestV3ForgedAnswersRejected checks that answers WeChat did not sign properly never reach the app.
func TestV3ForgedAnswersRejected(t *testing.T) {
	e := startEnv(t, nil)
	for _, m := range e.cfg.Merchants {
		h := []string{proxy.HeaderMerchant, m.Name}
		path := "/v3/pay/transactions/out-trade-no/none-000001?mchid=" + m.MchID
		if a := e.do("GET", path, nil, h...); a.Status != 404 {
			t.Fatalf("%s warm-up: %d %s", m.Name, a.Status, a.Body)
		}
		for _, tamper := range []emulator.Tamper{emulator.TamperSignTest, emulator.TamperBody, emulator.TamperStaleTimestamp, emulator.TamperForeignKey, emulator.TamperUnknownSerial, emulator.TamperUnsigned} {
			e.emu.TamperNext(tamper, 1)
			a := e.do("GET", path, nil, h...)
			if a.Status != 502 || a.wxgateError(t) != proxy.CodeResponseSignature {
				t.Errorf("%s %s: want 502 %s, got %d %s", m.Name, tamper, proxy.CodeResponseSignature, a.Status, a.Body)
			}
			if strings.Contains(string(a.Body), "ORDER_NOT_EXIST") {
				t.Errorf("%s %s: the unverified body leaked to the app: %s", m.Name, tamper, a.Body)
			}
		}
		if a := e.do("GET", path, nil, h...); a.Status != 404 {
			t.Fatalf("%s after the forgeries: %d %s", m.Name, a.Status, a.Body)
		}
	}
}

// TestCertificateRotationMidRun rotates the platform certificate while requests run: none fails.
func TestCertificateRotationMidRun(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("certs")
	h := []string{proxy.HeaderMerchant, "certs"}
	path := "/v3/pay/transactions/out-trade-no/none-000002?mchid=" + m.MchID
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if w == 0 && i%8 == 3 {
					e.emu.RotatePlatformCertificate()
				}
				if a := e.do("GET", path, nil, h...); a.Status != 404 {
					errs <- fmt.Sprintf("%d %s", a.Status, a.Body)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error("request failed during rotation:", s)
	}
}

// TestV3BillDownload fetches a trade bill: the unsigned file passes with its SHA-1 checked against
// the hash the signed answer announced.
func TestV3BillDownload(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	signed0, cpu0 := e.metric(t, "wxgate_signatures_total"), e.metric(t, "wxgate_sign_cpu_seconds_total")
	if a := e.do("POST", "/v3/pay/transactions/jsapi", jsapiBody(m.AppID, m.MchID, "bill-order-1", 300)); a.Status != 200 {
		t.Fatalf("jsapi: %d %s", a.Status, a.Body)
	}
	// The order's Authorization is one RSA signature, and the metrics count it and its CPU.
	if signed := e.metric(t, "wxgate_signatures_total") - signed0; signed != 1 {
		t.Errorf("wxgate_signatures_total rose by %v over one order, want 1", signed)
	}
	if cpu := e.metric(t, "wxgate_sign_cpu_seconds_total") - cpu0; runtime.GOOS == "linux" && (cpu <= 0 || cpu > 0.5) {
		t.Errorf("wxgate_sign_cpu_seconds_total rose by %v over one RSA-2048 signature", cpu)
	}
	if err := e.emu.PayOrder(m.MchID, "bill-order-1"); err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	for _, tar := range []string{"", "&tar_type=GZIP"} {
		a := e.do("GET", "/v3/bill/tradebill?bill_date="+today+"&bill_type=ALL"+tar, nil)
		var bill struct{ HashType, HashValue, DownloadURL string }
		json.Unmarshal(a.Body, &map[string]any{})
		var raw map[string]string
		if err := json.Unmarshal(a.Body, &raw); err != nil || a.Status != 200 {
			t.Fatalf("tradebill: %d %s", a.Status, a.Body)
		}
		bill.HashValue, bill.DownloadURL = raw["hash_value"], raw["download_url"]
		u, err := url.Parse(bill.DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		f := e.do("GET", u.RequestURI(), nil)
		if f.Status != 200 || f.Header["X-Wxgate-Bill-Verified"] != "true" || f.Header["X-Wxgate-Bill-Sha1"] != strings.ToLower(bill.HashValue) || f.Header[proxy.HeaderUnsigned] != "true" {
			t.Fatalf("bill file%s: %d verified=%q sha1=%q want %q", tar, f.Status, f.Header["X-Wxgate-Bill-Verified"], f.Header["X-Wxgate-Bill-Sha1"], bill.HashValue)
		}
		if x, _ := e.emu.LastExchange("/v3/billdownload/file"); x.Header["Accept"] != "*/*" {
			t.Fatalf("bill file%s asked with Accept %q, want */* (a file download)", tar, x.Header["Accept"])
		}
		// The file changed on its way (a byte of the CSV, recompressed when gzip): its SHA-1 no
		// longer matches the signed hash_value, and the app gets a 502, never the file.
		a = e.do("GET", "/v3/bill/tradebill?bill_date="+today+"&bill_type=ALL"+tar, nil)
		if err := json.Unmarshal(a.Body, &raw); err != nil || a.Status != 200 {
			t.Fatalf("tradebill: %d %s", a.Status, a.Body)
		}
		u, err = url.Parse(raw["download_url"])
		if err != nil {
			t.Fatal(err)
		}
		e.emu.TamperNext(emulator.TamperBody, 1)
		if f := e.do("GET", u.RequestURI(), nil); f.Status != 502 || f.wxgateError(t) != proxy.CodeBillHashMismatch || f.Header["X-Wxgate-Bill-Sha1"] != "" {
			t.Fatalf("tampered bill file%s: %d %s", tar, f.Status, f.Body)
		}
		if f := e.do("GET", u.RequestURI(), nil); f.Status != 200 || f.Header["X-Wxgate-Bill-Verified"] != "true" {
			t.Fatalf("bill file%s downloaded again, untampered: %d verified=%q", tar, f.Status, f.Header["X-Wxgate-Bill-Verified"])
		}
	}
	// The download's errors are signed JSON: verified and relayed unmarked, and refused forged.
	const bogus = "/v3/billdownload/file?token=no-such-token"
	if f := e.do("GET", bogus, nil); f.Status != 400 || f.json(t)["code"] != "INVALID_REQUEST" || f.Header[proxy.HeaderUnsigned] != "" || f.Header["X-Wxgate-Bill-Sha1"] != "" {
		t.Fatalf("unknown bill token: %d %v %s", f.Status, f.Header, f.Body)
	}
	e.emu.TamperNext(emulator.TamperBody, 1)
	if f := e.do("GET", bogus, nil); f.Status != 502 || f.wxgateError(t) != proxy.CodeResponseSignature {
		t.Fatalf("forged error on the bill download: %d %s", f.Status, f.Body)
	}
}

// TestV3SignsInlineWhenAsked: with [server] sign_priority = "normal" the signatures run on the
// requests' own goroutines, and WeChat Pay (the emulator, which checks every Authorization) and
// the metrics see them as with the signing threads.
func TestV3SignsInlineWhenAsked(t *testing.T) {
	e := startEnv(t, func(s string) string {
		return strings.Replace(s, "[server]\n", "[server]\nsign_priority = \"normal\"\n", 1)
	})
	m, _ := e.cfg.Merchant("pk")
	if e.cfg.Server.SignPriority != "normal" {
		t.Fatalf("the edited config has sign_priority %q", e.cfg.Server.SignPriority)
	}
	signed0 := e.metric(t, "wxgate_signatures_total")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := e.do("POST", "/v3/pay/transactions/jsapi", jsapiBody(m.AppID, m.MchID, fmt.Sprintf("inline-%d", i), 100))
			if prepay, _ := a.json(t)["prepay_id"].(string); a.Status != 200 || prepay == "" {
				t.Errorf("jsapi %d: %d %s", i, a.Status, a.Body)
			}
		}()
	}
	wg.Wait()
	if signed := e.metric(t, "wxgate_signatures_total") - signed0; signed != 4 {
		t.Errorf("wxgate_signatures_total rose by %v over four orders, want 4", signed)
	}
}

// v2Call posts an APIv2 document through wxgate and returns the parsed answer.
func (e *testEnv) v2Call(t *testing.T, path, xml string, headers ...string) (answer, map[string]string) {
	t.Helper()
	a := e.do("POST", path, []byte(xml), headers...)
	out := map[string]string{}
	if a.Status == 200 {
		params, err := signer.ParseXML(a.Body)
		if err != nil {
			t.Fatalf("%s answer is not APIv2 XML: %s", path, a.Body)
		}
		for _, p := range params {
			out[p.Key] = p.Value
		}
	}
	return a, out
}

// TestV2Flow places, pays, queries and refunds a legacy APIv2 order, with MD5 and HMAC-SHA256.
func TestV2Flow(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	for _, st := range []string{"MD5", "HMAC-SHA256"} {
		t.Run(st, func(t *testing.T) {
			no := "v2order" + strings.ReplaceAll(st, "-", "")
			doc := `<xml><body>test</body><out_trade_no>` + no + `</out_trade_no><total_fee>101</total_fee><spbill_create_ip>127.0.0.1</spbill_create_ip><notify_url>https://127.0.0.1:1/n</notify_url><trade_type>JSAPI</trade_type><openid>o-payer-0001</openid><sign_type>` + st + `</sign_type></xml>`
			a, ans := e.v2Call(t, "/pay/unifiedorder", doc)
			if a.Status != 200 || ans["return_code"] != "SUCCESS" || ans["result_code"] != "SUCCESS" || ans["prepay_id"] == "" {
				t.Fatalf("unifiedorder: %d %s", a.Status, a.Body)
			}
			a = e.do("POST", proxy.PathV2PaymentParams, []byte(`{"prepay_id":"`+ans["prepay_id"]+`","sign_type":"`+st+`"}`))
			var p proxy.RequestPaymentParams
			if err := json.Unmarshal(a.Body, &p); err != nil || a.Status != 200 || p.AppID != m.AppID {
				t.Fatalf("v2 payment params: %d %s", a.Status, a.Body)
			}
			if msg, ok := e.emu.RequestPaymentClient(emulator.RequestPayment{AppID: p.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package, SignType: p.SignType, PaySign: p.PaySign}); !ok {
				t.Fatalf("the client rejected the v2 params: %s", msg)
			}
			a, ans = e.v2Call(t, "/pay/orderquery", `<xml><out_trade_no>`+no+`</out_trade_no><sign_type>`+st+`</sign_type></xml>`)
			if ans["trade_state"] != "SUCCESS" {
				t.Fatalf("orderquery: %d %s", a.Status, a.Body)
			}
			refund := `<xml><out_trade_no>` + no + `</out_trade_no><out_refund_no>r` + no + `</out_refund_no><total_fee>101</total_fee><refund_fee>101</refund_fee><sign_type>` + st + `</sign_type></xml>`
			if a, ans = e.v2Call(t, "/secapi/pay/refund", refund); ans["return_code"] != "SUCCESS" || ans["result_code"] != "SUCCESS" {
				t.Fatalf("secapi refund: %d %s", a.Status, a.Body)
			}
			if a, ans = e.v2Call(t, "/pay/refundquery", `<xml><out_refund_no>r`+no+`</out_refund_no><sign_type>`+st+`</sign_type></xml>`); ans["result_code"] != "SUCCESS" {
				t.Fatalf("refundquery: %d %s", a.Status, a.Body)
			}
			// Close another, unpaid order.
			e.v2Call(t, "/pay/unifiedorder", strings.Replace(doc, no, no+"c", 1))
			if a, ans = e.v2Call(t, "/pay/closeorder", `<xml><out_trade_no>`+no+`c</out_trade_no><sign_type>`+st+`</sign_type></xml>`); ans["result_code"] != "SUCCESS" {
				t.Fatalf("closeorder: %d %s", a.Status, a.Body)
			}
		})
	}
}

// TestV2DownloadBill passes the unsigned CSV bill through, marked X-Wxgate-Unsigned.
func TestV2DownloadBill(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	if a := e.do("POST", "/v3/pay/transactions/jsapi", jsapiBody(m.AppID, m.MchID, "v2bill-order", 300)); a.Status != 200 {
		t.Fatalf("jsapi: %d %s", a.Status, a.Body)
	}
	if err := e.emu.PayOrder(m.MchID, "v2bill-order"); err != nil {
		t.Fatal(err)
	}
	day := time.Now().In(time.FixedZone("CST", 8*3600)).Format("20060102")
	a := e.do("POST", "/pay/downloadbill", []byte(`<xml><bill_date>`+day+`</bill_date><bill_type>ALL</bill_type></xml>`))
	if a.Status != 200 || !strings.Contains(string(a.Body), "v2bill-order") || a.Header["X-Wxgate-Unsigned"] != "true" {
		t.Fatalf("downloadbill: %d %v %s", a.Status, a.Header, a.Body)
	}
}

// TestVerifyBothModes runs a merchant with both the public key and platform certificates (the
// switch-over): answers verify whichever key signed them.
func TestVerifyBothModes(t *testing.T) {
	e := startEnv(t, func(s string) string {
		return strings.Replace(s, "name = \"pk\"\n", "name = \"pk\"\nverify = \"both\"\n", 1)
	})
	m, _ := e.cfg.Merchant("pk")
	if m.Verify != "both" {
		t.Fatalf("verify = %q", m.Verify)
	}
	h := []string{proxy.HeaderMerchant, "pk"}
	a := e.do("POST", "/v3/pay/transactions/jsapi", jsapiBody(m.AppID, m.MchID, "both-order", 100), h...)
	if a.Status != 200 || a.Header["Wechatpay-Serial"] != m.PublicKeyID {
		t.Fatalf("jsapi: %d serial %q %s", a.Status, a.Header["Wechatpay-Serial"], a.Body)
	}
	// A platform certificate signs the certificates list itself; wxgate learns it too.
	if a = e.do("GET", "/v3/certificates", nil, h...); a.Status != 200 {
		t.Fatalf("certificates: %d %s", a.Status, a.Body)
	}
}

// TestPayBadInput is the WeChat Pay mistakes matrix.
func TestPayBadInput(t *testing.T) {
	e := startEnv(t, nil)
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     string
	}{
		{"unknown merchant", "GET", "/v3/certificates", "", []string{proxy.HeaderMerchant, "nope"}, 400, proxy.CodeUnknownMerchant},
		{"v3 body not json", "POST", "/v3/pay/transactions/jsapi", "appid=1", nil, 400, proxy.CodeBodyNotJSON},
		{"v3 bad method", "HEAD", "/v3/certificates", "", nil, 405, proxy.CodeMethodNotAllowed},
		{"v2 malformed xml", "POST", "/pay/orderquery", "<xml><a>1</xml>", nil, 400, proxy.CodeBodyNotXML},
		{"v2 doctype", "POST", "/pay/orderquery", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`, nil, 400, proxy.CodeBodyNotXML},
		{"v2 json body", "POST", "/pay/orderquery", `{"a":1}`, nil, 400, proxy.CodeBodyNotXML},
		{"v2 other mch_id", "POST", "/pay/orderquery", "<xml><mch_id>1234567890</mch_id></xml>", nil, 400, proxy.CodeBadRequest},
		{"v2 bad sign_type", "POST", "/pay/orderquery", "<xml><sign_type>SHA1</sign_type></xml>", nil, 400, proxy.CodeBadRequest},
		{"v2 get", "GET", "/pay/orderquery", "", nil, 405, proxy.CodeMethodNotAllowed},
		{"secapi without client cert", "POST", "/secapi/pay/refund", "<xml><out_trade_no>x</out_trade_no></xml>", []string{proxy.HeaderMerchant, "certs"}, 400, proxy.CodeClientCertMissing},
		{"v3 params no prepay_id", "POST", proxy.PathV3PaymentParams, `{}`, nil, 400, proxy.CodeBadRequest},
		{"v3 params bad json", "POST", proxy.PathV3PaymentParams, `prepay`, nil, 400, proxy.CodeBodyNotJSON},
		{"v2 params bad sign type", "POST", proxy.PathV2PaymentParams, `{"prepay_id":"wx1","sign_type":"RSA"}`, nil, 400, proxy.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			a := e.do(tt.method, tt.path, body, tt.headers...)
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.Status, tt.status, a.Body)
			}
			if tt.method != "HEAD" {
				if got := a.wxgateError(t); got != tt.code {
					t.Fatalf("code %q, want %q: %s", got, tt.code, a.Body)
				}
			}
		})
	}
	// Without any merchant configured, WeChat Pay paths say so.
	cfg := e.configWith(func(s string) string { return s[:strings.Index(s, "[[merchant]]")] })
	_, appURL, _ := e.startGateway(cfg)
	a := e.doURL("POST", appURL+"/v3/pay/transactions/jsapi", []byte(`{}`))
	if a.Status != 400 || a.wxgateError(t) != proxy.CodeMerchantNotConfigured {
		t.Fatalf("no merchant: %d %s", a.Status, a.Body)
	}
}
