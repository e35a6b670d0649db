package emulator

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// v2ControlPrefix starts the APIv2 control endpoints:
//
//	POST /_emulator/pay/legacy/tamper?mode=&n=        forges the next n signed APIv2 answers (TamperV2Next)
//	POST /_emulator/pay/legacy/sandbox/rotate?mchid=  gives the merchant a new sandbox key (RotateSandboxKey)
const v2ControlPrefix = mchControlPrefix + "legacy/"

// v2Tampers are the forgeries the tamper endpoint accepts.
var v2Tampers = map[V2Tamper]bool{
	V2TamperWrongKey: true, V2TamperField: true, V2TamperSignStrip: true, V2TamperFailNoSign: true, V2TamperFailFields: true,
}

// serveV2Control answers the APIv2 control endpoints (POST already checked).
func (e *Emulator) serveV2Control(ctx *fasthttp.RequestCtx, path string) {
	q := ctx.QueryArgs()
	switch path {
	case v2ControlPrefix + "tamper":
		mode := V2Tamper(q.Peek("mode"))
		n := 1
		if raw := q.Peek("n"); len(raw) > 0 {
			v, err := strconv.Atoi(string(raw))
			if err != nil || v < 0 {
				writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: "n must be an integer >= 0"})
				return
			}
			n = v
		}
		if !v2Tampers[mode] {
			writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: "mode must be wrong_key, field, sign_strip, fail_no_sign or fail_fields"})
			return
		}
		e.TamperV2Next(mode, n)
		writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: true, N: &n})
	case v2ControlPrefix + "sandbox/rotate":
		mchID := string(q.Peek("mchid"))
		if e.merchant(mchID) == nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, &payControlAnswer{Error: "mchid names no merchant"})
			return
		}
		e.RotateSandboxKey(mchID)
		writeJSON(ctx, fasthttp.StatusOK, &payControlAnswer{OK: true})
	default:
		writeControlError(ctx, fasthttp.StatusNotFound, "unknown control path "+path)
	}
}
