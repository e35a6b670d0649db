package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Merchant transfers after the transfer call (docs/protocol/wechatpay.md M.2 and M.3): the user
// confirms the transfer in the client (wx.requestMerchantTransfer, RequestMerchantTransfer here),
// which settles it (SUCCESS, MCHTRANSFER.BILL.FINISHED to its notify_url); then the merchant
// applies for its e-receipt (电子回单) by out_bill_no, queries it by transfer_bill_no for a
// download_url and the file's SHA-256, and downloads the file from
// GET /v3/transferdownload/signfile?token=, which WeChat Pay answers unsigned.

func init() {
	v3Routes = append(v3Routes,
		v3Route{method: "POST", prefix: "/v3/fund-app/mch-transfer/elecsign/out-bill-no", handle: (*Emulator).v3ApplyReceipt},
		v3Route{method: "GET", prefix: "/v3/fund-app/mch-transfer/elecsign/transfer-bill-no/", param: true, handle: (*Emulator).v3QueryReceipt},
		v3Route{method: "GET", prefix: "/v3/transferdownload/signfile", handle: (*Emulator).v3DownloadReceipt},
	)
}

// Transfer states the emulator uses.
const (
	transferWaitConfirm = "WAIT_USER_CONFIRM"
	transferSuccess     = "SUCCESS"
)

// Receipt states (申请单状态).
const (
	receiptGenerating = "GENERATING"
	receiptFinished   = "FINISHED"
)

const (
	// receiptURLLifetime is how long a receipt's download_url works: "有效期10分钟".
	receiptURLLifetime = 10 * time.Minute
	// receiptApplyWithin is how old a transfer may be for a receipt: "六个月内" (180 days in the
	// newer pages).
	receiptApplyWithin = 180 * 24 * time.Hour
	// maxReceiptTokens bounds the download tokens remembered; the oldest stops working first.
	maxReceiptTokens = 256
)

// transferReceipt is the e-receipt of one transfer. Guarded by sensitiveBook.mu.
type transferReceipt struct {
	state            string
	created, updated time.Time
	file             []byte // the PDF
	sha256           string // upper-case hex, as hash_value
}

// receiptToken is one handed-out download_url of a receipt.
type receiptToken struct {
	token, mchID string
	receipt      *transferReceipt
	expires      time.Time
}

// Receipt refusals. WeChat Pay documents the conditions, not its codes and messages for them;
// these follow its style (400 INVALID_REQUEST for a request the state does not allow).
var (
	errReceiptNotSuccess = v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "仅支持付款成功的转账单据申请电子回单")
	errReceiptNoName     = v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "仅支持传入姓名的转账单据申请电子回单")
	errReceiptTooOld     = v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "仅支持六个月内的转账单据申请电子回单")
	errReceiptNotFound   = v3Err(fasthttp.StatusNotFound, "NOT_FOUND", "电子回单申请单不存在")
	errReceiptToken      = v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "下载链接无效或已过期，请重新查询电子回单")
	errTransferNotFound  = v3Err(fasthttp.StatusNotFound, "NOT_FOUND", "记录不存在")
)

// receiptAnswer is the receipt as the apply and query answers show it.
type receiptAnswer struct {
	State       string `json:"state"`
	CreateTime  string `json:"create_time"`
	UpdateTime  string `json:"update_time,omitempty"`
	HashType    string `json:"hash_type,omitempty"`
	HashValue   string `json:"hash_value,omitempty"`
	DownloadURL string `json:"download_url,omitempty"`
}

