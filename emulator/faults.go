package emulator

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// FailMode is how a request chosen by Faults.FailNext fails.
type FailMode string

// Failure modes.
const (
	FailHTTP500    FailMode = "http500"     // HTTP 500 with a plain-text body (also the zero value)
	FailSystemBusy FailMode = "system_busy" // HTTP 200 {"errcode":-1,"errmsg":"system error rid: ..."}
	FailClose      FailMode = "close"       // the connection is closed without an answer
	FailHang       FailMode = "hang"        // the request is held for Latency (10 s when zero), then processed normally
)

// defaultHang is how long FailHang holds a request when Faults.Latency is zero.
const defaultHang = 10 * time.Second

// Faults configures injected faults. They apply to API paths only, never to /_emulator/.
type Faults struct {
	// Latency delays every API request by this much before it is processed; with FailHang it is
	// instead the time a failing request is held.
	Latency time.Duration
	// FailNext is the number of coming API requests that fail; each one counts it down. A
	// negative value fails every request until the faults are replaced.
	FailNext int
	// Mode is how those requests fail; the zero value means FailHTTP500.
	Mode FailMode
}

// valid reports whether m is a known mode (or the zero value).
func (m FailMode) valid() bool {
	switch m {
	case "", FailHTTP500, FailSystemBusy, FailClose, FailHang:
		return true
	}
	return false
}

// SetFaults replaces the injected faults. Faults{} turns them off. An unknown Mode fails like
// FailHTTP500.
func (e *Emulator) SetFaults(f Faults) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	e.faults = f
}

// currentFaults returns the injected faults.
func (e *Emulator) currentFaults() Faults {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.faults
}

// takeFault decides whether this request fails, counting FailNext down.
func (e *Emulator) takeFault() (Faults, bool) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	f := e.faults
	switch {
	case f.FailNext > 0:
		e.faults.FailNext--
		return f, true
	case f.FailNext < 0:
		return f, true
	}
	return f, false
}

// applyFaults delays or fails an api.weixin.qq.com request. It reports whether the request should
// be processed normally.
func (e *Emulator) applyFaults(ctx *fasthttp.RequestCtx) bool {
	return e.applyFaultsWith(ctx, func() { writeError(ctx, e.now(), errSystemBusy) })
}

// applyFaultsWith delays or fails a request; systemBusy writes the protocol's "system busy"
// answer. It reports whether the request should be processed normally.
func (e *Emulator) applyFaultsWith(ctx *fasthttp.RequestCtx, systemBusy func()) bool {
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
		systemBusy()
	case FailClose:
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) { _ = c.Close() })
	default:
		ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
	}
	return false
}

// hold waits for d, or until Shutdown.
func (e *Emulator) hold(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-e.done:
	}
}
