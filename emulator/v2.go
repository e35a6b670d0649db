package emulator

import (
	"bytes"
	"crypto/x509"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// WeChat Pay APIv2 (legacy XML, wechatpay.md §7): request checks and answers. The endpoints are
// in v2_orders.go, v2_refund.go and v2_bill.go.

// v2ContentType is the Content-Type of APIv2 answers.
const v2ContentType = "text/xml; charset=utf-8"

// return_msg texts of APIv2 communication failures (return_code FAIL). They are unsigned.
const (
	v2MsgSign       = "签名错误"
	v2MsgCert       = "证书错误"
	v2MsgXML        = "XML格式错误"
	v2MsgPost       = "请使用post方法"
	v2MsgMchID      = "商户号mch_id不存在"
	v2MsgAppID      = "appid和mch_id不匹配"
	v2MsgSignType   = "sign_type参数错误"
	v2MsgNoURL      = "接口不存在"
	v2MsgSystemBusy = "系统繁忙，请稍后再试"
)

// v2Call is one verified APIv2 request handed to an endpoint handler.
type v2Call struct {
	m        *merchantState
	route    *v2Route
	params   []signer.Param
	signType string        // the request's sign type; the answer is signed the same way
	key      *signer.V2Key // the key the request was signed with: the APIv2 key or the sandbox key
	now      time.Time
}

// get returns a request parameter ("" when absent).
func (c *v2Call) get(key string) string {
	v, _ := signer.ParamValue(c.params, key)
	return v
}

// v2Result is what an APIv2 handler answers: the fields of a successful answer, a business
// failure (result_code FAIL), a parameter problem (return_code FAIL), or a file.
type v2Result struct {
	fields   []signer.Param // result_code SUCCESS: the endpoint's fields
	fail     *payError      // result_code FAIL with err_code and err_code_des
	msg      string         // return_code FAIL with this return_msg
	code     string         // error_code next to msg (downloadbill)
	file     []byte         // a file answer (downloadbill), unsigned
	fileType string
	nested   []byte // raw XML elements written after the fields (gethbinfo's hblist); unsigned answers only
}

// v2Handler implements one APIv2 endpoint.
type v2Handler func(e *Emulator, c *v2Call) *v2Result

// v2Route is one APIv2 endpoint.
type v2Route struct {
	cert   bool // requires the merchant client certificate
	handle v2Handler
	// unsigned: WeChat Pay answers without sign (payouts, red packets, files).
	unsigned bool
	// signType, when set, is the only sign type the endpoint takes (sign_type must name it when
	// it is HMAC-SHA256).
	signType string
	// appIDField and mchIDField name the appid and merchant id fields ("" means appid, mch_id);
	// appIDField "-" means the endpoint takes no appid.
	appIDField, mchIDField string
	noNonce                bool // the endpoint takes no nonce_str (papay contract calls)
}

// fields returns the appid and merchant id field names of r.
func (r *v2Route) fields() (appID, mchID string) {
	appID, mchID = r.appIDField, r.mchIDField
	if appID == "" {
		appID = "appid"
	}
	if mchID == "" {
		mchID = "mch_id"
	}
	return appID, mchID
}

// v2Routes lists the APIv2 endpoints the emulator serves (wechatpay.md §7.3 to §7.8). Under
// /sandboxnew/ the same endpoints answer, signed with the sandbox key (v2_sandbox.go).
var v2Routes = map[string]*v2Route{
	"/pay/unifiedorder":     {handle: (*Emulator).v2UnifiedOrder},
	"/pay/orderquery":       {handle: (*Emulator).v2OrderQuery},
	"/pay/closeorder":       {handle: (*Emulator).v2CloseOrder},
	"/secapi/pay/refund":    {cert: true, handle: (*Emulator).v2Refund},
	"/pay/refundquery":      {handle: (*Emulator).v2RefundQuery},
	"/pay/downloadbill":     {handle: (*Emulator).v2DownloadBill, unsigned: true},
	"/pay/downloadfundflow": {cert: true, handle: (*Emulator).v2DownloadFundFlow, unsigned: true, signType: signer.V2SignHMACSHA256},
	"/pay/contractorder":    {handle: (*Emulator).v2ContractOrder},
	"/pay/pappayapply":      {handle: (*Emulator).v2PapPayApply},
	"/papay/querycontract":  {handle: (*Emulator).v2QueryContract, noNonce: true},
	"/papay/deletecontract": {handle: (*Emulator).v2DeleteContract, noNonce: true, signType: signer.V2SignMD5},
	"/mmpaymkttransfers/promotion/transfers": {cert: true, unsigned: true, handle: (*Emulator).v2Transfer,
		appIDField: "mch_appid", mchIDField: "mchid"},
	"/mmpaymkttransfers/gettransferinfo":   {cert: true, unsigned: true, handle: (*Emulator).v2GetTransferInfo},
	"/mmpaymkttransfers/sendredpack":       {cert: true, unsigned: true, handle: (*Emulator).v2SendRedPack, appIDField: "wxappid"},
	"/mmpaymkttransfers/sendminiprogramhb": {cert: true, unsigned: true, handle: (*Emulator).v2SendMiniProgramHB, appIDField: "wxappid"},
	"/mmpaymkttransfers/gethbinfo":         {cert: true, unsigned: true, handle: (*Emulator).v2GetHBInfo},
}

// serveV2 answers one APIv2 request after WeChat Pay's checks: POST, client certificate where
// the endpoint needs it (TLS with a certificate first, then that it is the merchant's),
// well-formed XML, known merchant id, sign with sign_type (MD5 by default; the endpoint's only
// type where it has one) made with the APIv2 key or, under /sandboxnew/, the sandbox key, appid
// bound to the merchant, nonce_str.
func (e *Emulator) serveV2(ctx *fasthttp.RequestCtx, path string) {
	sandbox := strings.HasPrefix(path, sandboxPrefix)
	switch path {
	case sandboxSignKeyPath:
		e.v2GetSignKey(ctx)
		return
	case entrustWebPath:
		e.v2EntrustWeb(ctx)
		return
	}
	if sandbox {
		path = path[len(sandboxPrefix)-1:]
	}
	route, ok := v2Routes[path]
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		writeV2FailBody(ctx, v2MsgNoURL, "")
		return
	}
	if !ctx.IsPost() {
		writeV2Fail(ctx, v2MsgPost)
		return
	}
	peer := peerCertificate(ctx)
	if route.cert && peer == nil {
		writeV2Fail(ctx, v2MsgCert)
		return
	}
	params, err := signer.ParseXML(ctx.PostBody())
	if err != nil {
		writeV2Fail(ctx, v2MsgXML)
		return
	}
	appIDField, mchIDField := route.fields()
	mchID, _ := signer.ParamValue(params, mchIDField)
	m := e.merchant(mchID)
	if m == nil {
		writeV2Fail(ctx, v2MsgMchID)
		return
	}
	if route.cert && (m.cfg.ClientCert == nil || !bytes.Equal(peer.Raw, m.cfg.ClientCert.Raw)) {
		writeV2Fail(ctx, v2MsgCert)
		return
	}
	signType, _ := signer.ParamValue(params, "sign_type")
	if signType == "" {
		signType = signer.V2SignMD5
	}
	if signType != signer.V2SignMD5 && signType != signer.V2SignHMACSHA256 || route.signType != "" && signType != route.signType {
		writeV2Fail(ctx, v2MsgSignType)
		return
	}
	key := m.v2
	if sandbox && key != nil {
		key = e.sandboxV2Key(m)
	}
	if key == nil || key.Verify(signType, params) != nil {
		writeV2Fail(ctx, v2MsgSign)
		return
	}
	if appID, _ := signer.ParamValue(params, appIDField); appID != m.cfg.AppID {
		writeV2Fail(ctx, v2MsgAppID)
		return
	}
	switch nonce, _ := signer.ParamValue(params, "nonce_str"); {
	case route.noNonce:
	case nonce == "":
		writeV2Fail(ctx, "缺少参数nonce_str")
		return
	case len(nonce) > 32:
		writeV2Fail(ctx, "nonce_str参数长度有误")
		return
	}
	c := &v2Call{m: m, route: route, params: params, signType: signType, key: key, now: e.now()}
	res := route.handle(e, c)
	switch {
	case res.file != nil:
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType(res.fileType)
		ctx.SetBody(res.file)
	case res.msg != "":
		writeV2FailBody(ctx, res.msg, res.code)
	case route.unsigned:
		writeV2Unsigned(ctx, c, res)
	default:
		e.writeV2Answer(ctx, c, res)
	}
}

