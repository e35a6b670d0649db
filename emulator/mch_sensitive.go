package emulator

import (
	"encoding/json"
	"regexp"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Sensitive fields (wechatpay.md §5): the merchant transfer (商家转账) takes user_name encrypted
// with WeChat Pay's key named by Wechatpay-Serial, and answers that carry personal data return it
// encrypted with the merchant's key: the transfer query's user_name and the complaint detail's
// payer_phone. docs/protocol/wechatpay.md "Sensitive fields" has the sources.

func init() {
	v3Routes = append(v3Routes,
		v3Route{method: "POST", prefix: "/v3/fund-app/mch-transfer/transfer-bills", handle: (*Emulator).v3CreateTransfer},
		v3Route{method: "GET", prefix: "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/", param: true, handle: (*Emulator).v3QueryTransfer},
		v3Route{method: "GET", prefix: "/v3/merchant-service/complaints-v2/", param: true, handle: (*Emulator).v3ComplaintDetail},
	)
}

// sensitiveBook holds the transfers and complaints of every merchant; the zero value is ready.
type sensitiveBook struct {
	mu            sync.Mutex
	transfers     map[string]*mchTransfer     // by mchid + "/" + out_bill_no
	complaints    map[string]*complaintRecord // by complaint_id
	receiptTokens []*receiptToken             // handed-out e-receipt download URLs, oldest first (mch_receipt.go)
}

// mchTransfer is one merchant transfer as WeChat Pay keeps it; userName is the decrypted name.
type mchTransfer struct {
	mchID, appID, outBillNo, billNo, sceneID, openID string
	userName, remark, packageInfo, notifyURL         string
	state                                            string // WAIT_USER_CONFIRM, then SUCCESS (mch_receipt.go)
	amount                                           int64
	created, updated                                 time.Time
	receipt                                          *transferReceipt // its e-receipt, once applied for
}

// complaintRecord is one user complaint against a merchant.
type complaintRecord struct {
	mchID, id, payerPhone, description, transactionID string
	created                                           time.Time
}

// transferRequest is the body of POST /v3/fund-app/mch-transfer/transfer-bills.
type transferRequest struct {
	AppID           *string         `json:"appid"`
	OutBillNo       *string         `json:"out_bill_no"`
	TransferSceneID *string         `json:"transfer_scene_id"`
	OpenID          *string         `json:"openid"`
	UserName        *string         `json:"user_name"`
	TransferAmount  *int64          `json:"transfer_amount"`
	TransferRemark  *string         `json:"transfer_remark"`
	NotifyURL       *string         `json:"notify_url"`
	Perception      *string         `json:"user_recv_perception"`
	ReportInfos     json.RawMessage `json:"transfer_scene_report_infos"`
}

var outBillNoPattern = regexp.MustCompile(`^[0-9A-Za-z]{1,32}$`)

// userNameRequiredFrom is the amount (fen) from which user_name is required: 2,000 yuan.
const userNameRequiredFrom = 2000_00

// Sensitive-field failures. WeChat Pay's exact wording is not published; these follow its style.
const (
	msgSerialMissing   = "Http头Wechatpay-Serial缺失：请求包含敏感信息加密字段时必须填写"
	msgSerialUnknown   = "Http头Wechatpay-Serial无效：不是微信支付公钥ID或有效的平台证书序列号"
	msgFieldNotDecrypt = "敏感信息字段%s解密失败，请使用Wechatpay-Serial对应的微信支付公钥或平台证书加密"
)

// sensitiveDecrypter returns the private key behind the Wechatpay-Serial of a request to merchant
// m: the WeChat Pay public key pair, or an unexpired platform certificate of a merchant that has
// them. nil when the serial names neither.
func (e *Emulator) sensitiveDecrypter(m *merchantState, serial string, now time.Time) *signer.RSASigner {
	k := e.mch.keys
	if serial == k.id {
		s, _ := k.publicPair()
		return s
	}
	if !m.cfg.PlatformCertificates {
		return nil
	}
	for _, pc := range e.platformCerts(now) {
		if pc.serial == serial {
			return pc.signer
		}
	}
	return nil
}

// v3CreateTransfer is 发起转账 (user-confirmation mode): the transfer waits for the user.
func (e *Emulator) v3CreateTransfer(c *v3Call) (*v3Reply, *v3Error) {
	var req transferRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "请求体不是有效的JSON")
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"appid", req.AppID}, {"out_bill_no", req.OutBillNo}, {"transfer_scene_id", req.TransferSceneID}, {"openid", req.OpenID}, {"transfer_remark", req.TransferRemark}} {
		if f.v == nil || *f.v == "" {
			return nil, v3ParamErr("body", f.name, ruleRequired)
		}
	}
	if req.TransferAmount == nil {
		return nil, v3ParamErr("body", "transfer_amount", ruleRequired)
	}
	if *req.TransferAmount <= 0 {
		return nil, v3ParamErr("body", "transfer_amount", ruleRange)
	}
	if !outBillNoPattern.MatchString(*req.OutBillNo) {
		return nil, v3ParamErr("body", "out_bill_no", ruleFormat)
	}
	if len([]rune(*req.TransferRemark)) > 32 {
		return nil, v3ParamErr("body", "transfer_remark", ruleFormat)
	}
	if *req.AppID != c.m.cfg.AppID {
		return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "appid和mch_id不匹配，请检查后再试")
	}
	var infos []struct {
		InfoType    string `json:"info_type"`
		InfoContent string `json:"info_content"`
	}
	if len(req.ReportInfos) == 0 || json.Unmarshal(req.ReportInfos, &infos) != nil || len(infos) == 0 {
		return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "需传入转账场景报备信息，请检查")
	}
	if req.NotifyURL != nil {
		if !validNotifyURL(*req.NotifyURL, !c.httpNotify) {
			return nil, v3ParamErr("body", "notify_url", ruleFormat)
		}
	}
	var name, notifyURL string
	if req.NotifyURL != nil {
		notifyURL = *req.NotifyURL
	}
	if req.UserName != nil {
		serial := string(c.ctx.Request.Header.Peek("Wechatpay-Serial"))
		if serial == "" {
			return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", msgSerialMissing)
		}
		key := e.sensitiveDecrypter(c.m, serial, c.now)
		if key == nil {
			return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", msgSerialUnknown)
		}
		pt, err := key.DecryptOAEP(*req.UserName)
		if err != nil || len(pt) == 0 {
			return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", msgFieldNotDecrypt, "user_name")
		}
		name = string(pt)
	} else if *req.TransferAmount >= userNameRequiredFrom {
		return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "转账金额>=2000元时，收款用户姓名user_name必填")
	}
	b := &e.sensitive
	b.mu.Lock()
	defer b.mu.Unlock()
	key := c.m.cfg.MchID + "/" + *req.OutBillNo
	t := b.transfers[key]
	if t == nil {
		t = &mchTransfer{
			mchID: c.m.cfg.MchID, appID: *req.AppID, outBillNo: *req.OutBillNo,
			billNo: "1330" + c.now.In(beijing).Format("20060102") + digits(20), sceneID: *req.TransferSceneID,
			openID: *req.OpenID, userName: name, remark: *req.TransferRemark, amount: *req.TransferAmount,
			packageInfo: randomNonce(32), notifyURL: notifyURL, state: transferWaitConfirm, created: c.now, updated: c.now,
		}
		if b.transfers == nil {
			b.transfers = map[string]*mchTransfer{}
		}
		b.transfers[key] = t
	} else if t.amount != *req.TransferAmount || t.openID != *req.OpenID {
		return nil, v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "商户单号重复，且与原单信息不一致")
	}
	out := map[string]any{
		"out_bill_no": t.outBillNo, "transfer_bill_no": t.billNo, "create_time": rfc3339(t.created), "state": t.state,
	}
	if t.state == transferWaitConfirm {
		out["package_info"] = t.packageInfo // only while the user has to confirm
	}
	return &v3Reply{status: fasthttp.StatusOK, json: out}, nil
}

