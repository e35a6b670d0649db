package emulator

import "time"

// v2DownloadBill answers /pay/downloadbill: the bill CSV itself (gzip with tar_type=GZIP),
// unsigned; failures are return_code FAIL documents with an error_code, like WeChat Pay's
// ("No Bill Exist", 20002).
func (e *Emulator) v2DownloadBill(c *v2Call) *v2Result {
	date := c.get("bill_date")
	if date == "" {
		return &v2Result{msg: "缺少参数bill_date", code: "20001"}
	}
	day, err := time.ParseInLocation("20060102", date, beijing)
	if err != nil || !checkBillDay(day, c.now) {
		return &v2Result{msg: "invalid bill_date", code: "20001"}
	}
	billType := c.get("bill_type")
	if billType == "" {
		billType = "ALL"
	}
	if billColumns[billType] == nil {
		return &v2Result{msg: "invalid bill_type", code: "20001"}
	}
	tarType := c.get("tar_type")
	if tarType != "" && tarType != "GZIP" {
		return &v2Result{msg: "invalid tar_type", code: "20001"}
	}
	e.mch.mu.Lock()
	bill, ok := c.m.tradeBill(day, billType)
	e.mch.mu.Unlock()
	if !ok {
		return &v2Result{msg: "No Bill Exist", code: "20002"}
	}
	reply, verr := billReply(bill, tarType == "GZIP")
	if verr != nil {
		return &v2Result{msg: v2MsgSystemBusy, code: "20007"}
	}
	return &v2Result{file: reply.file, fileType: reply.fileType}
}
