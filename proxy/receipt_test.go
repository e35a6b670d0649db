package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/proxy"
)

// TestTransferReceiptEndToEnd: a merchant transfer made through wxgate (user_name encrypted by
// wxgate) is confirmed by the user on the emulator's client endpoint; its
// MCHTRANSFER.BILL.FINISHED reaches the app; then its e-receipt is applied for, queried (signed
// answers, verified by wxgate) and downloaded from GET /v3/transferdownload/signfile, which the
// emulator answers unsigned like WeChat Pay: wxgate passes the file marked X-Wxgate-Unsigned and
// its SHA-256 is the query's hash_value. The emulator refuses a receipt before the transfer
// succeeded, a transfer made without user_name, another merchant's download URL and an unknown
// token; those refusals are signed errors wxgate verifies and does not mark.
func TestTransferReceiptEndToEnd(t *testing.T) {
	e := startEnv(t, nil)
	m, _ := e.cfg.Merchant("pk")
	h := []string{proxy.HeaderMerchant, "pk"}
	door := e.callbackURL + "/callbacks/wechatpay/pk"
	const no = "receipt0001"
	a := e.do("POST", transferPath, transferBody(m.AppID, no, "张三", `,"notify_url":"`+door+`"`), append(h, proxy.HeaderEncrypt, "user_name")...)
	if a.Status != 200 || a.json(t)["state"] != "WAIT_USER_CONFIRM" {
		t.Fatalf("transfer: %d %s", a.Status, a.Body)
	}
	created := a.json(t)
	billNo, pkg := created["transfer_bill_no"].(string), created["package_info"].(string)
	apply := func(outBillNo string) answer {
		return e.do("POST", "/v3/fund-app/mch-transfer/elecsign/out-bill-no", []byte(`{"out_bill_no":"`+outBillNo+`"}`), h...)
	}
	refused := func(what string, a answer, status int, code string) {
		t.Helper()
		if a.Status != status || a.json(t)["code"] != code || a.Header[proxy.HeaderUnsigned] != "" {
			t.Fatalf("%s: %d %v %s, want a verified %d %s", what, a.Status, a.Header, a.Body, status, code)
		}
	}
	refused("a receipt before the user confirmed", apply(no), 400, "INVALID_REQUEST")

	confirm := func(openID string) (bool, string) {
		t.Helper()
		return e.emulatedClient("request_merchant_transfer", emulator.MerchantTransfer{MchID: m.MchID, AppID: m.AppID, Package: pkg, OpenID: openID})
	}
	if ok, msg := confirm("o-someone-else"); ok {
		t.Fatalf("another user confirmed the transfer: %s", msg)
	}
	if ok, msg := confirm("o-payee-0001"); !ok {
		t.Fatalf("the payee's confirmation: %s", msg)
	}
	ev := e.recv.waitEvents(1, waitTime)[0]
	var fin map[string]any
	if err := json.Unmarshal(ev.Data, &fin); err != nil || ev.Type != "MCHTRANSFER.BILL.FINISHED" || ev.Merchant != "pk" ||
		fin["out_bill_no"] != no || fin["transfer_bill_no"] != billNo || fin["state"] != "SUCCESS" || fin["mchid"] != m.MchID {
		t.Fatalf("transfer event: %+v %s", ev, ev.Data)
	}
	if a := e.do("GET", transferPath+"/out-bill-no/"+no, nil, h...); a.Status != 200 || a.json(t)["state"] != "SUCCESS" {
		t.Fatalf("transfer query after confirmation: %d %s", a.Status, a.Body)
	}

	if a := apply(no); a.Status != 200 || a.json(t)["state"] != "GENERATING" {
		t.Fatalf("apply for the receipt: %d %s", a.Status, a.Body)
	}
	a = e.do("GET", "/v3/fund-app/mch-transfer/elecsign/transfer-bill-no/"+billNo, nil, h...)
	q := a.json(t)
	downloadURL, _ := q["download_url"].(string)
	hashValue, _ := q["hash_value"].(string)
	if a.Status != 200 || q["state"] != "FINISHED" || q["hash_type"] != "SHA256" || hashValue == "" || downloadURL == "" {
		t.Fatalf("receipt query: %d %s", a.Status, a.Body)
	}
	u, err := url.Parse(downloadURL)
	if err != nil || u.Path != "/v3/transferdownload/signfile" || u.Query().Get("token") == "" {
		t.Fatalf("download_url %q: %v", downloadURL, err)
	}
	file := e.do("GET", u.RequestURI(), nil, h...)
	sum := sha256.Sum256(file.Body)
	if file.Status != 200 || file.Header[proxy.HeaderUnsigned] != "true" || !bytes.HasPrefix(file.Body, []byte("%PDF-")) ||
		!strings.EqualFold(hex.EncodeToString(sum[:]), hashValue) {
		t.Fatalf("receipt download: %d %v, %d bytes (sha256 %x, want %s)", file.Status, file.Header, len(file.Body), sum, hashValue)
	}
	if x, ok := e.emu.LastExchange("/v3/transferdownload/signfile"); !ok || x.Header["Authorization"] == "" {
		t.Fatalf("the download reached WeChat Pay without an Authorization: %+v", x)
	}

	// The URL is the merchant's: signed by another merchant, or with a token WeChat Pay never
	// gave, the download is a signed error.
	refused("another merchant's download", e.do("GET", u.RequestURI(), nil, proxy.HeaderMerchant, "certs"), 400, "INVALID_REQUEST")
	refused("an unknown token", e.do("GET", "/v3/transferdownload/signfile?token=forged", nil, h...), 400, "INVALID_REQUEST")

	// A transfer made without user_name has no receipt.
	const noName = "receipt0002"
	body := strings.Replace(string(transferBody(m.AppID, noName, "", "")), `"user_name":"",`, "", 1)
	a = e.do("POST", transferPath, []byte(body), h...)
	if a.Status != 200 {
		t.Fatalf("transfer without user_name: %d %s", a.Status, a.Body)
	}
	pkg = a.json(t)["package_info"].(string)
	if ok, msg := confirm(""); !ok {
		t.Fatalf("confirmation of the transfer without user_name: %s", msg)
	}
	refused("a receipt of a transfer without user_name", apply(noName), 400, "INVALID_REQUEST")
	refused("a receipt query before any apply", e.do("GET", "/v3/fund-app/mch-transfer/elecsign/transfer-bill-no/1330000000000000000000000000000000", nil, h...), 404, "NOT_FOUND")
}