// v3QueryTransfer is 商户单号查询转账单; user_name comes back encrypted with the merchant's key.
func (e *Emulator) v3QueryTransfer(c *v3Call) (*v3Reply, *v3Error) {
	b := &e.sensitive
	b.mu.Lock()
	t := b.transfers[c.m.cfg.MchID+"/"+c.param]
	b.mu.Unlock()
	if t == nil {
		return nil, v3Err(fasthttp.StatusNotFound, "NOT_FOUND", "记录不存在")
	}
	out := map[string]any{
		"mch_id": t.mchID, "out_bill_no": t.outBillNo, "transfer_bill_no": t.billNo, "appid": t.appID,
		"state": t.state, "transfer_amount": t.amount, "transfer_remark": t.remark,
		"openid": t.openID, "create_time": rfc3339(t.created), "update_time": rfc3339(t.updated),
	}
	if t.userName != "" {
		ct, err := signer.EncryptOAEP(c.m.cfg.PublicKey, []byte(t.userName))
		if err != nil {
			return nil, errV3System
		}
		out["user_name"] = ct
	}
	return &v3Reply{status: fasthttp.StatusOK, json: out}, nil
}

// v3ComplaintDetail is 查询投诉单详情; payer_phone comes back encrypted with the merchant's key.
func (e *Emulator) v3ComplaintDetail(c *v3Call) (*v3Reply, *v3Error) {
	b := &e.sensitive
	b.mu.Lock()
	r := b.complaints[c.param]
	b.mu.Unlock()
	if r == nil || r.mchID != c.m.cfg.MchID {
		return nil, v3Err(fasthttp.StatusNotFound, "RESOURCE_NOT_EXISTS", "投诉单不存在")
	}
	out := map[string]any{
		"complaint_id": r.id, "complaint_time": rfc3339(r.created), "complaint_detail": r.description,
		"complaint_state": "PENDING", "complaint_full_refunded": false, "incoming_user_response": false,
		"user_complaint_times": 1, "problem_description": r.description,
		"complaint_order_info": []map[string]any{{"transaction_id": r.transactionID, "out_trade_no": "", "amount": 1}},
	}
	if r.payerPhone != "" {
		ct, err := signer.EncryptOAEP(c.m.cfg.PublicKey, []byte(r.payerPhone))
		if err != nil {
			return nil, errV3System
		}
		out["payer_phone"] = ct
	}
	return &v3Reply{status: fasthttp.StatusOK, json: out}, nil
}

