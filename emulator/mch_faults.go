package emulator

import "github.com/valyala/fasthttp"

// applyMchFaults is applyFaults for WeChat Pay paths: the same latency, hang, close and HTTP 500
// faults, but a "system_busy" fault answers in the protocol of the path — APIv3: a signed 500
// {"code":"SYSTEM_ERROR"}; APIv2: return_code FAIL. It reports whether the request should be
// processed normally.
func (e *Emulator) applyMchFaults(ctx *fasthttp.RequestCtx, api mchAPI) bool {
	return e.applyFaultsWith(ctx, func() {
		if api == mchV3 {
			e.writeV3Error(ctx, e.merchantOfHeader(ctx), errV3System)
		} else {
			writeV2Fail(ctx, v2MsgSystemBusy)
		}
	})
}
