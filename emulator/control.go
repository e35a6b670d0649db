package emulator

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// controlPrefix starts every path of the emulator's own control surface.
const controlPrefix = "/_emulator/"

// controlAnswer is the JSON answer of the control endpoints.
type controlAnswer struct {
	OK     bool          `json:"ok"`
	Error  string        `json:"error,omitempty"`
	Status string        `json:"status,omitempty"`
	Faults *faultsConfig `json:"faults,omitempty"`
}

// faultsConfig is the JSON form of Faults used by POST/GET /_emulator/faults.
type faultsConfig struct {
	LatencyMS int64    `json:"latency_ms"`
	FailNext  int      `json:"fail_next"`
	Mode      FailMode `json:"mode"`
}

// serveControl answers the /_emulator/ endpoints:
//
//	GET  /_emulator/healthz
//	POST /_emulator/tokens/invalidate?appid=
//	POST /_emulator/tokens/expire?appid=
//	POST /_emulator/faults   {"latency_ms":0,"fail_next":0,"mode":"http500|system_busy|close|hang"}
//	GET  /_emulator/faults
//	POST /_emulator/xpay/request_virtual_payment
//	POST /_emulator/xpay/ios_refund_query?appid=   (notify_pushreply.go)
//	POST /_emulator/minigame/request_midas_payment_game_item   (game_client.go)
//	POST /_emulator/minigame/request_midas_payment
//	GET  /_emulator/files/<name>   (download URLs handed out by download_bill and friends)
//	GET  /_emulator/deliveries     (notify_control.go)
//	POST /_emulator/notify/resend?index=
//	POST /_emulator/gc   (collect garbage now: a benchmark does it between runs, see serveGC)
func (e *Emulator) serveControl(ctx *fasthttp.RequestCtx, path string) {
	switch path {
	case controlPrefix + "healthz":
		writeJSON(ctx, fasthttp.StatusOK, &controlAnswer{OK: true, Status: "ok"})
	case controlPrefix + "gc":
		serveGC(ctx)
	case controlPrefix + "tokens/invalidate":
		e.serveTokenControl(ctx, e.InvalidateTokens)
	case controlPrefix + "tokens/expire":
		e.serveTokenControl(ctx, e.ExpireTokens)
	case controlPrefix + "faults":
		e.serveFaults(ctx)
	case controlPrefix + "xpay/request_virtual_payment":
		e.serveClientPayment(ctx)
	case controlPrefix + "xpay/ios_refund_query":
		e.serveIOSRefundQuery(ctx) // notify_pushreply.go
	case controlPrefix + "minigame/request_midas_payment_game_item":
		e.serveGameItemPayment(ctx)
	case controlPrefix + "minigame/request_midas_payment":
		e.serveMidasPayment(ctx)
	case controlPrefix + "deliveries":
		e.serveDeliveries(ctx)
	case controlPrefix + "notify/resend":
		e.serveResend(ctx)
	default:
		if name, ok := strings.CutPrefix(path, controlPrefix+"files/"); ok {
			e.serveFile(ctx, name)
			return
		}
		writeControlError(ctx, fasthttp.StatusNotFound, "unknown control path "+path)
	}
}

// serveGC runs a full garbage collection and answers with the live heap after it. WeChat's
// servers do not share the machine of the code calling them; the emulator does, and the
// collections of its in-memory state (every order it was sent) would otherwise land in the middle
// of whatever a benchmark measures. The benchmark runs it with GOGC=off (and a memory limit) and
// asks for a collection here before each measured run.
func serveGC(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	writeJSON(ctx, fasthttp.StatusOK, &controlAnswer{OK: true, Status: fmt.Sprintf("collected; %.1f MB of heap live", float64(m.HeapAlloc)/(1<<20))})
}

// writeControlError answers a control request with {"ok":false,"error":msg}.
func writeControlError(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeJSON(ctx, status, &controlAnswer{Error: msg})
}

// serveTokenControl applies op to the app named by the appid query parameter.
func (e *Emulator) serveTokenControl(ctx *fasthttp.RequestCtx, op func(appID string)) {
	if !ctx.IsPost() {
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	appID := string(ctx.QueryArgs().Peek("appid"))
	if e.apps[appID] == nil {
		writeControlError(ctx, fasthttp.StatusNotFound, "unknown appid "+appID)
		return
	}
	op(appID)
	writeJSON(ctx, fasthttp.StatusOK, &controlAnswer{OK: true})
}

// serveFaults sets (POST) or reports (GET) the injected faults.
func (e *Emulator) serveFaults(ctx *fasthttp.RequestCtx) {
	switch {
	case ctx.IsGet():
	case ctx.IsPost():
		var fc faultsConfig
		if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), &fc) != nil {
			writeControlError(ctx, fasthttp.StatusBadRequest, "body must be a JSON object {latency_ms, fail_next, mode}")
			return
		}
		if fc.LatencyMS < 0 || !fc.Mode.valid() {
			writeControlError(ctx, fasthttp.StatusBadRequest, "latency_ms must be >= 0 and mode one of http500, system_busy, close, hang")
			return
		}
		e.SetFaults(Faults{Latency: time.Duration(fc.LatencyMS) * time.Millisecond, FailNext: fc.FailNext, Mode: fc.Mode})
	default:
		writeControlError(ctx, fasthttp.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	f := e.currentFaults()
	writeJSON(ctx, fasthttp.StatusOK, &controlAnswer{OK: true, Faults: &faultsConfig{
		LatencyMS: f.Latency.Milliseconds(), FailNext: f.FailNext, Mode: f.Mode,
	}})
}

// serveFile serves a download URL the emulator handed out: an empty CSV (no records).
func (e *Emulator) serveFile(ctx *fasthttp.RequestCtx, name string) {
	e.mu.Lock()
	found := false
	for _, a := range e.apps {
		if _, ok := a.biz.files[name]; ok {
			found = true
			break
		}
	}
	e.mu.Unlock()
	if !found {
		writeControlError(ctx, fasthttp.StatusNotFound, "unknown file "+name)
		return
	}
	ctx.SetContentType("text/csv; charset=utf-8")
	ctx.SetStatusCode(fasthttp.StatusOK)
}
