package signing

import (
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// procsIdleAfter is how long signing must have been idle before GOMAXPROCS goes back down: long
// enough that a steady trickle of orders keeps it up (each change stops the world for a moment),
// short enough that an HMAC-only load soon stops paying for the extra Ps.
const procsIdleAfter = 10 * time.Second

// Governor raises GOMAXPROCS while RSA signatures run and lowers it again once signing has
// been idle for idleAfter. Signatures on every P would leave no P to poll the network and
// answer (503s included), so they need Ps beyond the cores; without signatures those extra Ps
// only add scheduler wake-ups, measured at about 8% more CPU per xpay request at half load
// (bench/optimisations.md). A nil governor does nothing.
type Governor struct {
	base, raised int
	idleAfter    time.Duration
	log          *slog.Logger

	mu      sync.Mutex
	active  int  // signatures running
	up      bool // GOMAXPROCS is raised
	stopped bool
	timer   *time.Timer
	// changed, when set, is called (under mu) after each change of GOMAXPROCS; for tests.
	changed func(n int)
}

// NewGovernor returns a governor that raises GOMAXPROCS from its current value to raised
// while signatures run, or nil when raised is no more than the current value.
func NewGovernor(raised int, log *slog.Logger) *Governor {
	base := runtime.GOMAXPROCS(0)
	if raised <= base {
		return nil
	}
	return &Governor{base: base, raised: raised, idleAfter: procsIdleAfter, log: log}
}

// begin marks a signature starting, raising GOMAXPROCS first if it is down.
func (p *Governor) begin() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active++
	if p.timer != nil {
		p.timer.Stop()
	}
	if !p.up && !p.stopped {
		p.set(p.raised)
		p.up = true
	}
}

// end marks a signature finished; the last one running starts the idle countdown.
func (p *Governor) end() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active--
	if p.active > 0 || p.stopped {
		return
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idleAfter, p.settle)
	} else {
		p.timer.Reset(p.idleAfter)
	}
}

// settle lowers GOMAXPROCS if no signature is running. A signature that began after the timer
// fired holds it up: settle then finds it active and leaves GOMAXPROCS as it is.
func (p *Governor) settle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active == 0 && p.up {
		p.set(p.base)
		p.up = false
	}
}

// Stop ends the countdown and leaves GOMAXPROCS where it is.
func (p *Governor) Stop() {
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

func (p *Governor) set(n int) {
	runtime.GOMAXPROCS(n)
	p.log.Debug("GOMAXPROCS changed with the RSA signing load", "gomaxprocs", n, "signing", p.active > 0)
	if p.changed != nil {
		p.changed(n)
	}
}
