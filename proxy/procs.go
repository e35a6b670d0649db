package proxy

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// procsIdleAfter is how long GOMAXPROCS stays raised after the last work that needed it: long
// enough that a steady trickle keeps it up (each change stops the world for a moment), short
// enough that a load that no longer needs the extra Ps soon stops paying for them.
const procsIdleAfter = 10 * time.Second

// procsGovernor raises GOMAXPROCS while RSA signatures run beside work that must not wait for
// them, and lowers it again once no such work came for idleAfter. RSA signatures on every P leave
// no P to poll the network and answer: a request that needs no signature (xpay, callbacks, the
// other WeChat APIs) or a 503 refusing one would wait for a signature to end, or for the
// scheduler to preempt it. Extra Ps beyond the cores fix that, but they cost scheduler wake-ups
// on every request: about 8% more CPU per xpay request at half load, and 5–7% more per JSAPI
// order when signing saturates the cores (bench/optimisations.md). So signatures alone keep
// GOMAXPROCS where it is; it rises when such work arrives while signatures run (demand). A nil
// governor does nothing.
type procsGovernor struct {
	base, raised int
	idleAfter    time.Duration
	log          *slog.Logger

	active     atomic.Int64 // signatures running
	up         atomic.Bool  // GOMAXPROCS is raised
	lastDemand atomic.Int64 // when work last needed the extra Ps, in Unix nanoseconds

	mu      sync.Mutex // serialises changes of GOMAXPROCS, stopped and timer
	stopped bool
	timer   *time.Timer
	// changed, when set, is called (under mu) after each change of GOMAXPROCS; for tests.
	changed func(n int)
}

// newProcsGovernor returns a governor that raises GOMAXPROCS from its current value to raised
// when needed, or nil when raised is no more than the current value.
func newProcsGovernor(raised int, log *slog.Logger) *procsGovernor {
	base := runtime.GOMAXPROCS(0)
	if raised <= base {
		return nil
	}
	return &procsGovernor{base: base, raised: raised, idleAfter: procsIdleAfter, log: log}
}

// begin marks a signature starting.
func (p *procsGovernor) begin() {
	if p != nil {
		p.active.Add(1)
	}
}

// end marks a signature finished.
func (p *procsGovernor) end() {
	if p != nil {
		p.active.Add(-1)
	}
}

// demand reports work that must not wait behind the signatures: a request that needs no RSA
// signature, or a 503 refusing one. While signatures run, GOMAXPROCS rises (if it is down) and
// stays up for idleAfter from the last demand. Without signatures running it costs one atomic
// load.
func (p *procsGovernor) demand() {
	if p == nil || p.active.Load() < 1 {
		return
	}
	p.lastDemand.Store(time.Now().UnixNano())
	if p.up.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.up.Load() || p.stopped {
		return
	}
	p.set(p.raised)
	p.up.Store(true)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idleAfter, p.settle)
	} else {
		p.timer.Reset(p.idleAfter)
	}
}

// settle lowers GOMAXPROCS once no demand came for idleAfter, or looks again when that will be.
func (p *procsGovernor) settle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || !p.up.Load() {
		return
	}
	if since := time.Duration(time.Now().UnixNano() - p.lastDemand.Load()); since < p.idleAfter {
		p.timer.Reset(p.idleAfter - since)
		return
	}
	p.set(p.base)
	p.up.Store(false)
}

// stop ends the countdown and leaves GOMAXPROCS where it is.
func (p *procsGovernor) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.timer != nil {
		p.timer.Stop()
	}
}

func (p *procsGovernor) set(n int) {
	runtime.GOMAXPROCS(n)
	p.log.Debug("GOMAXPROCS changed: work that needs no signature came while RSA signatures run, or that work stopped", "gomaxprocs", n, "signing", p.active.Load())
	if p.changed != nil {
		p.changed(n)
	}
}
