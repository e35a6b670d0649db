package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Merchant endpoints: download_bill, create_withdraw_order, query_withdraw_order,
// query_biz_balance, start_download_order, query_download_order. Their state is per app, not per
// env: WeChat documents env on these as selecting the signing key only ("查询的结果都是正式环境的"),
// so the withdrawable balance is computed from production cash orders.

// downloadURLTTL is how long WeChat's download URLs stay valid ("有效时间为半小时").
const downloadURLTTL = 30 * time.Minute

// bizState is an app's merchant-level state, guarded by Emulator.mu.
type bizState struct {
	bills       map[string]bool          // "begin-end" -> a download_bill was already requested
	withdrawals map[string]*withdrawal   // withdraw_no -> withdrawal
	withdrawn   int64                    // cents withdrawn so far
	downloads   map[string]*downloadTask // task_id -> order export
	files       map[string]struct{}      // file names handed out as download URLs
}

func newBizState() *bizState {
	return &bizState{
		bills:       make(map[string]bool),
		withdrawals: make(map[string]*withdrawal),
		downloads:   make(map[string]*downloadTask),
		files:       make(map[string]struct{}),
	}
}

// fileURL returns a download URL served by the emulator itself under /_emulator/files/.
func fileURL(host, name string) string {
	if host == "" {
		host = "127.0.0.1"
	}
	return "http://" + host + controlPrefix + "files/" + name
}

// parseDs parses a YYYYMMDD day number such as 20230801.
func parseDs(ds int64) (time.Time, bool) {
	t, err := time.ParseInLocation("20060102", strconv.FormatInt(ds, 10), beijing)
	return t, err == nil
}

// checkDays validates a begin_ds/end_ds pair, at most maxDays apart when maxDays > 0.
func checkDays(begin, end int64, maxDays int) *apiError {
	b, okB := parseDs(begin)
	e, okE := parseDs(end)
	switch {
	case !okB || !okE:
		return newErr(268490002, "begin_ds/end_ds格式应为YYYYMMDD")
	case e.Before(b):
		return newErr(268490002, "end_ds不能早于begin_ds")
	case maxDays > 0 && e.Sub(b) > time.Duration(maxDays)*24*time.Hour:
		return newErr(268490002, "begin_ds与end_ds间隔不能超过%d天", maxDays)
	}
	return nil
}

// dayRange is the body of download_bill.
type dayRange struct {
	BeginDs int64 `json:"begin_ds"`
	EndDs   int64 `json:"end_ds"`
}

// urlAnswer is an answer carrying one download url.
type urlAnswer struct {
	result
	URL string `json:"url"`
}

func downloadBill(c *xpayCall) (answer, *apiError) {
	var p dayRange
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if err := checkDays(p.BeginDs, p.EndDs, 0); err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d-%d", p.BeginDs, p.EndDs)
	if !c.app.biz.bills[key] {
		c.app.biz.bills[key] = true
		return nil, errGenerating // the first call starts generation
	}
	name := fmt.Sprintf("bill_%s_%s.csv", c.app.cfg.AppID, key)
	c.app.biz.files[name] = struct{}{}
	return &urlAnswer{URL: fileURL(c.host, name)}, nil
}

// available returns the withdrawable balance in cents: paid minus refunded production cash
// orders, minus what was already withdrawn.
func (a *appState) available() int64 {
	var sum int64
	for _, o := range a.envs[0].orders {
		sum += o.PaidFee - o.RefundFee
	}
	return sum - a.biz.withdrawn
}

// bizBalanceAnswer is query_biz_balance's answer.
type bizBalanceAnswer struct {
	result
	BalanceAvailable struct {
		Amount       string `json:"amount"`
		CurrencyCode string `json:"currency_code"`
	} `json:"balance_available"`
}

func queryBizBalance(c *xpayCall) (answer, *apiError) {
	ans := &bizBalanceAnswer{}
	ans.BalanceAvailable.Amount = yuan(c.app.available())
	ans.BalanceAvailable.CurrencyCode = "CNY"
	return ans, nil
}

// withdrawal is one create_withdraw_order; withdrawals succeed immediately.
type withdrawal struct {
	no, wxNo string
	amount   int64
	created  time.Time
}

// withdrawParams is the body of create_withdraw_order and query_withdraw_order.
type withdrawParams struct {
	WithdrawNo     string  `json:"withdraw_no"`
	WithdrawAmount *string `json:"withdraw_amount"`
}

// createWithdrawAnswer is create_withdraw_order's answer.
type createWithdrawAnswer struct {
	result
	WithdrawNo   string `json:"withdraw_no"`
	WxWithdrawNo string `json:"wx_withdraw_no"`
}

// parseYuan parses a yuan amount such as "12.34" into cents.
func parseYuan(s string) (int64, bool) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || (hasFrac && frac == "") {
		return 0, false
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err1 := strconv.ParseUint(whole, 10, 40)
	f, err2 := strconv.ParseUint(frac, 10, 8)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return int64(w)*100 + int64(f), true
}