// AddComplaintRecord files a user complaint against merchant mchID (the user left payerPhone,
// "" for none) and returns its complaint_id, for GET /v3/merchant-service/complaints-v2/{id}.
// It returns "" when no such merchant is configured.
func (e *Emulator) AddComplaintRecord(mchID, payerPhone, description string) string {
	if e.merchant(mchID) == nil {
		return ""
	}
	now := e.now()
	r := &complaintRecord{mchID: mchID, id: "2000" + now.In(beijing).Format("20060102") + digits(18),
		payerPhone: payerPhone, description: description, transactionID: "4200" + digits(24), created: now}
	b := &e.sensitive
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.complaints == nil {
		b.complaints = map[string]*complaintRecord{}
	}
	b.complaints[r.id] = r
	return r.id
}

// TransferUserName returns the payee name of a merchant transfer as WeChat Pay decrypted it, and
// whether the transfer exists.
func (e *Emulator) TransferUserName(mchID, outBillNo string) (string, bool) {
	b := &e.sensitive
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.transfers[mchID+"/"+outBillNo]
	if !ok {
		return "", false
	}
	return t.userName, true
}

// digits returns n random decimal digits (bill and complaint numbers).
func digits(n int) string {
	b := []byte(randomHex(n))
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b[:n])
}
