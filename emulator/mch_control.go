package emulator

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// mchControlPrefix starts the WeChat Pay part of the control surface.
const mchControlPrefix = controlPrefix + "pay/"

// payControlAnswer is the JSON answer of the WeChat Pay control endpoints.
type payControlAnswer struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	ErrMsg   string `json:"errMsg,omitempty"`    // request_payment: what wx.requestPayment reports
	SerialNo string `json:"serial_no,omitempty"` // platform/rotate: the new certificate's serial
	N        *int   `json:"n,omitempty"`         // signtest: probes pending
}

// serveMchControl answers the WeChat Pay control endpoints:
//
//	POST /_emulator/pay/request_payment   {"appId","timeStamp","nonceStr","package","signType","paySign"}
//	POST /_emulator/pay/request_merchant_transfer  {"mchId","appId","package","openId"} (mch_receipt.go)
//	POST /_emulator/pay/platform/rotate   -> {"ok":true,"serial_no":"..."}
//	POST /_emulator/pay/partner/sub_merchant?sp_mchid=&sub_mchid=&sub_appid=   (mch_partner.go)
//	POST /_emulator/pay/signtest?n=       (n defaults to 1)
//	POST /_emulator/pay/merchant/certificate?mchid=           body: the new API certificate (PEM) -> {"ok":true,"serial_no":"..."}
//	POST /_emulator/pay/merchant/revoke?mchid=&serial_no=     stops accepting that certificate
//	POST /_emulator/pay/notify  {"kind","mchid","url","event_type","fields"} (notify_v3_kinds.go)
//	POST /_emulator/pay/legacy/...                            the APIv2 endpoints (v2_control.go)
func (e *Emulator) serveMchControl(ctx *fasthttp.RequestCtx, path string) {
	if !ctx.IsPost() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	if strings.HasPrefix(path, v2ControlPrefix) {
		e.serveV2Control(ctx, path)
		return
	}
	switch path {
	case mchControlPrefix + "request_payment":
		var req RequestPayment
		if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), &req) != nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{
				Error: "body must be a JSON object {appId, timeStamp, nonceStr, package, signType, paySign}",
			})
			return
		}
		msg, ok := e.RequestPaymentClient(req)
		writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: ok, ErrMsg: msg})
	case mchControlPrefix + "request_merchant_transfer":
		e.serveRequestMerchantTransfer(ctx) // mch_receipt.go
	case mchControlPrefix + "partner/sub_merchant":
		e.serveAddSubMerchant(ctx) // mch_partner.go
	case mchControlPrefix + "platform/rotate":
		writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: true, SerialNo: e.RotatePlatformCertificate()})
	case mchControlPrefix + "signtest":
		n := 1
		if raw := ctx.QueryArgs().Peek("n"); len(raw) > 0 {
			v, err := strconv.Atoi(string(raw))
			if err != nil || v < 0 {
				writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: "n must be an integer >= 0"})
				return
			}
			n = v
		}
		e.SendSignTest(n)
		writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: true, N: &n})
	case mchControlPrefix + "merchant/certificate":
		serial, err := e.AddMerchantCertificate(string(ctx.QueryArgs().Peek("mchid")), ctx.PostBody())
		if err != nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: err.Error()})
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: true, SerialNo: serial})
	case mchControlPrefix + "merchant/revoke":
		q := ctx.QueryArgs()
		if err := e.RevokeMerchantCertificate(string(q.Peek("mchid")), string(q.Peek("serial_no"))); err != nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: err.Error()})
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: true})
	case mchControlPrefix + "notify":
		e.serveNotifyControl(ctx)
	default:
		writeControlError(ctx, fasthttp.StatusNotFound, "unknown control path "+path)
	}
}