// v3ApplyReceipt is 商户单号申请电子回单: only a SUCCESS transfer made with user_name, at most
// 180 days old, gets one. The answer says GENERATING; the receipt is generated right after it
// (as refunds are settled right after the answer that accepts them), so the next query finds it
// FINISHED. Applying again answers the receipt's current state.
func (e *Emulator) v3ApplyReceipt(c *v3Call) (*v3Reply, *v3Error) {
	var req struct {
		OutBillNo *string `json:"out_bill_no"`
	}
	if json.Unmarshal(c.body, &req) != nil {
		return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "请求体不是有效的JSON")
	}
	if req.OutBillNo == nil || *req.OutBillNo == "" {
		return nil, v3ParamErr("body", "out_bill_no", ruleRequired)
	}
	b := &e.sensitive
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.transfers[c.m.cfg.MchID+"/"+*req.OutBillNo]
	switch {
	case t == nil:
		return nil, errTransferNotFound
	case t.state != transferSuccess:
		return nil, errReceiptNotSuccess
	case t.userName == "":
		return nil, errReceiptNoName
	case c.now.Sub(t.created) > receiptApplyWithin:
		return nil, errReceiptTooOld
	}
	if t.receipt == nil {
		t.receipt = &transferReceipt{state: receiptGenerating, created: c.now, updated: c.now}
		defer t.generateReceipt(c.now) // after the answer below is made
	}
	return &v3Reply{status: fasthttp.StatusOK, json: &receiptAnswer{
		State: t.receipt.state, CreateTime: rfc3339(t.receipt.created),
	}}, nil
}

// generateReceipt makes t's receipt file and finishes it. Callers hold sensitiveBook.mu.
func (t *mchTransfer) generateReceipt(now time.Time) {
	r := t.receipt
	r.file = receiptPDF(t)
	sum := sha256.Sum256(r.file)
	r.sha256 = strings.ToUpper(hex.EncodeToString(sum[:]))
	r.state, r.updated = receiptFinished, now
}

// v3QueryReceipt is 微信单号查询电子回单 (GET .../elecsign/transfer-bill-no/{transfer_bill_no}):
// a finished receipt comes with hash_type SHA256, its hash_value and a fresh download_url valid
// 10 minutes.
func (e *Emulator) v3QueryReceipt(c *v3Call) (*v3Reply, *v3Error) {
	b := &e.sensitive
	b.mu.Lock()
	defer b.mu.Unlock()
	var t *mchTransfer
	for _, x := range b.transfers {
		if x.mchID == c.m.cfg.MchID && x.billNo == c.param {
			t = x
			break
		}
	}
	if t == nil || t.receipt == nil {
		return nil, errReceiptNotFound
	}
	r := t.receipt
	ans := &receiptAnswer{State: r.state, CreateTime: rfc3339(r.created), UpdateTime: rfc3339(r.updated)}
	if r.state == receiptFinished {
		tok := &receiptToken{token: randomNonce(40), mchID: c.m.cfg.MchID, receipt: r, expires: c.now.Add(receiptURLLifetime)}
		b.receiptTokens = append(b.receiptTokens, tok)
		if len(b.receiptTokens) > maxReceiptTokens {
			b.receiptTokens[0] = nil
			b.receiptTokens = b.receiptTokens[1:]
		}
		scheme := "http"
		if c.ctx.IsTLS() {
			scheme = "https"
		}
		ans.HashType, ans.HashValue = "SHA256", r.sha256
		ans.DownloadURL = scheme + "://" + string(c.ctx.Host()) + "/v3/transferdownload/signfile?token=" + tok.token
	}
	return &v3Reply{status: fasthttp.StatusOK, json: ans}, nil
}

// v3DownloadReceipt answers GET /v3/transferdownload/signfile?token=: the receipt file, unsigned
// like WeChat Pay's. The request is signed as usual, by the merchant the token was handed to;
// an unknown, expired or another merchant's token is a (signed) error.
func (e *Emulator) v3DownloadReceipt(c *v3Call) (*v3Reply, *v3Error) {
	token := string(c.ctx.QueryArgs().Peek("token"))
	b := &e.sensitive
	b.mu.Lock()
	var file []byte
	for _, tok := range b.receiptTokens {
		if token != "" && tok.token == token && tok.mchID == c.m.cfg.MchID && c.now.Before(tok.expires) {
			file = tok.receipt.file
			break
		}
	}
	b.mu.Unlock()
	if file == nil {
		return nil, errReceiptToken
	}
	return &v3Reply{status: fasthttp.StatusOK, file: file, fileType: "application/pdf"}, nil
}

