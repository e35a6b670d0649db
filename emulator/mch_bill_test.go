package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"
)

// billSetup pays two APIv3 orders (1.00 and 2.50 yuan) and refunds 0.40 of the first, all on
// 2024-05-01 (the fake clock's day).
func billSetup(h *mchHarness) {
	h.t.Helper()
	h.pay3(h.mp, "bill_order_1", 100)
	h.clock.Advance(time.Minute)
	h.pay3(h.mp, "bill_order_2", 250)
	h.clock.Advance(time.Minute)
	if r := h.v3(h.mp, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "bill_order_1", "bill_refund_1", 40, 100)); r.status != 200 {
		h.t.Fatalf("refund: HTTP %d %s", r.status, r.body)
	}
}

// fetchBill asks for a bill (over TLS when useTLS), downloads it (signed request, unsigned
// answer), checks the hash and returns the CSV and the download URL.
func fetchBill(t *testing.T, h *mchHarness, query string, useTLS bool) ([]byte, string) {
	t.Helper()
	var opts []v3Opt
	base := h.base
	if useTLS {
		opts, base = []v3Opt{overTLS()}, h.tlsBase
	}
	r := h.v3(h.mp, "GET", "/v3/bill/tradebill?"+query, nil, opts...)
	m := r.obj(t)
	if r.status != 200 || m.str("hash_type") != "SHA1" || len(m.str("hash_value")) != 40 {
		t.Fatalf("tradebill: HTTP %d %s", r.status, r.body)
	}
	u := m.str("download_url")
	uri, ok := strings.CutPrefix(u, base)
	if !ok || !strings.HasPrefix(uri, "/v3/billdownload/file?token=") {
		t.Fatalf("download_url %q, want %s/v3/billdownload/file?token=...", u, base)
	}
	file, err := h.v3Do(h.mp, "GET", uri, nil, opts...)
	if err != nil || file.status != 200 {
		t.Fatalf("download: %v HTTP %d %s", err, file.status, file.body)
	}
	for _, k := range []string{"Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Timestamp", "Wechatpay-Nonce"} {
		if file.header[k] != "" {
			t.Errorf("the bill file is signed: %s: %s", k, file.header[k])
		}
	}
	bill := file.body
	if strings.Contains(query, "tar_type=GZIP") {
		zr, err := gzip.NewReader(bytes.NewReader(file.body))
		if err != nil {
			t.Fatalf("gzip bill: %v", err)
		}
		if bill, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip bill: %v", err)
		}
	}
	sum := sha1.Sum(bill)
	if got := hex.EncodeToString(sum[:]); got != m.str("hash_value") {
		t.Fatalf("SHA-1 of the bill %s, hash_value %s", got, m.str("hash_value"))
	}
	return bill, u
}

// parseBill splits a bill into its detail rows and its summary row, checking the layout.
func parseBill(t *testing.T, bill []byte) (header []string, rows [][]string, summary []string) {
	t.Helper()
	cr := csv.NewReader(bytes.NewReader(bill))
	cr.FieldsPerRecord = -1 // the summary has its own columns
	recs, err := cr.ReadAll()
	if err != nil || len(recs) < 3 {
		t.Fatalf("bill is not CSV with a header and a summary: %v\n%s", err, bill)
	}
	if !bytes.Contains(bill, []byte("\r\n")) {
		t.Errorf("bill lines do not end in CRLF")
	}
	header, rows, summary = recs[0], recs[1:len(recs)-2], recs[len(recs)-1]
	if recs[len(recs)-2][0] != "总交易单数" {
		t.Fatalf("summary header %v", recs[len(recs)-2])
	}
	for _, row := range append(rows, summary) {
		for _, f := range row {
			if !strings.HasPrefix(f, "`") {
				t.Fatalf("field %q lacks the backtick prefix", f)
			}
		}
	}
	return header, rows, summary
}

func TestV3TradeBill(t *testing.T) {
	h := newMchHarness(t)
	billSetup(h)
	tests := []struct {
		query   string
		rows    int
		summary []string
	}{
		{"bill_date=2024-05-01&bill_type=ALL", 3, []string{"`3", "`3.50", "`0.40", "`0.00", "`0.03", "`3.50", "`0.40"}},
		{"bill_date=2024-05-01&bill_type=ALL&tar_type=GZIP", 3, nil},
		{"bill_date=2024-05-01", 3, nil},
		{"bill_date=2024-05-01&bill_type=SUCCESS", 2, []string{"`2", "`3.50", "`0.00", "`0.00", "`0.03", "`3.50", "`0.00"}},
		{"bill_date=2024-05-01&bill_type=REFUND&tar_type=GZIP", 1, []string{"`1", "`0.00", "`0.40", "`0.00", "`0.00", "`0.00", "`0.40"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			h.t = t
			bill, _ := fetchBill(t, h, tt.query, false)
			header, rows, summary := parseBill(t, bill)
			if len(rows) != tt.rows {
				t.Fatalf("%d rows, want %d:\n%s", len(rows), tt.rows, bill)
			}
			if header[0] != "交易时间" || len(rows[0]) != len(header) {
				t.Errorf("header %v, row %v", header, rows[0])
			}
			if tt.summary != nil && strings.Join(summary, ",") != strings.Join(tt.summary, ",") {
				t.Errorf("summary %v, want %v", summary, tt.summary)
			}
		})
	}
	h.t = t
	// Over TLS the download URL is https.
	if _, u := fetchBill(t, h, "bill_date=2024-05-01", true); !strings.HasPrefix(u, "https://") {
		t.Errorf("download_url over TLS: %s", u)
	}
	for _, tc := range []struct{ query, code string }{
		{"bill_type=ALL", "PARAM_ERROR"},
		{"bill_date=2024/05/01", "PARAM_ERROR"},
		{"bill_date=2024-05-02", "INVALID_REQUEST"},
		{"bill_date=2024-01-01", "INVALID_REQUEST"},
		{"bill_date=2024-04-30", "NO_STATEMENT_EXIST"},
		{"bill_date=2024-05-01&bill_type=RECHARGE", "PARAM_ERROR"},
		{"bill_date=2024-05-01&tar_type=ZIP", "PARAM_ERROR"},
	} {
		expectV3Error(t, h.v3(h.mp, "GET", "/v3/bill/tradebill?"+tc.query, nil), 400, tc.code)
	}
	// Download tokens: unknown, another merchant's, expired; the download needs Authorization.
	_, u := fetchBill(t, h, "bill_date=2024-05-01", false)
	uri := strings.TrimPrefix(u, h.base)
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/billdownload/file?token=nope", nil), 400, "INVALID_REQUEST")
	expectV3Error(t, h.v3(h.mk, "GET", uri, nil), 400, "INVALID_REQUEST")
	expectV3Error(t, h.v3(h.mp, "GET", uri, nil, rawAuthorization("")), 401, "SIGN_ERROR")
	h.clock.Advance(5 * time.Minute)
	expectV3Error(t, h.v3(h.mp, "GET", uri, nil), 400, "INVALID_REQUEST")
}
