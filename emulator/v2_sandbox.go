package emulator

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// The APIv2 sandbox (wechatpay.md §7.8): /sandboxnew/pay/getsignkey hands out the merchant's
// sandbox key, and every other /sandboxnew/ endpoint is the production one signed with it.

const (
	sandboxPrefix      = "/sandboxnew/"
	sandboxSignKeyPath = "/sandboxnew/pay/getsignkey"
)

// sandboxKey is the merchant's sandbox key: 32 hex digits derived from its APIv2 key and the
// number of rotations, so that it stays the same across emulator restarts as WeChat Pay's does
// across calls.
func (e *Emulator) sandboxKey(m *merchantState) string {
	e.mch.mu.Lock()
	n := e.extra().sandboxRotations[m.cfg.MchID]
	e.mch.mu.Unlock()
	sum := md5.Sum(fmt.Appendf(nil, "wxgate-emulator-sandbox\x00%s\x00%d", m.cfg.APIv2Key, n))
	return hex.EncodeToString(sum[:])
}

// sandboxV2Key is the sandbox key ready to sign and verify; nil without APIv2.
func (e *Emulator) sandboxV2Key(m *merchantState) *signer.V2Key {
	if m.cfg.APIv2Key == "" {
		return nil
	}
	return signer.NewV2Key(e.sandboxKey(m))
}

// RotateSandboxKey gives merchant mchID a new APIv2 sandbox key: calls signed with the old one
// fail their sign check until getsignkey is called again.
func (e *Emulator) RotateSandboxKey(mchID string) {
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	e.extra().sandboxRotations[mchID]++
}

// v2GetSignKey answers /sandboxnew/pay/getsignkey: mch_id and nonce_str, MD5-signed with the
// real APIv2 key; the answer (unsigned) carries sandbox_signkey.
func (e *Emulator) v2GetSignKey(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		writeV2Fail(ctx, v2MsgPost)
		return
	}
	params, err := signer.ParseXML(ctx.PostBody())
	if err != nil {
		writeV2Fail(ctx, v2MsgXML)
		return
	}
	mchID, _ := signer.ParamValue(params, "mch_id")
	m := e.merchant(mchID)
	if m == nil {
		writeV2Fail(ctx, v2MsgMchID)
		return
	}
	if m.v2 == nil || m.v2.Verify(signer.V2SignMD5, params) != nil {
		writeV2Fail(ctx, v2MsgSign)
		return
	}
	if nonce, _ := signer.ParamValue(params, "nonce_str"); nonce == "" {
		writeV2Fail(ctx, "缺少参数nonce_str")
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(v2ContentType)
	ctx.SetBody(signer.AppendXML(nil, []signer.Param{
		param("return_code", "SUCCESS"), param("return_msg", "ok"),
		param("mch_id", m.cfg.MchID), param("sandbox_signkey", e.sandboxKey(m)),
	}))
}

// writeV2Unsigned writes the answer of an endpoint WeChat Pay does not sign: return_code
// SUCCESS, the endpoint's appid and merchant id fields, result_code and its fields, no sign.
func writeV2Unsigned(ctx *fasthttp.RequestCtx, c *v2Call, res *v2Result) {
	appIDField, mchIDField := c.route.fields()
	params := []signer.Param{param("return_code", "SUCCESS"), param("return_msg", "")}
	if appIDField != "-" {
		params = append(params, param(appIDField, c.m.cfg.AppID))
	}
	params = append(params, param(mchIDField, c.m.cfg.MchID))
	if res.fail != nil {
		params = append(params, param("result_code", "FAIL"), param("err_code", res.fail.v2Code), param("err_code_des", res.fail.msg))
	} else {
		params = append(params, param("result_code", "SUCCESS"))
		for _, p := range res.fields {
			if p.Value != "" {
				params = append(params, p)
			}
		}
	}
	body := signer.AppendXML(nil, params)
	if len(res.nested) > 0 && res.fail == nil {
		const end = "</xml>"
		body = append(append(body[:len(body)-len(end)], res.nested...), end...)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(v2ContentType)
	ctx.SetBody(body)
}