// peerCertificate returns the client certificate of a TLS request, or nil.
func peerCertificate(ctx *fasthttp.RequestCtx) *x509.Certificate {
	st := ctx.TLSConnectionState()
	if st == nil || len(st.PeerCertificates) == 0 {
		return nil
	}
	return st.PeerCertificates[0]
}

// writeV2Fail answers return_code FAIL with msg (HTTP 200, unsigned, as WeChat Pay does).
func writeV2Fail(ctx *fasthttp.RequestCtx, msg string) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	writeV2FailBody(ctx, msg, "")
}

// writeV2FailBody writes a return_code FAIL document, with error_code when code is set.
func writeV2FailBody(ctx *fasthttp.RequestCtx, msg, code string) {
	params := []signer.Param{{Key: "return_code", Value: "FAIL"}, {Key: "return_msg", Value: msg}}
	if code != "" {
		params = append(params, signer.Param{Key: "error_code", Value: code})
	}
	ctx.SetContentType(v2ContentType)
	ctx.SetBody(signer.AppendXML(nil, params))
}

// writeV2Answer writes a signed return_code SUCCESS answer: result_code SUCCESS with the
// endpoint's fields, or FAIL with err_code and err_code_des. Empty fields are left out.
func (e *Emulator) writeV2Answer(ctx *fasthttp.RequestCtx, c *v2Call, res *v2Result) {
	params := []signer.Param{
		{Key: "return_code", Value: "SUCCESS"},
		{Key: "return_msg", Value: "OK"},
		{Key: "appid", Value: c.m.cfg.AppID},
		{Key: "mch_id", Value: c.m.cfg.MchID},
		{Key: "nonce_str", Value: randomNonce(16)},
	}
	if res.fail != nil {
		params = append(params,
			signer.Param{Key: "result_code", Value: "FAIL"},
			signer.Param{Key: "err_code", Value: res.fail.v2Code},
			signer.Param{Key: "err_code_des", Value: res.fail.msg})
	} else {
		params = append(params, signer.Param{Key: "result_code", Value: "SUCCESS"})
		for _, p := range res.fields {
			if p.Value != "" {
				params = append(params, p)
			}
		}
	}
	// AppendSign sorts its argument; the answer keeps WeChat Pay's field order.
	sign, err := c.key.AppendSign(nil, c.signType, slices.Clone(params))
	if err != nil {
		writeV2Fail(ctx, v2MsgSystemBusy)
		return
	}
	params = append(params, signer.Param{Key: "sign", Value: string(sign)})
	params = e.tamperV2(c, params)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(v2ContentType)
	ctx.SetBody(signer.AppendXML(nil, params))
}

// v2Fail is a return_code FAIL result for a parameter problem.
func v2Fail(msg string) *v2Result { return &v2Result{msg: msg} }

// v2Business is a result_code FAIL result.
func v2Business(pe *payError) *v2Result { return &v2Result{fail: pe} }

// v2OK is a result_code SUCCESS result with fields.
func v2OK(fields ...signer.Param) *v2Result { return &v2Result{fields: fields} }

// param builds a signer.Param.
func param(key, value string) signer.Param { return signer.Param{Key: key, Value: value} }
