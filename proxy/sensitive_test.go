package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

const transferPath = "/v3/fund-app/mch-transfer/transfer-bills"

// transferBody is a merchant transfer for merchant appid; extra is spliced in as more members.
func transferBody(appID, outBillNo, userName, extra string) []byte {
	return []byte(fmt.Sprintf(`{"appid":%q,"out_bill_no":%q,"transfer_scene_id":"1000","openid":"o-payee-0001","user_name":%q,"transfer_amount":100,"transfer_remark":"新会员奖励","transfer_scene_report_infos":[{"info_type":"活动名称","info_content":"新会员有礼"}]%s}`,
		appID, outBillNo, userName, extra))
}

// newestPlatformSerial is the serial of the platform certificate the emulator issued last.
func (e *testEnv) newestPlatformSerial() string {
	e.t.Helper()
	pems := e.emu.PlatformCertificatePEMs()
	_, serial, err := signer.ParseCertificate(pems[len(pems)-1])
	if err != nil {
		e.t.Fatal(err)
	}
	return serial
}

// TestSensitiveTransferEndToEnd: wxgate encrypts the named fields with WeChat Pay's current key
// (public key or newest platform certificate), names it in Wechatpay-Serial, changes no other
// byte, strips its own headers; the emulator (as WeChat) decrypts user_name. The query's
// encrypted user_name comes back decrypted with X-Wxgate-Decrypt and stays encrypted without it.
func TestSensitiveTransferEndToEnd(t *testing.T) {
	e := startEnv(t, nil)
	for _, m := range e.cfg.Merchants {
		t.Run(m.Name, func(t *testing.T) {
			h := []string{proxy.HeaderMerchant, m.Name}
			if m.Name == "certs" {
				// A rotation: wxgate learns the new certificate from the next answer and encrypts with it.
				e.emu.RotatePlatformCertificate()
				e.do("GET", transferPath+"/out-bill-no/none0001", nil, h...)
			}
			wantSerial := e.emu.PayPublicKeyID()
			if m.Name == "certs" {
				wantSerial = e.newestPlatformSerial()
			}
			no := "tb" + m.Name + "0001"
			sent := transferBody(m.AppID, no, "张三", `,"receivers":[{"name":"李四","type":"x"},{"name":"王 \"五\""}]`)
			a := e.do("POST", transferPath, sent, append(h, proxy.HeaderEncrypt, "user_name, receivers[].name", proxy.HeaderDecrypt, "")...)
			if a.Status != 200 || a.json(t)["state"] != "WAIT_USER_CONFIRM" {
				t.Fatalf("transfer: %d %s", a.Status, a.Body)
			}
			if name, ok := e.emu.TransferUserName(m.MchID, no); !ok || name != "张三" {
				t.Fatalf("WeChat decrypted user_name as %q (%v), want 张三", name, ok)
			}
			x, _ := e.emu.LastExchange(transferPath)
			if x.Header["Wechatpay-Serial"] != wantSerial {
				t.Fatalf("Wechatpay-Serial sent %q, want %q", x.Header["Wechatpay-Serial"], wantSerial)
			}
			for k := range x.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-wxgate-") {
					t.Errorf("wxgate's own header %s reached WeChat", k)
				}
			}
			// Byte for byte: cut the sent body at the three values; the rest is identical.
			values := []string{`"张三"`, `"李四"`, `"王 \"五\""`}
			rest, got := string(sent), string(x.Body)
			var cts []string
			for _, v := range values {
				before, after, _ := strings.Cut(rest, v)
				if !strings.HasPrefix(got, before+`"`) {
					t.Fatalf("the bytes before %s changed:\nsent %s\ngot  %s", v, sent, x.Body)
				}
				got = got[len(before)+1:]
				ct, tail, ok := strings.Cut(got, `"`)
				if !ok || ct == "" || strings.ContainsAny(ct, "张李王") {
					t.Fatalf("%s was not replaced by a ciphertext: %s", v, x.Body)
				}
				cts, rest, got = append(cts, ct), after, tail
			}
			if rest != got {
				t.Fatalf("the bytes after the last value changed: %q vs %q", rest, got)
			}
			if m.Name == "pk" { // the test holds the WeChat Pay private key of the public-key mode
				for i, want := range []string{"张三", "李四", `王 "五"`} {
					pt, err := signer.DecryptOAEP(sharedPayKey(t), cts[i])
					if err != nil || string(pt) != want {
						t.Errorf("value %d decrypts to %q, %v; want %q", i, pt, err, want)
					}
				}
			}

			q := e.do("GET", transferPath+"/out-bill-no/"+no, nil, h...)
			raw, _ := q.json(t)["user_name"].(string)
			if q.Status != 200 || raw == "" || raw == "张三" {
				t.Fatalf("query without %s must keep the ciphertext: %d %s", proxy.HeaderDecrypt, q.Status, q.Body)
			}
			q = e.do("GET", transferPath+"/out-bill-no/"+no, nil, append(h, proxy.HeaderDecrypt, "user_name")...)
			if q.Status != 200 || q.json(t)["user_name"] != "张三" || q.json(t)["out_bill_no"] != no {
				t.Fatalf("query with %s: %d %s", proxy.HeaderDecrypt, q.Status, q.Body)
			}
			if q.Header[proxy.HeaderDecrypted] != "user_name" || q.Header["Wechatpay-Signature"] != "" {
				t.Fatalf("decrypted answer headers: %v (want %s: user_name and no Wechatpay-Signature)", q.Header, proxy.HeaderDecrypted)
			}
		})
	}
}

