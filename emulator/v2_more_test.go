package emulator

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// rawV2 posts an APIv2 document of exactly params, signed with key (MD5 unless sign_type says
// otherwise; no sign when key is ""), and returns the answer's parameters and body.
func rawV2(t *testing.T, c *fasthttp.Client, url, key string, params []signer.Param) (map[string]string, []byte) {
	t.Helper()
	if key != "" {
		st, _ := signer.ParamValue(params, "sign_type")
		sign, err := signer.NewV2Key(key).AppendSign(nil, st, slices.Clone(params))
		if err != nil {
			t.Fatal(err)
		}
		params = append(slices.Clone(params), p("sign", string(sign)))
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod("POST")
	req.SetBody(signer.AppendXML(nil, params))
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	out := map[string]string{}
	if ps, err := signer.ParseXML(resp.Body()); err == nil {
		for _, q := range ps {
			out[q.Key] = q.Value
		}
	}
	return out, append([]byte(nil), resp.Body()...)
}

// TestV2NewRoutesChecks: the payout, red packet, fund flow, contract and sandbox endpoints check
// what WeChat Pay checks: the client certificate, the sign with the right key and type, the
// route's own field names; and answer unsigned where WeChat Pay does.
func TestV2NewRoutesChecks(t *testing.T) {
	h := newMchHarness(t)
	m := h.mp
	transfer := func(no string) []signer.Param {
		return []signer.Param{p("mch_appid", m.AppID), p("mchid", m.MchID), p("nonce_str", "n1"), p("partner_trade_no", no),
			p("openid", "o-1"), p("check_name", "NO_CHECK"), p("amount", "100"), p("desc", "d")}
	}
	fundflow := []signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("nonce_str", "n2"), p("bill_date", "20250101"), p("account_type", "Basic")}
	tests := []struct {
		name   string
		client *fasthttp.Client
		base   string
		path   string
		key    string
		params []signer.Param
		check  func(t *testing.T, ans map[string]string, raw []byte)
	}{
		{"transfer", h.tlsClient, h.tlsBase, "/mmpaymkttransfers/promotion/transfers", m.APIv2Key, transfer("t1"), func(t *testing.T, a map[string]string, raw []byte) {
			if a["result_code"] != "SUCCESS" || a["sign"] != "" || a["mch_appid"] != m.AppID || a["mchid"] != m.MchID || a["payment_no"] == "" {
				t.Fatalf("answer %s", raw)
			}
		}},
		{"transfer without client certificate", h.noCert, h.tlsBase, "/mmpaymkttransfers/promotion/transfers", m.APIv2Key, transfer("t2"), failWith(v2MsgCert)},
		{"transfer with another certificate", h.wrongCert, h.tlsBase, "/mmpaymkttransfers/promotion/transfers", m.APIv2Key, transfer("t2"), failWith(v2MsgCert)},
		{"transfer with a wrong key", h.tlsClient, h.tlsBase, "/mmpaymkttransfers/promotion/transfers", "wrong-key-0123456789abcdef012345", transfer("t2"), failWith(v2MsgSign)},
		{"transfer named with appid and mch_id", h.tlsClient, h.tlsBase, "/mmpaymkttransfers/promotion/transfers", m.APIv2Key,
			[]signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("nonce_str", "n"), p("partner_trade_no", "t3")}, failWith(v2MsgMchID)},
		{"red packet with appid instead of wxappid", h.tlsClient, h.tlsBase, "/mmpaymkttransfers/sendredpack", m.APIv2Key,
			[]signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("nonce_str", "n")}, failWith(v2MsgAppID)},
		{"fund flow with MD5", h.tlsClient, h.tlsBase, "/pay/downloadfundflow", m.APIv2Key, fundflow, failWith(v2MsgSignType)},
		{"fund flow with HMAC-SHA256", h.tlsClient, h.tlsBase, "/pay/downloadfundflow", m.APIv2Key, append(slices.Clone(fundflow), p("sign_type", "HMAC-SHA256")), failWith("invalid bill_date")},
		{"fund flow without client certificate", h.client, h.base, "/pay/downloadfundflow", m.APIv2Key, append(slices.Clone(fundflow), p("sign_type", "HMAC-SHA256")), failWith(v2MsgCert)},
		{"querycontract without nonce_str", h.client, h.base, "/papay/querycontract", m.APIv2Key,
			[]signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("contract_id", "nope"), p("version", "1.0")}, func(t *testing.T, a map[string]string, raw []byte) {
				if a["err_code"] != "CONTRACT_NOT_EXIST" || a["sign"] == "" {
					t.Fatalf("answer %s", raw)
				}
			}},
		{"deletecontract with HMAC-SHA256", h.client, h.base, "/papay/deletecontract", m.APIv2Key,
			[]signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("contract_id", "x"), p("version", "1.0"), p("sign_type", "HMAC-SHA256")}, failWith(v2MsgSignType)},
		{"getsignkey", h.client, h.base, "/sandboxnew/pay/getsignkey", m.APIv2Key, []signer.Param{p("mch_id", m.MchID), p("nonce_str", "n")}, func(t *testing.T, a map[string]string, raw []byte) {
			if len(a["sandbox_signkey"]) != 32 || a["sign"] != "" {
				t.Fatalf("answer %s", raw)
			}
		}},
		{"getsignkey with a wrong key", h.client, h.base, "/sandboxnew/pay/getsignkey", "wrong-key-0123456789abcdef012345", []signer.Param{p("mch_id", m.MchID), p("nonce_str", "n")}, failWith(v2MsgSign)},
		{"sandbox call signed with the production key", h.client, h.base, "/sandboxnew/pay/orderquery", m.APIv2Key,
			[]signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("nonce_str", "n"), p("out_trade_no", "x")}, failWith(v2MsgSign)},
		{"unknown transfers path", h.tlsClient, h.tlsBase, "/mmpaymkttransfers/nope", m.APIv2Key, transfer("t4"), failWith(v2MsgNoURL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, raw := rawV2(t, tt.client, tt.base+tt.path, tt.key, tt.params)
			tt.check(t, ans, raw)
		})
	}
	// A sandbox call signed with the key getsignkey handed out passes, and its answer is signed
	// with that key.
	ans, _ := rawV2(t, h.client, h.base+"/sandboxnew/pay/getsignkey", m.APIv2Key, []signer.Param{p("mch_id", m.MchID), p("nonce_str", "n")})
	sk := ans["sandbox_signkey"]
	ans, raw := rawV2(t, h.client, h.base+"/sandboxnew/pay/unifiedorder", sk, append([]signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("nonce_str", "n")}, unifiedOrderParams("sbx_1", "100")...))
	var params []signer.Param
	for k, v := range ans {
		params = append(params, p(k, v))
	}
	if ans["result_code"] != "SUCCESS" || signer.NewV2Key(sk).Verify("MD5", params) != nil {
		t.Fatalf("sandbox unifiedorder: %s", raw)
	}
}

