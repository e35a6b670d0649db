package emulator

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fetchURL GETs a download URL handed out by the emulator and returns the HTTP status.
func (h *harness) fetchURL(raw string) int {
	h.t.Helper()
	u, err := url.Parse(raw)
	if err != nil || "http://"+u.Host != h.base {
		h.t.Fatalf("download url %q does not point at the emulator %s", raw, h.base)
	}
	status, _ := h.do("GET", u.RequestURI(), nil)
	return status
}

func TestDownloadBill(t *testing.T) {
	h := newHarness(t)
	body := `{"begin_ds":20230801,"end_ds":20230810}`
	expectErr(t, h.xpay("/xpay/download_bill", body), 268490011)
	m := h.xpay("/xpay/download_bill", body)
	expectErr(t, m, 0)
	if status := h.fetchURL(m.str("url")); status != 200 {
		t.Errorf("bill download: HTTP %d", status)
	}
	for name, bad := range map[string]string{
		"not a date":       `{"begin_ds":20231301,"end_ds":20231302}`,
		"end before begin": `{"begin_ds":20230810,"end_ds":20230801}`,
		"missing":          `{}`,
	} {
		t.Run(name, func(t *testing.T) { expectErr(t, h.xpay("/xpay/download_bill", bad), 268490002) })
	}
	if status, _ := h.do("GET", "/_emulator/files/never-issued.csv", nil); status != 404 {
		t.Errorf("unknown file: HTTP %d, want 404", status)
	}
}

func TestBizBalanceAndWithdraw(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.login(appA, "alice")
	h.pay(appA, alice, ModeShortSeriesGoods, goodsSignData(0, "biz-order-01", 1000, 1))
	h.pay(appA, alice, ModeShortSeriesGoods, goodsSignData(1, "biz-order-02", 5000, 1)) // sandbox: not withdrawable
	expectErr(t, h.xpay("/xpay/refund_order", fmt.Sprintf(
		`{"openid":%q,"order_id":"biz-order-01","refund_order_id":"biz-refund-01","left_fee":1000,"refund_fee":234,"refund_reason":"0","req_from":"3","env":0}`, alice)), 0)

	balance := func() string {
		m := h.xpay("/xpay/query_biz_balance", `{"env":1}`) // env only selects the key
		expectErr(t, m, 0)
		if m.sub("balance_available").str("currency_code") != "CNY" {
			t.Errorf("currency_code in %v", m)
		}
		return m.sub("balance_available").str("amount")
	}
	if got := balance(); got != "7.66" {
		t.Fatalf("available = %q, want 7.66", got)
	}
	withdraw := func(no string, amount string) obj {
		field := ""
		if amount != "" {
			field = fmt.Sprintf(`,"withdraw_amount":%q`, amount)
		}
		return h.xpay("/xpay/create_withdraw_order", fmt.Sprintf(`{"withdraw_no":%q%s,"env":0}`, no, field))
	}
	steps := []struct {
		name, no, amount string
		want             int64
	}{
		{"bad withdraw_no", "w-1", "1.00", 268490002},
		{"bad amount", "withdraw-01", "1.234", 268490002},
		{"zero amount", "withdraw-01", "0.00", 268490002},
		{"too much", "withdraw-01", "7.67", 268490002},
		{"withdraw 1.5", "withdraw-01", "1.5", 0},
		{"same withdraw_no again", "withdraw-01", "1.5", 0},
		{"withdraw the rest", "withdraw-02", "", 0},
		{"nothing left", "withdraw-03", "", 268490002},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			m := withdraw(s.no, s.amount)
			expectErr(t, m, s.want)
			if s.want == 0 && (m.str("withdraw_no") != s.no || m.str("wx_withdraw_no") == "") {
				t.Errorf("answer %v", m)
			}
		})
	}
	if got := balance(); got != "0.00" {
		t.Errorf("available after withdrawals = %q", got)
	}
	m := h.xpay("/xpay/query_withdraw_order", `{"withdraw_no":"withdraw-02","env":0}`)
	expectErr(t, m, 0)
	if m.num("status") != 2 || m.str("withdraw_amount") != "6.16" || m.str("wx_withdraw_no") == "" ||
		m.str("create_time") != fmt.Sprint(startTime.Unix()) || m.str("withdraw_success_timestamp") == "" {
		t.Errorf("query_withdraw_order = %v", m)
	}
	expectErr(t, h.xpay("/xpay/query_withdraw_order", `{"withdraw_no":"withdraw-99","env":0}`), 268490002)
}

