package emulator

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"sort"
	"time"
)

// v2DownloadFundFlow answers /pay/downloadfundflow (client certificate, HMAC-SHA256 only;
// wechatpay.md §7.7): the fund flow CSV of one Beijing day of the Basic account, unsigned, with
// the day's paid orders as income and payouts and red packets as expenses. Failures are
// return_code FAIL documents with an error_code, as for downloadbill.
func (e *Emulator) v2DownloadFundFlow(c *v2Call) *v2Result {
	date := c.get("bill_date")
	if date == "" {
		return &v2Result{msg: "缺少参数bill_date", code: "20001"}
	}
	day, err := time.ParseInLocation("20060102", date, beijing)
	if err != nil || !checkBillDay(day, c.now) {
		return &v2Result{msg: "invalid bill_date", code: "20001"}
	}
	switch c.get("account_type") {
	case "Basic":
	case "Operation", "Fees":
		return &v2Result{msg: "No Bill Exist", code: "20002"}
	default:
		return &v2Result{msg: "invalid account_type", code: "20001"}
	}
	if t := c.get("tar_type"); t != "" && t != "GZIP" {
		return &v2Result{msg: "invalid tar_type", code: "20001"}
	}
	e.mch.mu.Lock()
	bill, ok := e.fundFlow(c.m, day)
	e.mch.mu.Unlock()
	if !ok {
		return &v2Result{msg: "No Bill Exist", code: "20002"}
	}
	reply, verr := billReply(bill, c.get("tar_type") == "GZIP")
	if verr != nil {
		return &v2Result{msg: v2MsgSystemBusy, code: "20007"}
	}
	return &v2Result{file: reply.file, fileType: reply.fileType}
}

// fundFlowColumns are the columns of the fund flow bill.
var fundFlowColumns = []string{"记账时间", "微信支付业务单号", "资金流水单号", "业务名称", "业务类型", "收支类型", "收支金额（元）", "账户结余（元）", "资金变更提交申请人", "备注", "业务凭证号"}

// fundFlow renders m's fund flow of one Beijing day; ok is false when it has no record.
// Callers hold mchState.mu.
func (e *Emulator) fundFlow(m *merchantState, day time.Time) ([]byte, bool) {
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, beijing)
	end := start.AddDate(0, 0, 1)
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(start) && t.Before(end) }
	type rec struct {
		at                      time.Time
		id, name, kind, dir, by string
		fen                     int64
	}
	var recs []rec
	for _, o := range m.orders {
		if in(o.paidAt) {
			recs = append(recs, rec{o.paidAt, o.transactionID, "交易", "交易", "收入", "system", o.total})
		}
	}
	x := e.extra()
	for _, t := range x.transfers {
		if t.mchID == m.cfg.MchID && in(t.at) {
			recs = append(recs, rec{t.at, t.paymentNo, "企业付款", "企业付款", "支出", m.cfg.MchID + "API", t.amount})
		}
	}
	for _, r := range x.redPacks {
		if r.mchID == m.cfg.MchID && in(r.at) {
			recs = append(recs, rec{r.at, r.detailID, "现金红包", "红包发放", "支出", m.cfg.MchID + "API", r.amount})
		}
	}
	if len(recs) == 0 {
		return nil, false
	}
	sort.SliceStable(recs, func(i, j int) bool {
		return recs[i].at.Before(recs[j].at) || recs[i].at.Equal(recs[j].at) && recs[i].id < recs[j].id
	})
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	rows := [][]string{fundFlowColumns}
	var balance, in2, out int64
	for i, r := range recs {
		if r.dir == "收入" {
			balance += r.fen
			in2 += r.fen
		} else {
			balance -= r.fen
			out += r.fen
		}
		rows = append(rows, []string{"`" + billTime(r.at), "`" + r.id, fmt.Sprintf("`%s%04d", r.at.In(beijing).Format("20060102"), i+1),
			"`" + r.name, "`" + r.kind, "`" + r.dir, "`" + yuan(r.fen), "`" + yuan(balance), "`" + r.by, "`", "`" + r.id})
	}
	rows = append(rows, []string{"资金流水总笔数", "收入笔数", "收入金额", "支出笔数", "支出金额"},
		[]string{fmt.Sprintf("`%d", len(recs)), fmt.Sprintf("`%d", count(recs, func(r rec) bool { return r.dir == "收入" })), "`" + yuan(in2),
			fmt.Sprintf("`%d", count(recs, func(r rec) bool { return r.dir != "收入" })), "`" + yuan(out)})
	_ = w.WriteAll(rows) // writes to a bytes.Buffer, which cannot fail
	return buf.Bytes(), true
}

// count counts the elements of s for which f holds.
func count[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}