// failWith checks a return_code FAIL answer (unsigned) with msg in return_msg.
func failWith(msg string) func(t *testing.T, a map[string]string, raw []byte) {
	return func(t *testing.T, a map[string]string, raw []byte) {
		t.Helper()
		if a["return_code"] != "FAIL" || !strings.Contains(a["return_msg"], msg) || a["sign"] != "" {
			t.Fatalf("answer %s, want return_code FAIL with %q", raw, msg)
		}
	}
}

// TestV2ControlEndpoints: the APIv2 tamper and sandbox rotation control endpoints act and refuse
// bad input.
func TestV2ControlEndpoints(t *testing.T) {
	h := newMchHarness(t)
	m := h.mp
	post := func(path string) (int, map[string]any) {
		t.Helper()
		status, body := h.do("POST", path, nil)
		var out map[string]any
		json.Unmarshal(body, &out)
		return status, out
	}
	if status, out := post("/_emulator/pay/legacy/tamper?mode=wrong_key&n=1"); status != 200 || out["ok"] != true {
		t.Fatalf("tamper: %d %v", status, out)
	}
	d, _ := rawV2(t, h.client, h.base+"/pay/orderquery", m.APIv2Key, []signer.Param{p("appid", m.AppID), p("mch_id", m.MchID), p("nonce_str", "n"), p("out_trade_no", "none")})
	var params []signer.Param
	for k, v := range d {
		params = append(params, p(k, v))
	}
	if d["sign"] == "" || signer.NewV2Key(m.APIv2Key).Verify("MD5", params) == nil {
		t.Fatalf("the answer after tamper verifies: %v", d)
	}
	for _, bad := range []string{"/_emulator/pay/legacy/tamper?mode=nope", "/_emulator/pay/legacy/tamper?mode=field&n=-1", "/_emulator/pay/legacy/sandbox/rotate?mchid=0"} {
		if status, _ := post(bad); status != 400 {
			t.Errorf("%s: HTTP %d, want 400", bad, status)
		}
	}
	before, _ := rawV2(t, h.client, h.base+"/sandboxnew/pay/getsignkey", m.APIv2Key, []signer.Param{p("mch_id", m.MchID), p("nonce_str", "n")})
	if status, out := post("/_emulator/pay/legacy/sandbox/rotate?mchid=" + m.MchID); status != 200 || out["ok"] != true {
		t.Fatalf("rotate: %d %v", status, out)
	}
	after, _ := rawV2(t, h.client, h.base+"/sandboxnew/pay/getsignkey", m.APIv2Key, []signer.Param{p("mch_id", m.MchID), p("nonce_str", "n")})
	if before["sandbox_signkey"] == "" || before["sandbox_signkey"] == after["sandbox_signkey"] {
		t.Fatalf("sandbox key %q, after the rotation %q", before["sandbox_signkey"], after["sandbox_signkey"])
	}
}