func TestDownloadOrderTask(t *testing.T) {
	h := newHarness(t)
	m := h.xpay("/xpay/start_download_order", `{"begin_ds":20240401,"end_ds":20240501,"order_type":2,"is_provided":true,"env":0,"pay_channel":1}`)
	expectErr(t, m, 0)
	task := m.str("task_id")
	q := func() obj { return h.xpay("/xpay/query_download_order", fmt.Sprintf(`{"task_id":%q,"env":0}`, task)) }
	if m := q(); m.num("status") != 1 || m.str("download_url") != "" {
		t.Fatalf("first poll = %v, want running", m)
	}
	h.clock.Advance(time.Minute)
	m = q()
	if m.num("status") != 2 || m.str("task_id") != task || m.num("expire_at") != startTime.Add(time.Minute+downloadURLTTL).Unix() {
		t.Fatalf("second poll = %v, want success", m)
	}
	if status := h.fetchURL(m.str("download_url")); status != 200 {
		t.Errorf("order download: HTTP %d", status)
	}
	for name, bad := range map[string]string{
		"more than 31 days": `{"begin_ds":20240401,"end_ds":20240503,"order_type":1,"env":0,"pay_channel":1}`,
		"bad order_type":    `{"begin_ds":20240401,"end_ds":20240402,"order_type":5,"env":0,"pay_channel":1}`,
		"bad pay_channel":   `{"begin_ds":20240401,"end_ds":20240402,"order_type":1,"env":0,"pay_channel":3}`,
	} {
		t.Run(name, func(t *testing.T) { expectErr(t, h.xpay("/xpay/start_download_order", bad), 268490002) })
	}
	expectErr(t, h.xpay("/xpay/query_download_order", `{"task_id":"nope","env":0}`), 268490002)
}

func TestGoodsUploadAndPublish(t *testing.T) {
	h := newHarness(t)
	item := func(id string, price int) string {
		return fmt.Sprintf(`{"id":%q,"name":"道具%s","price":%d,"remark":"r","item_url":"https://example.com/%s.png"}`, id, id, price, id)
	}
	upload := func(items ...string) obj {
		return h.xpay("/xpay/start_upload_goods", `{"upload_item":[`+strings.Join(items, ",")+`],"env":0}`)
	}
	query := func(uri string) obj { return h.xpay(uri, `{"env":0}`) }

	if m := query("/xpay/query_upload_goods"); m.num("status") != 0 {
		t.Fatalf("no task: %v", m)
	}
	for name, bad := range map[string]string{
		"empty list":   ``,
		"bad id":       item("bad id", 10),
		"zero price":   item("sku-0", 0),
		"not an image": strings.Replace(item("sku-0", 10), ".png", ".gif", 1),
		"long name":    `{"id":"sku-0","name":"一二三四五六七八九十一二三四五六七八九十一","price":1,"remark":"r","item_url":"https://example.com/a.jpg"}`,
	} {
		t.Run("upload "+name, func(t *testing.T) { expectErr(t, upload(bad), 268490002) })
	}

	expectErr(t, upload(item("sku-1", 100), item("sku-2", 200)), 0)
	expectErr(t, upload(item("sku-3", 300)), 268490012)
	if m := query("/xpay/query_upload_goods"); m.num("status") != 1 {
		t.Fatalf("first poll: %v, want running", m)
	}
	expectErr(t, upload(item("sku-3", 300)), 268490012)
	m := query("/xpay/query_upload_goods")
	if m.num("status") != 3 {
		t.Fatalf("upload result: %v", m)
	}
	if items, _ := m["upload_item"].([]any); len(items) != 2 || obj(items[0].(map[string]any)).num("upload_status") != 2 {
		t.Errorf("upload items: %v", m["upload_item"])
	}
	expectErr(t, upload(item("sku-2", 200), item("sku-4", 400)), 0)
	query("/xpay/query_upload_goods")
	if m := query("/xpay/query_upload_goods"); m.num("status") != 2 {
		t.Errorf("re-upload of an existing id: %v, want status 2", m)
	}

	expectErr(t, h.xpay("/xpay/start_publish_goods", `{"publish_item":[{"id":"sku-1"},{"id":"sku-9"}],"env":0}`), 0)
	expectErr(t, h.xpay("/xpay/start_publish_goods", `{"publish_item":[{"id":"sku-1"}],"env":0}`), 268490012)
	if m := query("/xpay/query_publish_goods"); m.num("status") != 1 {
		t.Fatalf("first publish poll: %v", m)
	}
	m = query("/xpay/query_publish_goods")
	items, _ := m["publish_item"].([]any)
	if m.num("status") != 2 || len(items) != 2 ||
		obj(items[0].(map[string]any)).num("publish_status") != 2 || obj(items[1].(map[string]any)).num("publish_status") != 3 {
		t.Fatalf("publish result: %v", m)
	}

	// A published item's price is enforced by the client payment.
	alice, _ := h.login(appA, "alice")
	sd := func(no string, price int) string {
		return fmt.Sprintf(`{"offerId":%q,"buyQuantity":1,"env":0,"currencyType":"CNY","productId":"sku-1","goodsPrice":%d,"outTradeNo":%q}`, appA.OfferID, price, no)
	}
	if res := h.emu.RequestVirtualPayment(h.clientPayment(appA, alice, ModeShortSeriesGoods, sd("goods-price-01", 99))); res.ErrCode != -15013 {
		t.Errorf("wrong price for a published item: %+v, want -15013", res)
	}
	h.pay(appA, alice, ModeShortSeriesGoods, sd("goods-price-02", 100))
	// Goods of one env are not published in the other.
	if m := h.xpay("/xpay/query_publish_goods", `{"env":1}`); m.num("status") != 0 {
		t.Errorf("sandbox publish task: %v", m)
	}
}