// receiptPDF renders t's receipt as a one-page PDF (ASCII text: the ids and the amount).
func receiptPDF(t *mchTransfer) []byte {
	text := fmt.Sprintf("WeChat Pay transfer e-receipt: merchant %s, bill %s, out_bill_no %s, amount %d fen, %s",
		t.mchID, t.billNo, t.outBillNo, t.amount, t.updated.In(beijing).Format("2006-01-02 15:04:05"))
	content := "BT /F1 10 Tf 40 800 Td (" + text + ") Tj ET"
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// MerchantTransfer is what a mini program passes to wx.requestMerchantTransfer to let the user
// confirm a transfer (商家转账用户确认模式).
type MerchantTransfer struct {
	MchID   string `json:"mchId"`
	AppID   string `json:"appId"`
	Package string `json:"package"` // the transfer answer's package_info
	OpenID  string `json:"openId"`  // optional: the payee, checked against the transfer's openid
}

// RequestMerchantTransfer does what wx.requestMerchantTransfer does when the user confirms: the
// mchId, appId and package must be those of a transfer waiting for the user (and openId, when
// given, its payee). The transfer then succeeds and MCHTRANSFER.BILL.FINISHED is queued to its
// notify_url. It returns "requestMerchantTransfer:ok" and true, or
// "requestMerchantTransfer:fail <reason>" and false.
func (e *Emulator) RequestMerchantTransfer(req MerchantTransfer) (errMsg string, ok bool) {
	for _, f := range []struct{ name, value string }{{"mchId", req.MchID}, {"appId", req.AppID}, {"package", req.Package}} {
		if f.value == "" {
			return "requestMerchantTransfer:fail parameter error: parameter." + f.name + " should be String instead of Undefined", false
		}
	}
	var ns notices
	defer e.flush(&ns) // after the unlock below
	now := e.now()
	b := &e.sensitive
	b.mu.Lock()
	defer b.mu.Unlock()
	var t *mchTransfer
	for _, x := range b.transfers {
		if x.mchID == req.MchID && x.packageInfo == req.Package {
			t = x
			break
		}
	}
	switch {
	case t == nil:
		return "requestMerchantTransfer:fail 转账单据不存在或package无效", false
	case t.appID != req.AppID:
		return "requestMerchantTransfer:fail appId与发起转账时的appid不一致", false
	case req.OpenID != "" && req.OpenID != t.openID:
		return "requestMerchantTransfer:fail 你的微信号与商家指定的微信号不一致", false
	case t.state != transferWaitConfirm:
		return "requestMerchantTransfer:fail 该笔转账已确认收款", false
	}
	t.state, t.updated = transferSuccess, now
	if t.notifyURL != "" {
		ns.add(transferNotice(t))
	}
	return "requestMerchantTransfer:ok", true
}

// transferNotice is t's MCHTRANSFER.BILL.FINISHED (wechatpay.md §10.5). Callers hold
// sensitiveBook.mu.
func transferNotice(t *mchTransfer) *notice {
	mchID, url := t.mchID, t.notifyURL
	plain, err := marshalV3(map[string]any{
		"mchid": t.mchID, "out_bill_no": t.outBillNo, "transfer_bill_no": t.billNo, "state": t.state,
		"transfer_amount": t.amount, "openid": t.openID, "create_time": rfc3339(t.created), "update_time": rfc3339(t.updated),
	})
	return &notice{kind: KindV3, url: url, build: func(e *Emulator) (Notification, error) {
		if err != nil {
			return Notification{}, err
		}
		return e.buildV3Notification(mchID, EventTransferFinished, noticeKinds[NoticeTransfer].originalType, plain, url, NotifyOptions{})
	}}
}

// serveRequestMerchantTransfer answers POST /_emulator/pay/request_merchant_transfer.
func (e *Emulator) serveRequestMerchantTransfer(ctx *fasthttp.RequestCtx) {
	var req MerchantTransfer
	if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), &req) != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: "body must be a JSON object {mchId, appId, package, openId}"})
		return
	}
	msg, ok := e.RequestMerchantTransfer(req)
	writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: ok, ErrMsg: msg})
}
