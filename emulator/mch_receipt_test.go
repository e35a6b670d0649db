package emulator

import (
	"bytes"
	"net/url"
	"testing"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// TestTransferReceiptTimes: a receipt's download_url stops working 10 minutes after the query
// that gave it (a signed INVALID_REQUEST), and querying again gives a new one that works; the
// download itself is unsigned. A transfer older than 180 days gets no receipt.
func TestTransferReceiptTimes(t *testing.T) {
	h := newMchHarness(t)
	m := h.mk
	ct, err := signer.EncryptOAEP(&keys(t).pay.PublicKey, []byte("张三"))
	if err != nil {
		t.Fatal(err)
	}
	transfer := func(no string) string {
		t.Helper()
		r := h.v3(m, "POST", transferPath, transferJSON(m, no, 100, ct), wechatpaySerial(h.emu.PayPublicKeyID()))
		if r.status != 200 {
			t.Fatalf("transfer %s: HTTP %d %s", no, r.status, r.body)
		}
		o := r.obj(t)
		if msg, ok := h.emu.RequestMerchantTransfer(MerchantTransfer{MchID: m.MchID, AppID: m.AppID, Package: o.str("package_info")}); !ok {
			t.Fatalf("confirm %s: %s", no, msg)
		}
		return o.str("transfer_bill_no")
	}
	apply := func(no string) v3Resp {
		return h.v3(m, "POST", "/v3/fund-app/mch-transfer/elecsign/out-bill-no", []byte(`{"out_bill_no":"`+no+`"}`))
	}
	bill := transfer("rcpt0001")
	if r := apply("rcpt0001"); r.status != 200 || r.obj(t).str("state") != "GENERATING" {
		t.Fatalf("apply: HTTP %d %s", r.status, r.body)
	}
	download := func() (v3Resp, v3Resp) {
		t.Helper()
		q := h.v3(m, "GET", "/v3/fund-app/mch-transfer/elecsign/transfer-bill-no/"+bill, nil)
		u, err := url.Parse(q.obj(t).str("download_url"))
		if q.status != 200 || err != nil {
			t.Fatalf("receipt query: HTTP %d %s", q.status, q.body)
		}
		d, err := h.v3Do(m, "GET", u.RequestURI(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return q, d
	}
	q, d := download()
	if d.status != 200 || d.header["Wechatpay-Signature"] != "" || d.header["Content-Type"] != "application/pdf" || !bytes.HasPrefix(d.body, []byte("%PDF-")) {
		t.Fatalf("download: HTTP %d %v %.40q", d.status, d.header, d.body)
	}
	u, _ := url.Parse(q.obj(t).str("download_url"))
	h.clock.Advance(receiptURLLifetime + time.Second)
	expectV3Error(t, h.v3(m, "GET", u.RequestURI(), nil), 400, "INVALID_REQUEST")
	if _, d := download(); d.status != 200 || !bytes.HasPrefix(d.body, []byte("%PDF-")) {
		t.Fatalf("download with a new URL: HTTP %d", d.status)
	}

	transfer("rcpt0002")
	h.clock.Advance(receiptApplyWithin + time.Hour)
	expectV3Error(t, apply("rcpt0002"), 400, "INVALID_REQUEST")
}