func createWithdrawOrder(c *xpayCall) (answer, *apiError) {
	var p withdrawParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if !isURLSafeID(p.WithdrawNo, 8, 32) {
		return nil, newErr(268490002, "withdraw_no长度需要在[8,32]，只允许字母、数字、'_'、'-'")
	}
	if w := c.app.biz.withdrawals[p.WithdrawNo]; w != nil {
		return &createWithdrawAnswer{WithdrawNo: w.no, WxWithdrawNo: w.wxNo}, nil // same request again
	}
	avail := c.app.available()
	amount := avail // absent: withdraw everything
	if p.WithdrawAmount != nil {
		cents, ok := parseYuan(*p.WithdrawAmount)
		if !ok || cents <= 0 {
			return nil, newErr(268490002, "withdraw_amount格式错误，单位元，例如0.01")
		}
		amount = cents
	}
	if amount <= 0 || amount > avail {
		return nil, newErr(268490002, "可提现余额不足")
	}
	w := &withdrawal{no: p.WithdrawNo, wxNo: newWxID("wxw", c.now), amount: amount, created: c.now}
	c.app.biz.withdrawals[w.no] = w
	c.app.biz.withdrawn += amount
	return &createWithdrawAnswer{WithdrawNo: w.no, WxWithdrawNo: w.wxNo}, nil
}

// queryWithdrawAnswer is query_withdraw_order's answer (timestamps are strings, as documented).
type queryWithdrawAnswer struct {
	result
	WithdrawNo               string `json:"withdraw_no"`
	Status                   int    `json:"status"`
	WithdrawAmount           string `json:"withdraw_amount"`
	WxWithdrawNo             string `json:"wx_withdraw_no"`
	WithdrawSuccessTimestamp string `json:"withdraw_success_timestamp"`
	CreateTime               string `json:"create_time"`
	FailReason               string `json:"fail_reason"`
}

func queryWithdrawOrder(c *xpayCall) (answer, *apiError) {
	var p withdrawParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	w := c.app.biz.withdrawals[p.WithdrawNo]
	if w == nil {
		return nil, errNotFound
	}
	ts := strconv.FormatInt(w.created.Unix(), 10)
	return &queryWithdrawAnswer{
		WithdrawNo:               w.no,
		Status:                   2, // 提现成功
		WithdrawAmount:           yuan(w.amount),
		WxWithdrawNo:             w.wxNo,
		WithdrawSuccessTimestamp: ts,
		CreateTime:               ts,
	}, nil
}

// downloadTask is one start_download_order export: running until first polled, then done.
type downloadTask struct {
	id       string
	polled   bool
	url      string
	expireAt int64
}

// startDownloadParams is start_download_order's body.
type startDownloadParams struct {
	BeginDs      int64  `json:"begin_ds"`
	EndDs        int64  `json:"end_ds"`
	OrderType    int    `json:"order_type"`
	OrderInfo    string `json:"order_info"`
	IsProvided   *bool  `json:"is_provided"`
	RefundStatus int    `json:"refund_status"`
	PayChannel   int    `json:"pay_channel"`
}

// taskIDAnswer is start_download_order's answer.
type taskIDAnswer struct {
	result
	TaskID string `json:"task_id"`
}

func startDownloadOrder(c *xpayCall) (answer, *apiError) {
	var p startDownloadParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	if err := checkDays(p.BeginDs, p.EndDs, 31); err != nil {
		return nil, err
	}
	if p.OrderType < 1 || p.OrderType > 4 {
		return nil, newErr(268490002, "order_type只能是1-4")
	}
	if p.PayChannel != 1 && p.PayChannel != 2 {
		return nil, newErr(268490002, "pay_channel只能是1或2")
	}
	t := &downloadTask{id: newWxID("task", c.now)}
	c.app.biz.downloads[t.id] = t
	return &taskIDAnswer{TaskID: t.id}, nil
}

// queryDownloadParams is query_download_order's body.
type queryDownloadParams struct {
	TaskID string `json:"task_id"`
}

// queryDownloadAnswer is query_download_order's answer.
type queryDownloadAnswer struct {
	result
	TaskID      string `json:"task_id"`
	Status      int    `json:"status"`
	DownloadURL string `json:"download_url"`
	ExpireAt    int64  `json:"expire_at"`
}

func queryDownloadOrder(c *xpayCall) (answer, *apiError) {
	var p queryDownloadParams
	if err := decodeParams(c.body, &p); err != nil {
		return nil, err
	}
	t := c.app.biz.downloads[p.TaskID]
	if t == nil {
		return nil, errNotFound
	}
	if !t.polled {
		t.polled = true
		return &queryDownloadAnswer{TaskID: t.id, Status: 1}, nil // 运行中
	}
	if t.url == "" {
		name := "orders_" + t.id + ".csv"
		c.app.biz.files[name] = struct{}{}
		t.url = fileURL(c.host, name)
		t.expireAt = c.now.Add(downloadURLTTL).Unix()
	}
	return &queryDownloadAnswer{TaskID: t.id, Status: 2, DownloadURL: t.url, ExpireAt: t.expireAt}, nil
}
