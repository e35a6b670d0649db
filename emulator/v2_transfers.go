package emulator

import (
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// APIv2 company payouts and red packets (/mmpaymkttransfers/, wechatpay.md §7.4, §7.5): client
// certificate, MD5 or HMAC-SHA256, answers without sign. Payouts and red packets go out at once
// and land in the fund flow bill (v2_fundflow.go).

// v2Extra is the emulator's record of APIv2 payouts, red packets and contracts, made on first
// use. Guarded by mchState.mu.
type v2Extra struct {
	transfers map[string]*v2Transfer // by mchid + "/" + partner_trade_no
	redPacks  map[string]*v2RedPack  // by mch_id + "/" + mch_billno
	contracts map[string]*v2Contract // by mch_id + "/" + contract_id
	seq       int

	sandboxRotations map[string]int // by mch_id: RotateSandboxKey calls (v2_sandbox.go)

	tamper     V2Tamper // the forgery of the next signed answers (v2_tamper.go)
	tamperLeft int
}

// v2Transfer is one company payout to a user's balance.
type v2Transfer struct {
	mchID, appID, partnerTradeNo, paymentNo, openID, desc string
	amount                                                int64
	at                                                    time.Time
}

// v2RedPack is one red packet.
type v2RedPack struct {
	mchID, billNo, detailID, openID, wishing, actName, remark, sendType string
	amount                                                              int64
	at                                                                  time.Time
}

// extra returns the APIv2 records, making them on first use. Callers hold mchState.mu.
func (e *Emulator) extra() *v2Extra {
	if e.mch.v2x == nil {
		e.mch.v2x = &v2Extra{
			transfers: make(map[string]*v2Transfer), redPacks: make(map[string]*v2RedPack),
			contracts: make(map[string]*v2Contract), sandboxRotations: make(map[string]int),
		}
	}
	return e.mch.v2x
}

// nextID returns a new id made of prefix, the date and a sequence. Callers hold mchState.mu.
func (x *v2Extra) nextID(prefix string, now time.Time) string {
	x.seq++
	return fmt.Sprintf("%s%s%08d", prefix, now.In(beijing).Format("20060102"), x.seq)
}

// errV2NotFound is the payout and red packet queries' answer for an unknown number.
var errV2NotFound = &payError{fasthttp.StatusNotFound, "NOT_FOUND", "NOT_FOUND", "指定单号数据不存在"}

// v2Transfer answers /mmpaymkttransfers/promotion/transfers. A repeated partner_trade_no with
// the same amount and openid answers the payout already made (the call is idempotent on it).
func (e *Emulator) v2Transfer(c *v2Call) *v2Result {
	if k := v2Required(c, "partner_trade_no", "openid", "check_name", "amount", "desc"); k != "" {
		return v2Fail("缺少参数" + k)
	}
	amount, ok := parseFen(c.get("amount"))
	switch {
	case !ok:
		return v2Fail("invalid amount")
	case !lengthIn(c.get("partner_trade_no"), 1, 32) || !onlyChars(c.get("partner_trade_no"), ""):
		return v2Fail("partner_trade_no参数格式错误")
	case c.get("check_name") != "NO_CHECK" && c.get("check_name") != "FORCE_CHECK":
		return v2Fail("check_name参数错误")
	case c.get("check_name") == "FORCE_CHECK" && c.get("re_user_name") == "":
		return v2Business(&payError{fasthttp.StatusBadRequest, "PARAM_ERROR", "PARAM_ERROR", "校验用户姓名选项为FORCE_CHECK时,收款用户姓名必填"})
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	x := e.extra()
	k := c.m.cfg.MchID + "/" + c.get("partner_trade_no")
	t := x.transfers[k]
	if t == nil {
		t = &v2Transfer{mchID: c.m.cfg.MchID, appID: c.m.cfg.AppID, partnerTradeNo: c.get("partner_trade_no"),
			paymentNo: x.nextID("1000018301", c.now), openID: c.get("openid"), desc: c.get("desc"), amount: amount, at: c.now}
		x.transfers[k] = t
	} else if t.amount != amount || t.openID != c.get("openid") {
		return v2Business(&payError{fasthttp.StatusBadRequest, "PARAM_ERROR", "PARAM_ERROR", "商户订单号重复,且参数与原单不一致"})
	}
	return v2OK(param("partner_trade_no", t.partnerTradeNo), param("payment_no", t.paymentNo),
		param("payment_time", billTime(t.at)))
}

// v2GetTransferInfo answers /mmpaymkttransfers/gettransferinfo.
func (e *Emulator) v2GetTransferInfo(c *v2Call) *v2Result {
	if k := v2Required(c, "partner_trade_no"); k != "" {
		return v2Fail("缺少参数" + k)
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	t := e.extra().transfers[c.m.cfg.MchID+"/"+c.get("partner_trade_no")]
	if t == nil {
		return v2Business(errV2NotFound)
	}
	return v2OK(param("partner_trade_no", t.partnerTradeNo), param("detail_id", t.paymentNo),
		param("status", "SUCCESS"), param("openid", t.openID), param("payment_amount", strconv.FormatInt(t.amount, 10)),
		param("transfer_time", billTime(t.at)), param("payment_time", billTime(t.at)), param("desc", t.desc))
}

// v2SendRedPack answers /mmpaymkttransfers/sendredpack (one packet, 1 to 200 yuan without
// scene_id).
func (e *Emulator) v2SendRedPack(c *v2Call) *v2Result {
	return e.sendRedPack(c, "API", "mch_billno", "send_name", "re_openid", "total_amount", "total_num", "wishing", "client_ip", "act_name", "remark")
}

// v2SendMiniProgramHB answers /mmpaymkttransfers/sendminiprogramhb: the answer's package opens
// the packet in the mini program (wx.sendBizRedPacket).
func (e *Emulator) v2SendMiniProgramHB(c *v2Call) *v2Result {
	if c.get("notify_way") != "MINI_PROGRAM_JSAPI" {
		return v2Fail("notify_way参数错误")
	}
	return e.sendRedPack(c, "MINI_PROGRAM", "mch_billno", "send_name", "re_openid", "total_amount", "total_num", "wishing", "act_name", "remark")
}

// sendRedPack sends one red packet after checking the required fields.
func (e *Emulator) sendRedPack(c *v2Call, sendType string, required ...string) *v2Result {
	if k := v2Required(c, required...); k != "" {
		return v2Fail("缺少参数" + k)
	}
	amount, ok := parseFen(c.get("total_amount"))
	switch {
	case !ok:
		return v2Fail("invalid total_amount")
	case c.get("total_num") != "1":
		return v2Fail("total_num参数错误")
	case c.get("scene_id") == "" && (amount < 100 || amount > 20000):
		return v2Business(&payError{fasthttp.StatusBadRequest, "MONEY_LIMIT", "MONEY_LIMIT", "红包金额发放限制"})
	case !lengthIn(c.get("mch_billno"), 1, 28):
		return v2Fail("mch_billno参数格式错误")
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	x := e.extra()
	k := c.m.cfg.MchID + "/" + c.get("mch_billno")
	r := x.redPacks[k]
	if r == nil {
		r = &v2RedPack{mchID: c.m.cfg.MchID, billNo: c.get("mch_billno"), detailID: x.nextID("1000041701", c.now),
			openID: c.get("re_openid"), wishing: c.get("wishing"), actName: c.get("act_name"), remark: c.get("remark"),
			sendType: sendType, amount: amount, at: c.now}
		x.redPacks[k] = r
	} else if r.amount != amount || r.openID != c.get("re_openid") {
		return v2Business(&payError{fasthttp.StatusBadRequest, "PARAM_ERROR", "PARAM_ERROR", "商户单号重复,且参数与原单不一致"})
	}
	fields := []v2Field{
		{"mch_billno", r.billNo}, {"re_openid", r.openID}, {"total_amount", strconv.FormatInt(r.amount, 10)},
		{"send_listid", r.detailID},
	}
	if sendType == "MINI_PROGRAM" {
		fields = append(fields, v2Field{"package", "sendid=" + r.detailID + "&ver=8&sign=" + randomNonce(16) + "&mchid=" + r.mchID + "&appid=" + c.m.cfg.AppID})
	}
	return v2OK(v2Params(fields)...)
}

// v2GetHBInfo answers /mmpaymkttransfers/gethbinfo (bill_type MCHT) with the packet and its
// hblist of receivers, a nested element as WeChat Pay sends it.
func (e *Emulator) v2GetHBInfo(c *v2Call) *v2Result {
	if k := v2Required(c, "mch_billno", "bill_type"); k != "" {
		return v2Fail("缺少参数" + k)
	}
	if c.get("bill_type") != "MCHT" {
		return v2Fail("bill_type参数错误")
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	r := e.extra().redPacks[c.m.cfg.MchID+"/"+c.get("mch_billno")]
	if r == nil {
		return v2Business(errV2NotFound)
	}
	amount := strconv.FormatInt(r.amount, 10)
	res := v2OK(v2Params([]v2Field{
		{"mch_billno", r.billNo}, {"detail_id", r.detailID}, {"status", "RECEIVED"}, {"send_type", r.sendType},
		{"hb_type", "NORMAL"}, {"total_num", "1"}, {"total_amount", amount}, {"send_time", billTime(r.at)},
		{"wishing", r.wishing}, {"remark", r.remark}, {"act_name", r.actName},
	})...)
	res.nested = fmt.Appendf(nil, "<hblist><hbinfo><openid><![CDATA[%s]]></openid><amount>%s</amount><rcv_time><![CDATA[%s]]></rcv_time></hbinfo></hblist>",
		r.openID, amount, billTime(r.at))
	return res
}

// v2Field is one answer field, for compact lists.
type v2Field struct{ k, v string }

// v2Params turns fields into parameters.
func v2Params(fields []v2Field) []signer.Param {
	out := make([]signer.Param, len(fields))
	for i, f := range fields {
		out[i] = param(f.k, f.v)
	}
	return out
}
