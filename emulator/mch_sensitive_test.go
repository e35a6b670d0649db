package emulator

import (
	"crypto/rsa"
	"fmt"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/signer"
)

const transferPath = "/v3/fund-app/mch-transfer/transfer-bills"

// transferJSON is a merchant transfer of m; userName "" leaves the field out.
func transferJSON(m testMerchant, outBillNo string, amount int64, userName string) []byte {
	name := ""
	if userName != "" {
		name = fmt.Sprintf(`"user_name":%q,`, userName)
	}
	return []byte(fmt.Sprintf(`{"appid":%q,"out_bill_no":%q,"transfer_scene_id":"1000","openid":"o-payee",%s"transfer_amount":%d,"transfer_remark":"奖励","transfer_scene_report_infos":[{"info_type":"活动名称","info_content":"x"}]}`,
		m.AppID, outBillNo, name, amount))
}

// TestTransferSensitiveField: the transfer takes user_name encrypted with the key its
// Wechatpay-Serial names (the public key, or for a merchant with them a platform certificate),
// refuses a missing or unknown serial and a value that does not decrypt, and the query returns
// user_name encrypted with the merchant's key, in a signed answer.
func TestTransferSensitiveField(t *testing.T) {
	h := newMchHarness(t)
	pay := &keys(t).pay.PublicKey
	pems := h.emu.PlatformCertificatePEMs()
	cert, certSerial, err := signer.ParseCertificate(pems[len(pems)-1])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m      testMerchant
		serial string
		encFor func() string
	}{
		{h.mk, h.emu.PayPublicKeyID(), func() string { ct, _ := signer.EncryptOAEP(pay, []byte("张三")); return ct }},
		{h.mp, certSerial, func() string {
			ct, _ := signer.EncryptOAEP(cert.PublicKey.(*rsa.PublicKey), []byte("张三"))
			return ct
		}},
	} {
		m := tc.m
		t.Run(m.MchID, func(t *testing.T) {
			ct := tc.encFor()
			no := "tr" + m.MchID
			expectV3Error(t, h.v3(m, "POST", transferPath, transferJSON(m, no, 100, ct), overTLS()), 400, "PARAM_ERROR")
			r := h.v3(m, "POST", transferPath, transferJSON(m, no, 100, ct), overTLS(), wechatpaySerial("5157F09EFDC096DE15EBE81A47057A7232F1B8E1"))
			expectV3Error(t, r, 400, "PARAM_ERROR")
			if !strings.Contains(string(r.body), "Wechatpay-Serial") {
				t.Fatalf("unknown serial: %s", r.body)
			}
			if m.MchID == h.mk.MchID { // no platform certificates: their serials are unknown
				expectV3Error(t, h.v3(m, "POST", transferPath, transferJSON(m, no, 100, ct), overTLS(), wechatpaySerial(certSerial)), 400, "PARAM_ERROR")
			}
			foreign, _ := signer.EncryptOAEP(&m.key.PublicKey, []byte("张三"))
			r = h.v3(m, "POST", transferPath, transferJSON(m, no, 100, foreign), overTLS(), wechatpaySerial(tc.serial))
			expectV3Error(t, r, 400, "PARAM_ERROR")
			if !strings.Contains(string(r.body), "user_name解密失败") {
				t.Fatalf("undecryptable user_name: %s", r.body)
			}
			if _, ok := h.emu.TransferUserName(m.MchID, no); ok {
				t.Fatal("a refused transfer was kept")
			}

			r = h.v3(m, "POST", transferPath, transferJSON(m, no, 100, ct), overTLS(), wechatpaySerial(tc.serial))
			if r.status != 200 || r.obj(t).str("state") != "WAIT_USER_CONFIRM" || r.obj(t).str("package_info") == "" {
				t.Fatalf("transfer: %d %s", r.status, r.body)
			}
			if err := h.verifyAnswer(m, r); err != nil {
				t.Fatalf("the answer does not verify: %v", err)
			}
			bill := r.obj(t).str("transfer_bill_no")
			if name, ok := h.emu.TransferUserName(m.MchID, no); !ok || name != "张三" {
				t.Fatalf("decrypted user_name %q, %v", name, ok)
			}
			// The same out_bill_no again is the same transfer; with other terms it is refused.
			if r = h.v3(m, "POST", transferPath, transferJSON(m, no, 100, ct), overTLS(), wechatpaySerial(tc.serial)); r.obj(t).str("transfer_bill_no") != bill {
				t.Fatalf("repeat: %d %s", r.status, r.body)
			}
			expectV3Error(t, h.v3(m, "POST", transferPath, transferJSON(m, no, 200, ct), overTLS(), wechatpaySerial(tc.serial)), 400, "INVALID_REQUEST")

			q := h.v3(m, "GET", transferPath+"/out-bill-no/"+no, nil, overTLS())
			if q.status != 200 || q.obj(t).str("transfer_bill_no") != bill || q.obj(t).str("mch_id") != m.MchID {
				t.Fatalf("query: %d %s", q.status, q.body)
			}
			if err := h.verifyAnswer(m, q); err != nil {
				t.Fatalf("the query answer does not verify: %v", err)
			}
			pt, err := signer.DecryptOAEP(m.key, q.obj(t).str("user_name"))
			if err != nil || string(pt) != "张三" {
				t.Fatalf("the query's user_name decrypts with the merchant key to %q, %v", pt, err)
			}
			expectV3Error(t, h.v3(m, "GET", transferPath+"/out-bill-no/none", nil, overTLS()), 404, "NOT_FOUND")
		})
	}
}

