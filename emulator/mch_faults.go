package emulator

import (
	"net"

	"github.com/valyala/fasthttp"
)

// applyMchFaults is applyFaults for WeChat Pay paths: the same latency, hang, close and HTTP 500
// faults, but a "system_busy" fault answers in the protocol of the path — APIv3: a signed 500
// {"code":"SYSTEM_ERROR"}; APIv2: return_code FAIL. It reports whether the request should be
// processed normally.
func (e *Emulator) applyMchFaults(ctx *fasthttp.RequestCtx, api mchAPI) bool {
	f, fail := e.takeFault()
	if fail && f.Mode == FailHang {
		d := f.Latency
		if d <= 0 {
			d = defaultHang
		}
		e.hold(d)
		return true
	}
	if f.Latency > 0 {
		e.hold(f.Latency)
	}
	if !fail {
		return true
	}
	switch f.Mode {
	case FailSystemBusy:
		if api == mchV3 {
			e.writeV3Error(ctx, e.merchantOfHeader(ctx), errV3System)
		} else {
			writeV2Fail(ctx, v2MsgSystemBusy)
		}
	case FailClose:
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) { _ = c.Close() })
	default:
		ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
	}
	return false
}
