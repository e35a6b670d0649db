package emulator

import (
	"html"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// APIv2 contract payments (委托代扣, wechatpay.md §7.6): pay-and-sign (/pay/contractorder),
// deductions (/pay/pappayapply), and the contract calls /papay/querycontract and
// /papay/deletecontract, which take no nonce_str. The emulator signs the contract as soon as
// contractorder is placed (the user's consent in the WeChat client is not emulated).

// v2Contract is one signed contract.
type v2Contract struct {
	mchID, id, planID, code, requestSerial, displayAccount, openID string
	signed, terminated                                             time.Time
	remark                                                         string
}

// Contract errors.
var (
	errV2ContractNotExist = &payError{fasthttp.StatusNotFound, "CONTRACT_NOT_EXIST", "CONTRACT_NOT_EXIST", "签约协议不存在"}
	errV2ContractEnded    = &payError{fasthttp.StatusBadRequest, "CONTRACT_ERROR", "CONTRACT_ERROR", "签约协议已解约"}
)

// v2ContractOrder answers /pay/contractorder: a unifiedorder that also signs a contract.
func (e *Emulator) v2ContractOrder(c *v2Call) *v2Result {
	if k := v2Required(c, "plan_id", "contract_code", "request_serial", "contract_display_account", "contract_notify_url"); k != "" {
		return v2Fail("缺少参数" + k)
	}
	res := e.v2UnifiedOrder(c)
	if res.msg != "" || res.fail != nil {
		return res
	}
	e.mch.mu.Lock()
	x := e.extra()
	if e.findContract(c, "", c.get("plan_id"), c.get("contract_code")) == nil {
		k := &v2Contract{mchID: c.m.cfg.MchID, id: x.nextID("Wx", c.now), planID: c.get("plan_id"),
			code: c.get("contract_code"), requestSerial: c.get("request_serial"),
			displayAccount: c.get("contract_display_account"), openID: c.get("openid"), signed: c.now}
		x.contracts[c.m.cfg.MchID+"/"+k.id] = k
	}
	e.mch.mu.Unlock()
	res.fields = append(res.fields, param("contract_result_code", "SUCCESS"), param("plan_id", c.get("plan_id")),
		param("request_serial", c.get("request_serial")), param("contract_code", c.get("contract_code")),
		param("contract_display_account", c.get("contract_display_account")))
	return res
}

// findContract finds a contract by contract_id, or by plan_id and contract_code. Callers hold
// mchState.mu.
func (e *Emulator) findContract(c *v2Call, id, planID, code string) *v2Contract {
	x := e.extra()
	if id != "" {
		return x.contracts[c.m.cfg.MchID+"/"+id]
	}
	for _, k := range x.contracts {
		if k.mchID == c.m.cfg.MchID && k.planID == planID && k.code == code {
			return k
		}
	}
	return nil
}

// contractOf returns the contract a contract call names, or its problem.
func (e *Emulator) contractOf(c *v2Call) (*v2Contract, *v2Result) {
	if c.get("version") != "1.0" {
		return nil, v2Fail("version参数错误")
	}
	id, planID, code := c.get("contract_id"), c.get("plan_id"), c.get("contract_code")
	if id == "" && (planID == "" || code == "") {
		return nil, v2Fail("contract_id和plan_id+contract_code必须传一个")
	}
	k := e.findContract(c, id, planID, code)
	if k == nil {
		return nil, v2Business(errV2ContractNotExist)
	}
	return k, nil
}

// v2QueryContract answers /papay/querycontract (signed answer).
func (e *Emulator) v2QueryContract(c *v2Call) *v2Result {
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	k, bad := e.contractOf(c)
	if bad != nil {
		return bad
	}
	state := "0"
	fields := []signer.Param{
		param("contract_id", k.id), param("plan_id", k.planID), param("contract_code", k.code),
		param("request_serial", k.requestSerial), param("contract_display_account", k.displayAccount),
		param("openid", k.openID), param("contract_signed_time", k.signed.In(beijing).Format("2006-01-02 15:04:05")),
		param("contract_expired_time", k.signed.AddDate(1, 0, 0).In(beijing).Format("2006-01-02 15:04:05")),
	}
	if !k.terminated.IsZero() {
		state = "1"
		fields = append(fields, param("contract_terminated_time", k.terminated.In(beijing).Format("2006-01-02 15:04:05")),
			param("contract_termination_mode", "3"), param("contract_termination_remark", k.remark))
	}
	return v2OK(append(fields, param("contract_state", state))...)
}

// v2DeleteContract answers /papay/deletecontract (MD5 only, signed answer).
func (e *Emulator) v2DeleteContract(c *v2Call) *v2Result {
	if c.get("contract_termination_remark") == "" {
		return v2Fail("缺少参数contract_termination_remark")
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	k, bad := e.contractOf(c)
	if bad != nil {
		return bad
	}
	if !k.terminated.IsZero() {
		return v2Business(errV2ContractEnded)
	}
	k.terminated, k.remark = c.now, c.get("contract_termination_remark")
	return v2OK(param("contract_id", k.id), param("plan_id", k.planID), param("contract_code", k.code))
}

// v2PapPayApply answers /pay/pappayapply: a deduction under an active contract is accepted (its
// result would come in a notification, which the emulator does not send).
func (e *Emulator) v2PapPayApply(c *v2Call) *v2Result {
	if k := v2Required(c, "body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type", "contract_id"); k != "" {
		return v2Fail("缺少参数" + k)
	}
	if c.get("trade_type") != "PAP" {
		return v2Fail("trade_type参数错误")
	}
	if _, ok := parseFen(c.get("total_fee")); !ok {
		return v2Fail("invalid total_fee")
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	k := e.findContract(c, c.get("contract_id"), "", "")
	switch {
	case k == nil:
		return v2Business(errV2ContractNotExist)
	case !k.terminated.IsZero():
		return v2Business(errV2ContractEnded)
	}
	return v2OK()
}

// entrustWebPath is the contract page a user's browser opens (GET, signed query, MD5).
const entrustWebPath = "/papay/entrustweb"

// v2EntrustWeb serves GET /papay/entrustweb as the page and the user together: it checks the
// query (appid, mch_id, plan_id, contract_code, request_serial, contract_display_account,
// notify_url, version 1.0, a timestamp within 5 minutes, the MD5 sign over the decoded values),
// then signs the contract as if the user had agreed, and answers a small HTML page. A problem is
// answered with the page's error text and status 400.
func (e *Emulator) v2EntrustWeb(ctx *fasthttp.RequestCtx) {
	fail := func(msg string) {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBodyString("<html><body>" + html.EscapeString(msg) + "</body></html>")
	}
	if !ctx.IsGet() {
		fail("请使用GET方法")
		return
	}
	var params []signer.Param
	for k, v := range ctx.QueryArgs().All() {
		params = append(params, signer.Param{Key: string(k), Value: string(v)})
	}
	get := func(k string) string { v, _ := signer.ParamValue(params, k); return v }
	m := e.merchant(get("mch_id"))
	switch {
	case m == nil:
		fail(v2MsgMchID)
		return
	case m.v2 == nil || m.v2.Verify(signer.V2SignMD5, params) != nil:
		fail(v2MsgSign)
		return
	case get("appid") != m.cfg.AppID:
		fail(v2MsgAppID)
		return
	case get("version") != "1.0":
		fail("version参数错误")
		return
	}
	for _, k := range []string{"plan_id", "contract_code", "request_serial", "contract_display_account", "notify_url", "timestamp"} {
		if get(k) == "" {
			fail("缺少参数" + k)
			return
		}
	}
	now := e.now()
	ts, err := strconv.ParseInt(get("timestamp"), 10, 64)
	if err != nil || now.Sub(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		fail("timestamp参数错误")
		return
	}
	e.mch.mu.Lock()
	x := e.extra()
	c := &v2Call{m: m}
	if e.findContract(c, "", get("plan_id"), get("contract_code")) == nil {
		k := &v2Contract{mchID: m.cfg.MchID, id: x.nextID("Wx", now), planID: get("plan_id"), code: get("contract_code"),
			requestSerial: get("request_serial"), displayAccount: get("contract_display_account"),
			openID: "o-entrust-" + get("contract_code"), signed: now}
		x.contracts[m.cfg.MchID+"/"+k.id] = k
	}
	e.mch.mu.Unlock()
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBodyString("<html><body>签约成功</body></html>")
}