// TestTransferValidation: the transfer's required fields and rules.
func TestTransferValidation(t *testing.T) {
	h := newMchHarness(t)
	m := h.mk
	ok := string(transferJSON(m, "v0001", 100, ""))
	for name, body := range map[string]string{
		"no appid":          strings.Replace(ok, `"appid":"`+m.AppID+`",`, "", 1),
		"foreign appid":     strings.Replace(ok, m.AppID, "wx0000000000000000", 1),
		"bad out_bill_no":   strings.Replace(ok, "v0001", "v-0001", 1),
		"zero amount":       strings.Replace(ok, `"transfer_amount":100`, `"transfer_amount":0`, 1),
		"no report infos":   strings.Replace(ok, `"transfer_scene_report_infos":[{"info_type":"活动名称","info_content":"x"}]`, `"transfer_scene_report_infos":[]`, 1),
		"no remark":         strings.Replace(ok, `"transfer_remark":"奖励",`, "", 1),
		"2000 yuan no name": strings.Replace(ok, `"transfer_amount":100`, `"transfer_amount":200000`, 1),
	} {
		if body == ok {
			t.Fatalf("%s: the case did not change the body", name)
		}
		expectV3Error(t, h.v3(m, "POST", transferPath, []byte(body), overTLS()), 400, "PARAM_ERROR")
	}
	if r := h.v3(m, "POST", transferPath, []byte(ok), overTLS()); r.status != 200 {
		t.Fatalf("a transfer without user_name needs no serial: %d %s", r.status, r.body)
	}
}

// TestComplaintDetailPayerPhone: the complaint detail carries payer_phone encrypted with the
// merchant's key; another merchant cannot read it.
func TestComplaintDetailPayerPhone(t *testing.T) {
	h := newMchHarness(t)
	id := h.emu.AddComplaintRecord(h.mk.MchID, "13800138000", "未发货")
	if id == "" || h.emu.AddComplaintRecord("1", "x", "y") != "" {
		t.Fatal("AddComplaintRecord")
	}
	r := h.v3(h.mk, "GET", "/v3/merchant-service/complaints-v2/"+id, nil, overTLS())
	if r.status != 200 || r.obj(t).str("complaint_id") != id {
		t.Fatalf("detail: %d %s", r.status, r.body)
	}
	if err := h.verifyAnswer(h.mk, r); err != nil {
		t.Fatal(err)
	}
	if pt, err := signer.DecryptOAEP(h.mk.key, r.obj(t).str("payer_phone")); err != nil || string(pt) != "13800138000" {
		t.Fatalf("payer_phone decrypts to %q, %v", pt, err)
	}
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/merchant-service/complaints-v2/"+id, nil, overTLS()), 404, "RESOURCE_NOT_EXISTS")
}
