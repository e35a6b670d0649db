package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/valyala/fasthttp"
)

// Trade bills (wechatpay.md §6.5): the CSV shared by APIv3 (tradebill + billdownload) and APIv2
// (downloadbill).

// Bill rules.
const (
	billDownloadLifetime = 5 * time.Minute // a download_url works this long
	billHistory          = 90 * 24 * time.Hour
	maxBillsPerMerchant  = 64 // download tokens remembered per merchant; older ones stop working
	feeRatePermille      = 6  // the 0.6% WeChat Pay fee shown in bills
)

// billFile is one handed-out bill download.
type billFile struct {
	token   string
	csv     []byte
	gzip    bool
	expires time.Time
}

// Bill columns by bill type.
var (
	billColumnsHead   = []string{"交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额"}
	billColumnsTail   = []string{"商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"}
	billColumnsRefund = []string{"微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态"}
	billColumns       = map[string][]string{
		"ALL":     slices.Concat(billColumnsHead, billColumnsRefund, billColumnsTail),
		"SUCCESS": slices.Concat(billColumnsHead, []string{"商品名称", "商户数据包", "手续费", "费率", "订单金额", "费率备注"}),
		"REFUND":  slices.Concat(billColumnsHead, []string{"退款申请时间", "退款成功时间"}, billColumnsRefund, billColumnsTail),
	}
	billSummaryColumns = []string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}
)

// billRecord is one bill line: its time and its fields by column name.
type billRecord struct {
	at     time.Time
	fields map[string]string
}

// billTime formats a bill timestamp (Beijing time).
func billTime(t time.Time) string { return t.In(beijing).Format("2006-01-02 15:04:05") }

// fee is the fee WeChat Pay would take on fen, rounded to the fen.
func fee(fen int64) int64 { return (fen*feeRatePermille + 500) / 1000 }

// tradeBill renders the merchant's bill of one Beijing day: payments made that day (ALL,
// SUCCESS) and refunds requested that day (ALL, REFUND), then the summary. ok is false when the
// day has no record of that type (WeChat Pay has no bill then). Callers hold mchState.mu.
func (m *merchantState) tradeBill(day time.Time, billType string) (bill []byte, ok bool) {
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, beijing)
	end := start.AddDate(0, 0, 1)
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(start) && t.Before(end) }
	var recs []billRecord
	var paid, refunded, fees int64
	for _, o := range m.orders {
		base := map[string]string{
			"交易时间": billTime(o.paidAt), "公众账号ID": o.appID, "商户号": m.cfg.MchID, "特约商户号": "0",
			"微信订单号": o.transactionID, "商户订单号": o.outTradeNo, "用户标识": o.openID, "交易类型": "JSAPI",
			"付款银行": "OTHERS", "货币种类": "CNY", "代金券金额": "0.00", "商品名称": o.description,
			"商户数据包": o.attach, "费率": "0.60%", "订单金额": yuan(o.total), "充值券退款金额": "0.00",
		}
		if billType != "REFUND" && in(o.paidAt) {
			f := maps.Clone(base)
			f["交易状态"], f["应结订单金额"], f["手续费"] = "SUCCESS", yuan(o.total), yuan(fee(o.total))
			f["微信退款单号"], f["商户退款单号"], f["退款金额"], f["申请退款金额"] = "0", "0", "0.00", "0.00"
			recs = append(recs, billRecord{at: o.paidAt, fields: f})
			paid += o.total
			fees += fee(o.total)
		}
		for _, r := range o.refunds {
			if billType == "SUCCESS" || !in(r.created) {
				continue
			}
			f := maps.Clone(base)
			f["交易状态"], f["应结订单金额"], f["手续费"] = "REFUND", "0.00", yuan(-fee(r.amount))
			f["微信退款单号"], f["商户退款单号"], f["退款金额"], f["申请退款金额"] = r.refundID, r.outRefundNo, yuan(r.amount), yuan(r.amount)
			f["退款类型"], f["退款状态"], f["退款申请时间"] = "ORIGINAL", r.status, billTime(r.created)
			if !r.succeeded.IsZero() {
				f["退款成功时间"] = billTime(r.succeeded)
			}
			if billType == "ALL" {
				f["交易时间"] = billTime(r.created)
			}
			recs = append(recs, billRecord{at: r.created, fields: f})
			refunded += r.amount
			fees -= fee(r.amount)
		}
	}
	if len(recs) == 0 {
		return nil, false
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].at.Before(recs[j].at) })
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	cols := billColumns[billType]
	rows := [][]string{cols}
	for _, r := range recs {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = "`" + r.fields[c]
		}
		rows = append(rows, row)
	}
	rows = append(rows, billSummaryColumns, []string{
		fmt.Sprintf("`%d", len(recs)), "`" + yuan(paid), "`" + yuan(refunded), "`0.00", "`" + yuan(fees),
		"`" + yuan(paid), "`" + yuan(refunded),
	})
	_ = w.WriteAll(rows) // writes to a bytes.Buffer, which cannot fail
	return buf.Bytes(), true
}

