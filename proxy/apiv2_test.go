package proxy_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// The APIv2 families beyond /pay/ and /secapi/ (docs/apiv2.md), end to end through wxgate against
// the emulator, which verifies the sign (MD5 or HMAC-SHA256 as the path takes), the client
// certificate and the field names as WeChat Pay does.

// unsignedHeader is the marker of answers WeChat Pay does not sign.
const unsignedHeader = "X-Wxgate-Unsigned"

// requestParams parses the last APIv2 document the emulator received on path.
func (e *testEnv) requestParams(t *testing.T, path string) map[string]string {
	t.Helper()
	x, ok := e.emu.LastExchange(path)
	if !ok {
		t.Fatalf("the emulator received nothing on %s", path)
	}
	params, err := signer.ParseXML(x.Body)
	if err != nil {
		t.Fatalf("%s request is not APIv2 XML: %s", path, x.Body)
	}
	out := map[string]string{}
	for _, p := range params {
		out[p.Key] = p.Value
	}
	return out
}

// checkRelayed fails unless a is the emulator's last answer on path byte for byte, marked
// unsigned or not as want.
func (e *testEnv) checkRelayed(t *testing.T, path string, a answer, unsigned bool) {
	t.Helper()
	x, _ := e.emu.LastExchange(path)
	if a.Status != 200 || !bytes.Equal(a.Body, x.Answer) {
		t.Fatalf("%s: wxgate answered %d %s, WeChat Pay %s", path, a.Status, a.Body, x.Answer)
	}
	if got := a.Header[unsignedHeader] == "true"; got != unsigned {
		t.Fatalf("%s: %s = %q, want marked %v", path, unsignedHeader, a.Header[unsignedHeader], unsigned)
	}
}

// TestV2Payouts pays a user's balance and queries the payout: the client certificate, the
// transfers API's own field names (mch_appid, mchid) and the unsigned answer, marked.
func TestV2Payouts(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	const path = "/mmpaymkttransfers/promotion/transfers"
	for _, st := range []string{"MD5", "HMAC-SHA256"} {
		t.Run(st, func(t *testing.T) {
			no := "payout" + strings.ReplaceAll(st, "-", "")
			doc := `<xml><partner_trade_no>` + no + `</partner_trade_no><openid>o-payee-0001</openid><check_name>NO_CHECK</check_name><amount>150</amount><desc>prize</desc><spbill_create_ip>127.0.0.1</spbill_create_ip><sign_type>` + st + `</sign_type></xml>`
			a, ans := e.v2Call(t, path, doc)
			if ans["result_code"] != "SUCCESS" || ans["payment_no"] == "" || ans["mch_appid"] != m.AppID || ans["mchid"] != m.MchID {
				t.Fatalf("transfers: %d %s", a.Status, a.Body)
			}
			e.checkRelayed(t, path, a, true)
			sent := e.requestParams(t, path)
			if sent["mch_appid"] != m.AppID || sent["mchid"] != m.MchID || sent["appid"] != "" || sent["mch_id"] != "" || sent["nonce_str"] == "" {
				t.Fatalf("wxgate filled the wrong fields: %v", sent)
			}
			a, ans = e.v2Call(t, "/mmpaymkttransfers/gettransferinfo", `<xml><partner_trade_no>`+no+`</partner_trade_no><sign_type>`+st+`</sign_type></xml>`)
			if ans["status"] != "SUCCESS" || ans["payment_amount"] != "150" {
				t.Fatalf("gettransferinfo: %d %s", a.Status, a.Body)
			}
			e.checkRelayed(t, "/mmpaymkttransfers/gettransferinfo", a, true)
		})
	}
	// The transfers API names the merchant mchid: another merchant's id there is refused.
	a := e.do("POST", path, []byte(`<xml><mchid>1234567890</mchid><partner_trade_no>x1</partner_trade_no></xml>`))
	if a.Status != 400 || a.wxgateError(t) != proxy.CodeBadRequest || !strings.Contains(string(a.Body), "mchid") {
		t.Fatalf("foreign mchid: %d %s", a.Status, a.Body)
	}
	// The usual appid and mch_id names are refused where the path names its fields otherwise.
	for _, doc := range []string{`<xml><appid>` + m.AppID + `</appid></xml>`, `<xml><mch_id>` + m.MchID + `</mch_id></xml>`} {
		a = e.do("POST", path, []byte(doc))
		if a.Status != 400 || a.wxgateError(t) != proxy.CodeBadRequest || !strings.Contains(string(a.Body), "mch_appid and mchid") {
			t.Fatalf("misnamed field %s: %d %s", doc, a.Status, a.Body)
		}
	}
	// The family's unlisted paths are not routed, and the error says where the list is.
	a = e.do("POST", "/mmpaymkttransfers/pay_bank", []byte(`<xml></xml>`))
	if a.Status != 404 || a.wxgateError(t) != proxy.CodeUnknownRoute || !strings.Contains(string(a.Body), "docs/apiv2.md") {
		t.Fatalf("unlisted payout path: %d %s", a.Status, a.Body)
	}
	// A merchant without a client certificate cannot pay out.
	a = e.do("POST", path, []byte(`<xml><partner_trade_no>x2</partner_trade_no></xml>`), proxy.HeaderMerchant, "certs")
	if a.Status != 400 || a.wxgateError(t) != proxy.CodeClientCertMissing {
		t.Fatalf("payout without client certificate: %d %s", a.Status, a.Body)
	}
}