// TestSensitiveAppEncrypts: an app that encrypts with /wxgate/v3/encrypt and sends the returned
// serial keeps working in both modes (certificate mode used to drop its Wechatpay-Serial); one
// that forgets the serial gets WeChat's refusal, verified and passed on.
func TestSensitiveAppEncrypts(t *testing.T) {
	e := startEnv(t, nil)
	for _, m := range e.cfg.Merchants {
		t.Run(m.Name, func(t *testing.T) {
			a := e.do("POST", proxy.PathV3Encrypt, []byte(`{"mchid":"`+m.MchID+`","values":["赵六","x"]}`))
			var enc proxy.EncryptAnswer
			if err := json.Unmarshal(a.Body, &enc); err != nil || a.Status != 200 || len(enc.Ciphertexts) != 2 || enc.MchID != m.MchID {
				t.Fatalf("encrypt helper: %d %s", a.Status, a.Body)
			}
			want := e.emu.PayPublicKeyID()
			if m.Name == "certs" {
				want = e.newestPlatformSerial()
			}
			if enc.Serial != want {
				t.Fatalf("helper serial %q, want %q", enc.Serial, want)
			}
			h := []string{proxy.HeaderMerchant, m.Name}
			no := "app" + m.Name + "0001"
			a = e.do("POST", transferPath, transferBody(m.AppID, no, enc.Ciphertexts[0], ""), append(h, "Wechatpay-Serial", enc.Serial)...)
			if a.Status != 200 {
				t.Fatalf("transfer with the app's ciphertext and serial: %d %s", a.Status, a.Body)
			}
			if name, _ := e.emu.TransferUserName(m.MchID, no); name != "赵六" {
				t.Fatalf("WeChat decrypted %q, want 赵六", name)
			}
			if x, _ := e.emu.LastExchange(transferPath); x.Header["Wechatpay-Serial"] != enc.Serial {
				t.Fatalf("the app's Wechatpay-Serial was not sent: %q", x.Header["Wechatpay-Serial"])
			}
			a = e.do("POST", transferPath, transferBody(m.AppID, no+"b", enc.Ciphertexts[0], ""), h...)
			if m.Name == "certs" && (a.Status != 400 || a.json(t)["code"] != "PARAM_ERROR" || !strings.Contains(string(a.Body), "Wechatpay-Serial")) {
				t.Fatalf("no serial in certificate mode: want WeChat's 400 PARAM_ERROR, got %d %s", a.Status, a.Body)
			}
			// WeChat refuses a field that does not decrypt, and a serial it does not know.
			a = e.do("POST", transferPath, transferBody(m.AppID, no+"d", "bm90IGEgY2lwaGVydGV4dA==", ""), append(h, "Wechatpay-Serial", enc.Serial)...)
			if a.Status != 400 || !strings.Contains(string(a.Body), "user_name解密失败") {
				t.Fatalf("undecryptable user_name: want WeChat's 400, got %d %s", a.Status, a.Body)
			}
			a = e.do("POST", transferPath, transferBody(m.AppID, no+"e", enc.Ciphertexts[0], ""), append(h, "Wechatpay-Serial", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")...)
			if a.Status != 400 || !strings.Contains(string(a.Body), "Wechatpay-Serial无效") {
				t.Fatalf("unknown serial: want WeChat's 400, got %d %s", a.Status, a.Body)
			}
			// An encrypt header and a different serial of the app's own: refused, nothing sent.
			calls := e.emu.Calls(transferPath)
			a = e.do("POST", transferPath, transferBody(m.AppID, no+"c", "孙七", ""), append(h, "Wechatpay-Serial", "PUB_KEY_ID_0000000000000000000000000000000099", proxy.HeaderEncrypt, "user_name")...)
			if a.Status != 400 || a.wxgateError(t) != proxy.CodeSerialConflict || e.emu.Calls(transferPath) != calls {
				t.Fatalf("serial conflict: %d %s", a.Status, a.Body)
			}
		})
	}
}

// TestSensitiveRequestErrors: every bad X-Wxgate-Encrypt is a 400 wxgate error naming the
// problem, and nothing reaches WeChat.
func TestSensitiveRequestErrors(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	body := transferBody(m.AppID, "err0001", "张三", `,"amount":{"n":1},"list":[{"v":"a"},{"v":2}],"nothing":null`)
	for _, tt := range []struct {
		method, header string
		body           []byte
		status         int
		code, mention  string
	}{
		{"POST", "user_nam", body, 400, proxy.CodeSensitiveField, "user_nam is missing"},
		{"POST", "amount.n", body, 400, proxy.CodeSensitiveField, "amount.n is not a string"},
		{"POST", "amount", body, 400, proxy.CodeSensitiveField, "amount is not a string (it is an object)"},
		{"POST", "list[].v", body, 400, proxy.CodeSensitiveField, "list[1].v is not a string"},
		{"POST", "nothing", body, 400, proxy.CodeSensitiveField, "nothing is not a string (it is null)"},
		{"POST", "user_name[]", body, 400, proxy.CodeSensitiveField, "not an array"},
		{"POST", "user_name;rm", body, 400, proxy.CodeSensitiveField, "is not valid"},
		{"POST", "user_name, user_name", body, 400, proxy.CodeSensitiveField, "twice"},
		{"POST", "user_name", transferBody(m.AppID, "err0002", strings.Repeat("长", 80), ""), 400, proxy.CodeSensitiveField, "longer than the 214"},
		{"GET", "user_name", nil, 400, proxy.CodeSensitiveField, "needs a JSON body"},
	} {
		calls := e.emu.Calls(transferPath)
		a := e.do(tt.method, transferPath, tt.body, proxy.HeaderEncrypt, tt.header)
		if a.Status != tt.status || a.wxgateError(t) != tt.code || !strings.Contains(errMessage(t, a), tt.mention) {
			t.Errorf("%s %q: %d %s; want %d %s mentioning %q", tt.method, tt.header, a.Status, a.Body, tt.status, tt.code, tt.mention)
		}
		if strings.Contains(string(a.Body), "张三") {
			t.Errorf("%q: the error quotes a sensitive value: %s", tt.header, a.Body)
		}
		if e.emu.Calls(transferPath) != calls {
			t.Errorf("%q: the request reached WeChat", tt.header)
		}
	}
	if a := e.do("GET", transferPath+"/out-bill-no/x", nil, proxy.HeaderDecrypt, "a..b"); a.Status != 400 || a.wxgateError(t) != proxy.CodeSensitiveField {
		t.Errorf("bad %s: %d %s", proxy.HeaderDecrypt, a.Status, a.Body)
	}
	if a := e.do("POST", transferPath, body, "Wechatpay-Serial", "bad serial\tx"); a.Status != 400 || a.wxgateError(t) != proxy.CodeBadRequest {
		t.Errorf("bad Wechatpay-Serial: %d %s", a.Status, a.Body)
	}
}

// TestSensitiveAnswerDecrypt: a complaint's payer_phone is decrypted on a verified answer; an
// absent field is left alone; a field that is no ciphertext is a 502 naming it, without the key
// or the value; the decrypt helper reads the raw ciphertext.
func TestSensitiveAnswerDecrypt(t *testing.T) {
	logs := &syncBuffer{}
	e := startEnvWith(t, envOptions{logs: logs})
	for _, m := range e.cfg.Merchants {
		t.Run(m.Name, func(t *testing.T) {
			h := []string{proxy.HeaderMerchant, m.Name}
			id := e.emu.AddComplaintRecord(m.MchID, "13800138000", "商品未发货")
			path := "/v3/merchant-service/complaints-v2/" + id
			a := e.do("GET", path, nil, append(h, proxy.HeaderDecrypt, "payer_phone, no_such_field")...)
			if a.Status != 200 || a.json(t)["payer_phone"] != "13800138000" || a.json(t)["complaint_id"] != id {
				t.Fatalf("complaint with %s: %d %s", proxy.HeaderDecrypt, a.Status, a.Body)
			}
			raw := e.do("GET", path, nil, h...)
			ct, _ := raw.json(t)["payer_phone"].(string)
			if raw.Status != 200 || ct == "" || ct == "13800138000" {
				t.Fatalf("complaint without %s: %d %s", proxy.HeaderDecrypt, raw.Status, raw.Body)
			}
			// The rest of the answer is untouched: only the value changed.
			x, _ := e.emu.LastExchange(path)
			if !bytes.Equal(raw.Body, x.Answer) {
				t.Fatal("the answer without X-Wxgate-Decrypt was altered")
			}

			// Nothing is decrypted on an answer that fails verification.
			e.emu.TamperNext(emulator.TamperBody, 1)
			if a := e.do("GET", path, nil, append(h, proxy.HeaderDecrypt, "payer_phone")...); a.Status != 502 || a.wxgateError(t) != proxy.CodeResponseSignature || strings.Contains(string(a.Body), "13800138000") {
				t.Fatalf("tampered answer with %s: %d %s", proxy.HeaderDecrypt, a.Status, a.Body)
			}

			d := e.do("POST", proxy.PathV3Decrypt, []byte(`{"ciphertexts":["`+ct+`"]}`), h...)
			var dec proxy.DecryptAnswer
			if err := json.Unmarshal(d.Body, &dec); err != nil || d.Status != 200 || len(dec.Plaintexts) != 1 || dec.Plaintexts[0] != "13800138000" {
				t.Fatalf("decrypt helper: %d %s", d.Status, d.Body)
			}

			a = e.do("GET", path, nil, append(h, proxy.HeaderDecrypt, "complaint_detail")...)
			if a.Status != 502 || a.wxgateError(t) != proxy.CodeSensitiveDecrypt || !strings.Contains(string(a.Body), "complaint_detail does not decrypt") {
				t.Fatalf("undecryptable field: %d %s", a.Status, a.Body)
			}
			if strings.Contains(string(a.Body), "商品未发货") || strings.Contains(string(a.Body), "PRIVATE") {
				t.Fatalf("the 502 leaks the value or the key: %s", a.Body)
			}
			a = e.do("GET", path, nil, append(h, proxy.HeaderDecrypt, "complaint_order_info[].amount")...)
			if a.Status != 502 || a.wxgateError(t) != proxy.CodeSensitiveDecrypt || !strings.Contains(string(a.Body), "complaint_order_info[0].amount is not a string") {
				t.Fatalf("mistyped field: %d %s", a.Status, a.Body)
			}
		})
	}
	// WeChat's own errors pass through untouched: nothing to decrypt.
	// "code" names a string of the 404 that is no ciphertext: decrypting it would fail the call.
	if a := e.do("GET", "/v3/merchant-service/complaints-v2/none", nil, proxy.HeaderDecrypt, "payer_phone, code"); a.Status != 404 || a.json(t)["code"] != "RESOURCE_NOT_EXISTS" || a.Header[proxy.HeaderDecrypted] != "" {
		t.Fatalf("unknown complaint: %d %s", a.Status, a.Body)
	}
	if n := e.metric(t, `wxgate_errors_total{code="`+proxy.CodeSensitiveDecrypt+`"}`); n != 4 {
		t.Errorf("%s counted %v times, want 4", proxy.CodeSensitiveDecrypt, n)
	}
	// A transfer with an encrypted name: the name is in no log line either.
	pk, _ := e.cfg.Merchant("pk")
	if a := e.do("POST", transferPath, transferBody(pk.AppID, "log0001", "欧阳娜娜", ""), proxy.HeaderEncrypt, "user_name"); a.Status != 200 {
		t.Fatalf("transfer: %d %s", a.Status, a.Body)
	}
	if a := e.do("POST", transferPath, transferBody(pk.AppID, "log0002", "欧阳娜娜", ""), proxy.HeaderEncrypt, "user_nam"); a.Status != 400 {
		t.Fatalf("bad path: %d %s", a.Status, a.Body)
	}
	text := logs.String()
	if !strings.Contains(text, transferPath) {
		t.Fatalf("the log has no access line for the transfer, so the check below proves nothing:\n%s", text)
	}
	if !strings.Contains(text, "did not decrypt") {
		t.Errorf("the 502 has no log line:\n%s", text)
	}
	for _, s := range append(configuredSecrets(e.cfg), "13800138000", "商品未发货", "欧阳娜娜", "PRIVATE KEY") {
		if strings.Contains(text, s) {
			t.Errorf("the log holds %q", s)
		}
	}
}

// TestSensitiveHelperErrors: the helpers' bad input, each with a clear 4xx.
func TestSensitiveHelperErrors(t *testing.T) {
	e := startEnv(t, nil)
	pk, _ := e.cfg.Merchant("pk")
	for _, tt := range []struct {
		method, path, body string
		headers            []string
		status             int
		code, mention      string
	}{
		{"GET", proxy.PathV3Encrypt, "", nil, 405, proxy.CodeMethodNotAllowed, "takes POST"},
		{"POST", proxy.PathV3Encrypt, `[1]`, nil, 400, proxy.CodeBodyNotJSON, `"values"`},
		{"POST", proxy.PathV3Encrypt, `{"values":[]}`, nil, 400, proxy.CodeSensitiveField, "1 to 100"},
		{"POST", proxy.PathV3Encrypt, `{"values":[1]}`, nil, 400, proxy.CodeBodyNotJSON, "values"},
		{"POST", proxy.PathV3Encrypt, `{"values":["` + strings.Repeat("x", 215) + `"]}`, nil, 400, proxy.CodeSensitiveField, `"values"[0] is 215 bytes`},
		{"POST", proxy.PathV3Encrypt, `{"mchid":"1","values":["a"]}`, nil, 400, proxy.CodeUnknownMerchant, `"1"`},
		{"POST", proxy.PathV3Encrypt, `{"mchid":"` + pk.MchID + `","values":["a"]}`, []string{proxy.HeaderMerchant, "certs"}, 400, proxy.CodeUnknownMerchant, `names "certs"`},
		{"POST", proxy.PathV3Decrypt, `{"ciphertexts":[]}`, nil, 400, proxy.CodeSensitiveField, "1 to 100"},
		{"POST", proxy.PathV3Decrypt, `{"ciphertexts":["` + strings.Repeat("QUJD", 86) + `","***"]}`, nil, 400, proxy.CodeSensitiveDecrypt, `"ciphertexts"[0] does not decrypt`},
		{"POST", proxy.PathV3Decrypt, `{"values":["a"]}`, []string{proxy.HeaderMerchant, "nobody"}, 400, proxy.CodeUnknownMerchant, "nobody"},
		{"POST", proxy.PathV3Encrypt, `{"values":[` + strings.Repeat(`"a",`, 100) + `"a"]}`, nil, 400, proxy.CodeSensitiveField, "1 to 100"},
		{"POST", proxy.PathV3Decrypt, `{"ciphertexts":[` + strings.Repeat(`"QUJD",`, 100) + `"QUJD"]}`, nil, 400, proxy.CodeSensitiveField, "1 to 100"},
	} {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		a := e.do(tt.method, tt.path, body, tt.headers...)
		if a.Status != tt.status || a.wxgateError(t) != tt.code || !strings.Contains(errMessage(t, a), tt.mention) {
			t.Errorf("%s %s %.60s: %d %s; want %d %s mentioning %q", tt.method, tt.path, tt.body, a.Status, a.Body, tt.status, tt.code, tt.mention)
		}
	}
	// 100 values is the most, and allowed.
	a := e.do("POST", proxy.PathV3Encrypt, []byte(`{"values":[`+strings.Repeat(`"a",`, 99)+`"a"]}`))
	var enc proxy.EncryptAnswer
	if err := json.Unmarshal(a.Body, &enc); err != nil || a.Status != 200 || len(enc.Ciphertexts) != 100 {
		t.Errorf("100 values: %d %.200s", a.Status, a.Body)
	}
}

// TestSensitiveHelpersNeedAppToken: with server.app_token set, the helpers refuse a caller
// without it (a decrypt oracle must not be open to the network).
func TestSensitiveHelpersNeedAppToken(t *testing.T) {
	const token = "sensitive-helpers-token-0123456789"
	e := startEnv(t, func(s string) string {
		return strings.Replace(s, `app_listen = "127.0.0.1:0"`, `app_listen = "127.0.0.1:0"`+"\napp_token = \""+token+"\"", 1)
	})
	for _, p := range []string{proxy.PathV3Encrypt, proxy.PathV3Decrypt} {
		if a := e.do("POST", p, []byte(`{"values":["a"],"ciphertexts":["a"]}`)); a.Status != 401 {
			t.Errorf("%s without the token: %d %s", p, a.Status, a.Body)
		}
	}
	if a := e.do("POST", proxy.PathV3Encrypt, []byte(`{"values":["a"]}`), "Authorization", "Bearer "+token); a.Status != 200 {
		t.Errorf("encrypt with the token: %d %s", a.Status, a.Body)
	}
}

// errMessage is the message of a wxgate error answer.
func errMessage(t *testing.T, a answer) string {
	t.Helper()
	e, _ := a.json(t)["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// TestSensitiveNoEncryptionKey: a merchant in certificate mode whose first certificate download
// fails (WeChat Pay's answer is forged) has no key to encrypt with: X-Wxgate-Encrypt and the
// encrypt helper answer 503 wxgate.encryption_key_unavailable, and the transfer is not sent.
func TestSensitiveNoEncryptionKey(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("certs")
	h := []string{proxy.HeaderMerchant, m.Name}
	for _, c := range []struct {
		name, path string
		body       []byte
		headers    []string
	}{
		{"X-Wxgate-Encrypt", transferPath, transferBody(m.AppID, "nokey0001", "张三", ""), append(h, proxy.HeaderEncrypt, "user_name")},
		{"encrypt helper", proxy.PathV3Encrypt, []byte(`{"values":["张三"]}`), h},
	} {
		e.emu.TamperNext(emulator.TamperBody, 1) // the certificate download's answer
		calls := e.emu.Calls(transferPath)
		a := e.do("POST", c.path, c.body, c.headers...)
		if a.Status != 503 || a.wxgateError(t) != proxy.CodeEncryptKeyMissing || strings.Contains(string(a.Body), "张三") {
			t.Errorf("%s: %d %s; want 503 %s", c.name, a.Status, a.Body, proxy.CodeEncryptKeyMissing)
		}
		if e.emu.Calls(transferPath) != calls {
			t.Errorf("%s: the transfer reached WeChat Pay", c.name)
		}
		e.emu.TamperNext(emulator.TamperNone, 0)
	}
}