// gzipBytes compresses b.
func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("gzip bill: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip bill: %w", err)
	}
	return buf.Bytes(), nil
}

// checkBillDay checks a bill date against WeChat Pay's window: not in the future and at most
// three months back. Today is accepted (WeChat Pay only has it the next morning) so tests with
// a real clock can fetch the bill of what they just paid.
func checkBillDay(day, now time.Time) bool {
	today := now.In(beijing)
	todayStart := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, beijing)
	return !day.After(todayStart) && !day.Before(todayStart.Add(-billHistory))
}

// tradeBillAnswer is the answer of GET /v3/bill/tradebill.
type tradeBillAnswer struct {
	HashType    string `json:"hash_type"`
	HashValue   string `json:"hash_value"`
	DownloadURL string `json:"download_url"`
}

// errNoStatement is the answer for a day without records.
var errNoStatement = v3Err(fasthttp.StatusBadRequest, "NO_STATEMENT_EXIST", "账单文件不存在")

// v3TradeBill answers GET /v3/bill/tradebill?bill_date=&bill_type=&tar_type=.
func (e *Emulator) v3TradeBill(c *v3Call) (*v3Reply, *v3Error) {
	q := c.ctx.QueryArgs()
	date := string(q.Peek("bill_date"))
	if date == "" {
		return nil, v3ParamErr("query", "bill_date", ruleRequired)
	}
	day, err := time.ParseInLocation("2006-01-02", date, beijing)
	if err != nil {
		return nil, v3ParamErr("query", "bill_date", ruleFormat)
	}
	if !checkBillDay(day, c.now) {
		return nil, v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "只能下载三个月以内、今天以前的账单")
	}
	billType := string(q.Peek("bill_type"))
	if billType == "" {
		billType = "ALL"
	}
	if billColumns[billType] == nil {
		return nil, v3ParamErr("query", "bill_type", ruleRange)
	}
	tarType := string(q.Peek("tar_type"))
	if tarType != "" && tarType != "GZIP" {
		return nil, v3ParamErr("query", "tar_type", ruleRange)
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	bill, ok := c.m.tradeBill(day, billType)
	if !ok {
		return nil, errNoStatement
	}
	f := &billFile{token: randomNonce(40), csv: bill, gzip: tarType == "GZIP", expires: c.now.Add(billDownloadLifetime)}
	c.m.bills = append(c.m.bills, f)
	if len(c.m.bills) > maxBillsPerMerchant {
		c.m.bills[0] = nil
		c.m.bills = c.m.bills[1:]
	}
	scheme := "http"
	if c.ctx.IsTLS() {
		scheme = "https"
	}
	u := scheme + "://" + string(c.ctx.Host()) + "/v3/billdownload/file?token=" + f.token
	if f.gzip {
		u += "&tartype=gzip"
	}
	sum := sha1.Sum(bill)
	return &v3Reply{status: fasthttp.StatusOK, json: &tradeBillAnswer{
		HashType: "SHA1", HashValue: hex.EncodeToString(sum[:]), DownloadURL: u,
	}}, nil
}

// errBillToken is the answer for an unknown or expired download token.
var errBillToken = v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "下载链接无效或已过期，请重新申请账单")

// v3DownloadBill answers GET /v3/billdownload/file?token=: the bill itself, gzip-compressed if
// asked, unsigned like WeChat Pay's (wechatpay.md §2.5). Errors are signed as usual.
func (e *Emulator) v3DownloadBill(c *v3Call) (*v3Reply, *v3Error) {
	token := string(c.ctx.QueryArgs().Peek("token"))
	e.mch.mu.Lock()
	var f *billFile
	for _, b := range c.m.bills {
		if b.token == token && c.now.Before(b.expires) {
			f = b
			break
		}
	}
	e.mch.mu.Unlock()
	if token == "" || f == nil {
		return nil, errBillToken
	}
	return billReply(f.csv, f.gzip)
}

// billReply serves a bill as a file, compressed when asked.
func billReply(bill []byte, compress bool) (*v3Reply, *v3Error) {
	if !compress {
		return &v3Reply{status: fasthttp.StatusOK, file: bill, fileType: "text/plain; charset=utf-8"}, nil
	}
	z, err := gzipBytes(bill)
	if err != nil {
		return nil, v3Err(fasthttp.StatusInternalServerError, "SYSTEM_ERROR", "系统错误: %v", err)
	}
	return &v3Reply{status: fasthttp.StatusOK, file: z, fileType: "application/gzip"}, nil
}