// TestV2RedPackets sends a red packet and a mini-program red packet and queries one: wxappid
// filled, client certificate, unsigned answers (gethbinfo's nested hblist included) passed on
// byte for byte and marked.
func TestV2RedPackets(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	packet := `<mch_billno>BILLNO</mch_billno><send_name>shop</send_name><re_openid>o-lucky-0001</re_openid><total_amount>188</total_amount><total_num>1</total_num><wishing>thanks</wishing><act_name>launch</act_name><remark>none</remark>`
	a, ans := e.v2Call(t, "/mmpaymkttransfers/sendredpack", `<xml>`+strings.Replace(packet, "BILLNO", "hb0001", 1)+`<client_ip>127.0.0.1</client_ip></xml>`)
	if ans["result_code"] != "SUCCESS" || ans["send_listid"] == "" || ans["wxappid"] != m.AppID {
		t.Fatalf("sendredpack: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/mmpaymkttransfers/sendredpack", a, true)
	if sent := e.requestParams(t, "/mmpaymkttransfers/sendredpack"); sent["wxappid"] != m.AppID || sent["mch_id"] != m.MchID || sent["appid"] != "" {
		t.Fatalf("sendredpack fields: %v", sent)
	}
	a, ans = e.v2Call(t, "/mmpaymkttransfers/sendminiprogramhb", `<xml>`+strings.Replace(packet, "BILLNO", "hb0002", 1)+`<notify_way>MINI_PROGRAM_JSAPI</notify_way></xml>`)
	if ans["result_code"] != "SUCCESS" || !strings.HasPrefix(ans["package"], "sendid=") {
		t.Fatalf("sendminiprogramhb: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/mmpaymkttransfers/sendminiprogramhb", a, true)
	a = e.do("POST", "/mmpaymkttransfers/gethbinfo", []byte(`<xml><mch_billno>hb0001</mch_billno><bill_type>MCHT</bill_type></xml>`))
	if !bytes.Contains(a.Body, []byte("<hblist><hbinfo><openid><![CDATA[o-lucky-0001]]></openid>")) {
		t.Fatalf("gethbinfo: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/mmpaymkttransfers/gethbinfo", a, true)
	// A business failure (WeChat's limits) passes through too.
	a, ans = e.v2Call(t, "/mmpaymkttransfers/sendredpack", `<xml>`+strings.Replace(strings.Replace(packet, "BILLNO", "hb0003", 1), "188", "50", 1)+`<client_ip>127.0.0.1</client_ip></xml>`)
	if ans["result_code"] != "FAIL" || ans["err_code"] != "MONEY_LIMIT" {
		t.Fatalf("sendredpack under the limit: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/mmpaymkttransfers/sendredpack", a, true)
}

// TestV2Papay signs a contract with pay-and-sign, queries it, deducts under it, terminates it:
// the contract calls take no nonce_str, deletecontract takes MD5 only, and their answers are
// signed and verified (not marked).
func TestV2Papay(t *testing.T) {
	e := startEnv(t, nil)
	order := `<xml><body>monthly</body><out_trade_no>pap-0001</out_trade_no><total_fee>990</total_fee><spbill_create_ip>127.0.0.1</spbill_create_ip><notify_url>https://127.0.0.1:1/n</notify_url><trade_type>JSAPI</trade_type><openid>o-subscriber-01</openid>` +
		`<plan_id>12535</plan_id><contract_code>c-0001</contract_code><request_serial>1001</request_serial><contract_display_account>alice</contract_display_account><contract_notify_url>https://127.0.0.1:1/c</contract_notify_url><sign_type>HMAC-SHA256</sign_type></xml>`
	a, ans := e.v2Call(t, "/pay/contractorder", order)
	if ans["result_code"] != "SUCCESS" || ans["prepay_id"] == "" || ans["contract_result_code"] != "SUCCESS" {
		t.Fatalf("contractorder: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/pay/contractorder", a, false)
	a, ans = e.v2Call(t, "/papay/querycontract", `<xml><plan_id>12535</plan_id><contract_code>c-0001</contract_code><version>1.0</version></xml>`)
	if ans["result_code"] != "SUCCESS" || ans["contract_state"] != "0" || ans["contract_id"] == "" {
		t.Fatalf("querycontract: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/papay/querycontract", a, false)
	if sent := e.requestParams(t, "/papay/querycontract"); sent["nonce_str"] != "" || sent["appid"] == "" {
		t.Fatalf("querycontract takes no nonce_str: %v", sent)
	}
	id := ans["contract_id"]
	deduct := `<xml><body>monthly</body><out_trade_no>pap-0002</out_trade_no><total_fee>990</total_fee><spbill_create_ip>127.0.0.1</spbill_create_ip><notify_url>https://127.0.0.1:1/n</notify_url><trade_type>PAP</trade_type><contract_id>` + id + `</contract_id></xml>`
	if a, ans = e.v2Call(t, "/pay/pappayapply", deduct); ans["result_code"] != "SUCCESS" {
		t.Fatalf("pappayapply: %d %s", a.Status, a.Body)
	}
	// deletecontract takes MD5 only: wxgate refuses HMAC-SHA256 before WeChat does.
	del := `<xml><contract_id>` + id + `</contract_id><contract_termination_remark>user left</contract_termination_remark><version>1.0</version>`
	a = e.do("POST", "/papay/deletecontract", []byte(del+`<sign_type>HMAC-SHA256</sign_type></xml>`))
	if a.Status != 400 || a.wxgateError(t) != proxy.CodeBadRequest || !strings.Contains(string(a.Body), "MD5") {
		t.Fatalf("deletecontract with HMAC-SHA256: %d %s", a.Status, a.Body)
	}
	if a, ans = e.v2Call(t, "/papay/deletecontract", del+`</xml>`); ans["result_code"] != "SUCCESS" || ans["contract_id"] != id {
		t.Fatalf("deletecontract: %d %s", a.Status, a.Body)
	}
	if sent := e.requestParams(t, "/papay/deletecontract"); sent["nonce_str"] != "" || sent["sign_type"] != "" || len(sent["sign"]) != 32 {
		t.Fatalf("deletecontract request: %v", sent)
	}
	if a, ans = e.v2Call(t, "/papay/querycontract", `<xml><contract_id>`+id+`</contract_id><version>1.0</version></xml>`); ans["contract_state"] != "1" {
		t.Fatalf("querycontract after delete: %d %s", a.Status, a.Body)
	}
	// A signed business failure passes, verified and unmarked.
	a, ans = e.v2Call(t, "/pay/pappayapply", strings.Replace(deduct, "pap-0002", "pap-0003", 1))
	if ans["result_code"] != "FAIL" || ans["err_code"] != "CONTRACT_ERROR" {
		t.Fatalf("pappayapply after delete: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/pay/pappayapply", a, false)
}

// TestV2DownloadFundFlow downloads the fund flow bill: client certificate, HMAC-SHA256 filled in
// (MD5 refused), the unsigned CSV passed on and marked; WeChat's unsigned "No Bill Exist" too.
func TestV2DownloadFundFlow(t *testing.T) {
	e := startEnv(t, nil)
	const path = "/pay/downloadfundflow"
	if _, ans := e.v2Call(t, "/mmpaymkttransfers/promotion/transfers", `<xml><partner_trade_no>ff0001</partner_trade_no><openid>o-payee-0002</openid><check_name>NO_CHECK</check_name><amount>230</amount><desc>prize</desc></xml>`); ans["result_code"] != "SUCCESS" {
		t.Fatalf("transfers: %v", ans)
	}
	_, info := e.v2Call(t, "/mmpaymkttransfers/gettransferinfo", `<xml><partner_trade_no>ff0001</partner_trade_no></xml>`)
	day := time.Now().In(time.FixedZone("CST", 8*3600)).Format("20060102")
	a := e.do("POST", path, []byte(`<xml><bill_date>`+day+`</bill_date><account_type>Basic</account_type></xml>`))
	if a.Status != 200 || !strings.Contains(string(a.Body), info["detail_id"]) || !strings.Contains(string(a.Body), "2.30") {
		t.Fatalf("downloadfundflow: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, path, a, true)
	if sent := e.requestParams(t, path); sent["sign_type"] != "HMAC-SHA256" || len(sent["sign"]) != 64 {
		t.Fatalf("downloadfundflow request: %v", sent)
	}
	a = e.do("POST", path, []byte(`<xml><bill_date>`+day+`</bill_date><account_type>Operation</account_type></xml>`))
	if !strings.Contains(string(a.Body), "No Bill Exist") {
		t.Fatalf("no bill: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, path, a, true)
	a = e.do("POST", path, []byte(`<xml><bill_date>`+day+`</bill_date><account_type>Basic</account_type><sign_type>MD5</sign_type></xml>`))
	if a.Status != 400 || a.wxgateError(t) != proxy.CodeBadRequest || !strings.Contains(string(a.Body), "HMAC-SHA256") {
		t.Fatalf("downloadfundflow with MD5: %d %s", a.Status, a.Body)
	}
	a = e.do("POST", path, []byte(`<xml><bill_date>`+day+`</bill_date><account_type>Basic</account_type></xml>`), proxy.HeaderMerchant, "certs")
	if a.Status != 400 || a.wxgateError(t) != proxy.CodeClientCertMissing {
		t.Fatalf("downloadfundflow without client certificate: %d %s", a.Status, a.Body)
	}
}

// TestV2Sandbox: the first /sandboxnew/ call makes wxgate fetch the sandbox key with getsignkey
// (MD5 with the real key), later calls reuse it; the calls are signed and their answers verified
// with it; the app cannot call getsignkey itself.
func TestV2Sandbox(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	doc := `<xml><body>test</body><out_trade_no>sbx-0001</out_trade_no><total_fee>101</total_fee><spbill_create_ip>127.0.0.1</spbill_create_ip><notify_url>https://127.0.0.1:1/n</notify_url><trade_type>JSAPI</trade_type><openid>o-payer-0001</openid></xml>`
	a, ans := e.v2Call(t, "/sandboxnew/pay/unifiedorder", doc)
	if ans["result_code"] != "SUCCESS" || ans["prepay_id"] == "" {
		t.Fatalf("sandbox unifiedorder: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/sandboxnew/pay/unifiedorder", a, false)
	if n := e.emu.Calls("/sandboxnew/pay/getsignkey"); n != 1 {
		t.Fatalf("getsignkey called %d times, want 1", n)
	}
	sent := e.requestParams(t, "/sandboxnew/pay/getsignkey")
	if sent["mch_id"] != m.MchID || len(sent["sign"]) != 32 {
		t.Fatalf("getsignkey request: %v", sent)
	}
	// The order was signed with the sandbox key, not the APIv2 key.
	order := e.requestParams(t, "/sandboxnew/pay/unifiedorder")
	var params []signer.Param
	for k, v := range order {
		params = append(params, signer.Param{Key: k, Value: v})
	}
	if signer.NewV2Key(m.APIv2Key.Value()).Verify("MD5", params) == nil {
		t.Fatal("the sandbox call was signed with the production APIv2 key")
	}
	a, ans = e.v2Call(t, "/sandboxnew/pay/orderquery", `<xml><out_trade_no>sbx-0001</out_trade_no><sign_type>HMAC-SHA256</sign_type></xml>`)
	if ans["result_code"] != "SUCCESS" || ans["trade_state"] != "NOTPAY" {
		t.Fatalf("sandbox orderquery: %d %s", a.Status, a.Body)
	}
	if n := e.emu.Calls("/sandboxnew/pay/getsignkey"); n != 1 {
		t.Fatalf("getsignkey called %d times after two calls, want 1 (kept)", n)
	}
	// A sandbox answer forged with another key is refused like any other.
	e.emu.TamperV2Next(emulator.V2TamperWrongKey, 1)
	a = e.do("POST", "/sandboxnew/pay/orderquery", []byte(`<xml><out_trade_no>sbx-0001</out_trade_no></xml>`))
	if a.Status != 502 || a.wxgateError(t) != proxy.CodeResponseSignature {
		t.Fatalf("forged sandbox answer: %d %s", a.Status, a.Body)
	}
	// WeChat changes the sandbox key: the call signed with the old one fails (an unsigned
	// communication failure, passed on marked), wxgate drops the key and fetches the new one.
	e.emu.RotateSandboxKey(m.MchID)
	a = e.do("POST", "/sandboxnew/pay/orderquery", []byte(`<xml><out_trade_no>sbx-0001</out_trade_no></xml>`))
	if !bytes.Contains(a.Body, []byte("签名错误")) || a.Header[unsignedHeader] != "true" {
		t.Fatalf("call with the old sandbox key: %d %v %s", a.Status, a.Header, a.Body)
	}
	if a, ans = e.v2Call(t, "/sandboxnew/pay/orderquery", `<xml><out_trade_no>sbx-0001</out_trade_no></xml>`); ans["result_code"] != "SUCCESS" {
		t.Fatalf("call after the rotation: %d %s", a.Status, a.Body)
	}
	if n := e.emu.Calls("/sandboxnew/pay/getsignkey"); n != 2 {
		t.Fatalf("getsignkey called %d times after a rotation, want 2", n)
	}
	// getsignkey answering a failure: the app gets 502 sandbox_key_unavailable with WeChat's
	// message, and the next call tries again.
	e.emu.RotateSandboxKey(m.MchID)
	e.v2Call(t, "/sandboxnew/pay/orderquery", `<xml><out_trade_no>sbx-0001</out_trade_no></xml>`) // drops the key
	e.emu.SetFaults(emulator.Faults{FailNext: 1, Mode: emulator.FailSystemBusy})
	a = e.do("POST", "/sandboxnew/pay/orderquery", []byte(`<xml><out_trade_no>sbx-0001</out_trade_no></xml>`))
	if a.Status != 502 || a.wxgateError(t) != proxy.CodeSandboxKeyUnavailable || !strings.Contains(string(a.Body), "系统繁忙") {
		t.Fatalf("getsignkey failing: %d %s", a.Status, a.Body)
	}
	if a, ans = e.v2Call(t, "/sandboxnew/pay/orderquery", `<xml><out_trade_no>sbx-0001</out_trade_no></xml>`); ans["result_code"] != "SUCCESS" {
		t.Fatalf("call after getsignkey recovered: %d %s", a.Status, a.Body)
	}
	a = e.do("POST", "/sandboxnew/pay/getsignkey", []byte(`<xml></xml>`))
	if a.Status != 400 || a.wxgateError(t) != proxy.CodeBadRequest {
		t.Fatalf("app getsignkey: %d %s", a.Status, a.Body)
	}
}

// TestV2AnswerVerification: on paths WeChat Pay signs, an answer with a wrong sign, a field
// changed after signing, no sign at all, or turned into an unsigned return_code FAIL that still
// carries the answer's fields is refused with 502 and never reaches the app; a genuine
// return_code FAIL answer, which WeChat never signs, passes marked.
func TestV2AnswerVerification(t *testing.T) {
	e := startEnv(t, nil)
	order := `<xml><body>test</body><out_trade_no>tamper-01</out_trade_no><total_fee>101</total_fee><spbill_create_ip>127.0.0.1</spbill_create_ip><notify_url>https://127.0.0.1:1/n</notify_url><trade_type>JSAPI</trade_type><openid>o-payer-0001</openid><plan_id>1</plan_id><contract_code>tc-01</contract_code><request_serial>1</request_serial><contract_display_account>bob</contract_display_account><contract_notify_url>https://127.0.0.1:1/c</contract_notify_url></xml>`
	if _, ans := e.v2Call(t, "/pay/contractorder", order); ans["result_code"] != "SUCCESS" {
		t.Fatalf("contractorder: %v", ans)
	}
	calls := []struct{ path, doc string }{
		{"/pay/orderquery", `<xml><out_trade_no>tamper-01</out_trade_no></xml>`},
		{"/pay/orderquery", `<xml><out_trade_no>tamper-01</out_trade_no><sign_type>HMAC-SHA256</sign_type></xml>`},
		{"/papay/querycontract", `<xml><plan_id>1</plan_id><contract_code>tc-01</contract_code><version>1.0</version></xml>`},
	}
	for _, tamper := range []emulator.V2Tamper{emulator.V2TamperWrongKey, emulator.V2TamperField, emulator.V2TamperSignStrip, emulator.V2TamperFailNoSign, emulator.V2TamperFailFields} {
		for _, c := range calls {
			t.Run(string(tamper)+c.path, func(t *testing.T) {
				failures := e.metric(t, "wxgate_response_signature_failures_total")
				e.emu.TamperV2Next(tamper, 1)
				a := e.do("POST", c.path, []byte(c.doc))
				if a.Status != 502 || a.wxgateError(t) != proxy.CodeResponseSignature || bytes.Contains(a.Body, []byte("tamper-01")) {
					t.Fatalf("forged answer: %d %s", a.Status, a.Body)
				}
				if got := e.metric(t, "wxgate_response_signature_failures_total") - failures; got != 1 {
					t.Fatalf("signature failures rose by %v, want 1", got)
				}
				// The next, genuine answer passes.
				if a, ans := e.v2Call(t, c.path, c.doc); ans["result_code"] != "SUCCESS" || a.Header[unsignedHeader] != "" {
					t.Fatalf("genuine answer after the forgery: %d %v %s", a.Status, a.Header, a.Body)
				}
			})
		}
	}
	// return_code FAIL (here: a parameter missing) carries no sign on any path: passed, marked.
	a := e.do("POST", "/pay/orderquery", []byte(`<xml><attach>x</attach></xml>`))
	if !bytes.Contains(a.Body, []byte("<return_code><![CDATA[FAIL]]></return_code>")) {
		t.Fatalf("communication failure: %d %s", a.Status, a.Body)
	}
	e.checkRelayed(t, "/pay/orderquery", a, true)
}

// TestV2EntrustWebURL: the helper signs the contract page URL (MD5, appid, mch_id, version,
// timestamp filled); the emulator, as the page the user's browser opens, accepts it and signs the
// contract, which querycontract through wxgate then finds. A changed URL is refused by the page.
func TestV2EntrustWebURL(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	a := e.do("POST", proxy.PathV2EntrustWebURL, []byte(`{"plan_id":12535,"contract_code":"ew-0001","request_serial":1000,"contract_display_account":"Alice Wang","notify_url":"https://shop.example/papay/notify?x=1","return_web":1}`))
	var out proxy.EntrustWebURL
	if a.Status != 200 || json.Unmarshal(a.Body, &out) != nil {
		t.Fatalf("helper: %d %s", a.Status, a.Body)
	}
	if !strings.HasPrefix(out.URL, e.mchAddr+"/papay/entrustweb?") || out.Params["mch_id"] != m.MchID || out.Params["appid"] != m.AppID ||
		out.Params["version"] != "1.0" || len(out.Params["sign"]) != 32 || !strings.Contains(out.URL, "notify_url=https%3A%2F%2Fshop.example%2Fpapay%2Fnotify%3Fx%3D1") {
		t.Fatalf("helper answer: %+v", out)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.emu.CACertPEM())
	browser := &fasthttp.Client{TLSConfig: &tls.Config{RootCAs: roots}}
	get := func(u string) (int, string) {
		status, body, err := browser.Get(nil, u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		return status, string(body)
	}
	if status, body := get(strings.Replace(out.URL, "ew-0001", "ew-0002", 1)); status != 400 || !strings.Contains(body, "签名错误") {
		t.Fatalf("changed URL: %d %s", status, body)
	}
	if status, body := get(out.URL); status != 200 {
		t.Fatalf("contract page: %d %s", status, body)
	}
	a, ans := e.v2Call(t, "/papay/querycontract", `<xml><plan_id>12535</plan_id><contract_code>ew-0001</contract_code><version>1.0</version></xml>`)
	if ans["contract_state"] != "0" || ans["contract_display_account"] != "Alice Wang" {
		t.Fatalf("querycontract: %d %s", a.Status, a.Body)
	}
	for _, bad := range []string{`{"plan_id":1}`, `{"plan_id":1,"contract_code":"c","request_serial":1,"contract_display_account":"a","notify_url":"u","mch_id":"1"}`,
		`{"plan_id":1,"contract_code":"c","request_serial":1,"contract_display_account":"a","notify_url":"u","sign_type":"HMAC-SHA256"}`, `{"plan_id":[1]}`} {
		if a := e.do("POST", proxy.PathV2EntrustWebURL, []byte(bad)); a.Status != 400 || a.wxgateError(t) != proxy.CodeBadRequest {
			t.Errorf("helper with %s: %d %s", bad, a.Status, a.Body)
		}
	}
}

// TestV2SandboxKeyFetchedOnce: concurrent first /sandboxnew/ calls share one getsignkey.
func TestV2SandboxKeyFetchedOnce(t *testing.T) {
	e := startEnv(t, nil)
	const n = 8
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := e.do("POST", "/sandboxnew/pay/orderquery", []byte(`<xml><out_trade_no>none</out_trade_no></xml>`))
			results[i] = fmt.Sprintf("%d %s", a.Status, a.Body)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if !strings.HasPrefix(r, "200 ") || !strings.Contains(r, "ORDERNOTEXIST") {
			t.Fatalf("concurrent sandbox call: %s", r)
		}
	}
	if got := e.emu.Calls("/sandboxnew/pay/getsignkey"); got != 1 {
		t.Fatalf("getsignkey called %d times for %d concurrent first calls, want 1", got, n)
	}
	// A return_code FAIL that is not about the sign (a parameter missing) keeps the key.
	a := e.do("POST", "/sandboxnew/pay/orderquery", []byte(`<xml><attach>x</attach></xml>`))
	if !bytes.Contains(a.Body, []byte("<return_code><![CDATA[FAIL]]></return_code>")) || bytes.Contains(bytes.ToLower(a.Body), []byte("sign")) || bytes.Contains(a.Body, []byte("签名")) {
		t.Fatalf("sandbox call without out_trade_no: want a FAIL not about the sign, got %d %s", a.Status, a.Body)
	}
	if a := e.do("POST", "/sandboxnew/pay/orderquery", []byte(`<xml><out_trade_no>none</out_trade_no></xml>`)); !bytes.Contains(a.Body, []byte("ORDERNOTEXIST")) {
		t.Fatalf("sandbox call after the FAIL: %d %s", a.Status, a.Body)
	}
	if got := e.emu.Calls("/sandboxnew/pay/getsignkey"); got != 1 {
		t.Fatalf("getsignkey called %d times: a FAIL not about the sign dropped the sandbox key", got)
	}
}

// TestV2RefusedBeforeSigning: an APIv2 call that is not a POST, or for a merchant without an
// apiv2_key, is refused with its own error and reaches nobody; a sign the app sent is dropped and
// replaced by wxgate's (WeChat sees one sign, and it verifies).
func TestV2RefusedBeforeSigning(t *testing.T) {
	e := startEnv(t, func(s string) string {
		return strings.Replace(s, "apiv2_key = \"certs-apiv2-key-0123456789abcdef\"\n", "", 1)
	})
	const path = "/pay/orderquery"
	doc := `<xml><out_trade_no>refused-01</out_trade_no></xml>`
	for _, c := range []struct {
		name, method string
		headers      []string
		status       int
		code         string
	}{
		{"GET", "GET", nil, 405, proxy.CodeMethodNotAllowed},
		{"merchant without apiv2_key", "POST", []string{proxy.HeaderMerchant, "certs"}, 400, proxy.CodeV2NotConfigured},
	} {
		calls := e.emu.Calls(path)
		var body []byte
		if c.method == "POST" {
			body = []byte(doc)
		}
		if a := e.do(c.method, path, body, c.headers...); a.Status != c.status || a.wxgateError(t) != c.code {
			t.Errorf("%s: %d %s; want %d %s", c.name, a.Status, a.Body, c.status, c.code)
		}
		if e.emu.Calls(path) != calls {
			t.Errorf("%s: the call reached WeChat Pay", c.name)
		}
	}
	a, ans := e.v2Call(t, path, `<xml><out_trade_no>refused-01</out_trade_no><sign>FORGED0000000000000000000000000</sign></xml>`)
	if a.Status != 200 || a.Header["X-Wxgate-Error"] != "" || ans["return_code"] != "SUCCESS" {
		t.Fatalf("a call carrying the app's own sign: %d %s", a.Status, a.Body)
	}
	x, _ := e.emu.LastExchange(path)
	if n := bytes.Count(x.Body, []byte("<sign>")); n != 1 || bytes.Contains(x.Body, []byte("FORGED")) {
		t.Fatalf("WeChat Pay received %d sign elements (the app's kept?): %s", n, x.Body)
	}
}
