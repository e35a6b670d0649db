package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/bench/procstat"
)

var errRefused = errors.New("refused")

// allocsUnknown is the allocations-per-request cell when the proxy does not report them.
const allocsUnknown = "n/a¹"

// Column names, in the order they are measured and shown.
const (
	colDirect = "direct"
	colBare   = "bare"
	colWxgate = "wxgate"
	colNginx  = "nginx"
)

// column is one side of a comparison: where the load goes and which process pays for it.
type column struct {
	name  string
	label string // shown instead of name when set (e.g. "wxgate, 64 KB")
	addr  string
	tls   *tls.Config
	pid   int // the proxy process to account; 0 for none (direct)
	// upstream is the emulator's process, accounted too when set: with the harness's own CPU
	// (the load generator) it tells what the shared machine could give the proxy at most.
	upstream int
	// side is another process accounted apart, never in the proxy's CPU: the redis-server of
	// the store scenario (0 for none).
	side int
	// conns overrides the harness's -conns; rate, when positive, paces the run (requests/s).
	conns int
	rate  float64
	tree  bool // account the process and its descendants (nginx's workers)
	skip  string
	build loadgen.Builder
	check loadgen.Checker
	dur   time.Duration // 0: the harness's -duration
	// perRound, when set, gives the Builder of each round (a pool of single-use requests split
	// between the rounds).
	perRound func(round int) loadgen.Builder
	note     string
	// pprof is the proxy's /debug/pprof base, for CPU profiles (-profile); "" for none.
	pprof string
	// metrics is the proxy's Prometheus endpoint (wxgate's admin /metrics), read around the run
	// for allocations per request when it exposes go_memstats_mallocs_total.
	metrics string
}

// row is what one column measured.
type row struct {
	col       column
	res       *loadgen.Result
	cpu       time.Duration // proxy CPU during the run; valid when measured
	measured  bool
	peakRSS   uint64
	err       error
	mallocs   float64 // allocations counted during the run(s)
	allocsSrc string  // "¹" (wxgate's /metrics); "" when unknown
	// signed and signCPU are the RSA signatures wxgate computed during the run(s) and the CPU
	// they took on its signing threads, from its /metrics (0 when it has no such counters).
	signed  float64
	signCPU time.Duration
	rounds  int
	upCPU   time.Duration // the upstream's CPU during the run, when col.upstream is set
	sideCPU time.Duration // the side process's CPU during the run, when col.side is set
	selfCPU time.Duration // the harness's (load generator's) CPU during the run
	// machine is the whole machine's CPU time during the run (every process, the kernel, and
	// the hypervisor's steal), when /proc/stat could be read.
	machine procstat.MachineTimes
}

// allocsReq renders allocations per request.
func (r *row) allocsReq() string {
	if r.allocsSrc == "" || r.res == nil || r.res.Requests == 0 {
		return allocsUnknown
	}
	return fmt.Sprintf("%.1f%s", r.mallocs/float64(r.res.Requests), r.allocsSrc)
}

// readMetrics sets what wxgate's /metrics counted during the run from its readings before
// and after.
func (r *row) readMetrics(before, after map[string]float64) {
	if m0, ok := before[metricMallocs]; ok {
		if m1, ok := after[metricMallocs]; ok {
			r.mallocs, r.allocsSrc = m1-m0, "¹"
		}
	}
	s0, ok0 := before[metricSignatures]
	s1, ok1 := after[metricSignatures]
	c0, ok2 := before[metricSignCPU]
	c1, ok3 := after[metricSignCPU]
	if ok0 && ok1 && ok2 && ok3 {
		r.signed, r.signCPU = s1-s0, time.Duration((c1-c0)*float64(time.Second))
	}
}

// merge adds another round of the same column to r.
func (r *row) merge(o row) {
	switch {
	case o.col.skip != "":
		return
	case r.res == nil || r.err != nil:
		*r = o
		return
	case o.res == nil:
		r.err = o.err
		return
	}
	r.res.Merge(o.res)
	r.cpu += o.cpu
	r.upCPU += o.upCPU
	r.sideCPU += o.sideCPU
	r.selfCPU += o.selfCPU
	r.machine = r.machine.Add(o.machine)
	r.measured = r.measured && o.measured
	r.peakRSS = max(r.peakRSS, o.peakRSS)
	r.mallocs += o.mallocs
	r.signed += o.signed
	r.signCPU += o.signCPU
	if o.allocsSrc != r.allocsSrc {
		r.allocsSrc = ""
	}
	r.rounds++
}

// compare measures cols in turn, -rounds times, interleaved so that a change in the machine's
// load hits every column alike; each column's rounds are added up.
func (h *harness) compare(ctx context.Context, cols []column) []row {
	rows, _ := h.compareRounds(ctx, cols, h.opts.Rounds)
	return rows
}

// roundP99 is one round's p99 of one column, counted from the due time and from the sending;
// ok is false when the round failed or was skipped.
type roundP99 struct {
	due, sent time.Duration
	steal     float64 // the share of the machine's CPU time the hypervisor took during the run
	ok        bool
}

// compareRounds is compare over n rounds that also returns each round's p99 of each column
// (indexed [round][column]), read before the rounds are added up.
func (h *harness) compareRounds(ctx context.Context, cols []column, n int) ([]row, [][]roundP99) {
	rows := make([]row, len(cols))
	var p99s [][]roundP99
	for round := range max(n, 1) {
		this := make([]roundP99, len(cols))
		for i, c := range cols {
			if c.perRound != nil {
				c.build = c.perRound(round)
			}
			r := h.measure(ctx, c)
			if r.res != nil && r.err == nil && r.res.Errors == 0 {
				this[i] = roundP99{due: r.res.Latency.Quantile(0.99), sent: r.res.Service.Quantile(0.99), steal: r.machine.StealShare(), ok: true}
			}
			if round == 0 {
				rows[i] = r
			} else {
				rows[i].merge(r)
			}
		}
		p99s = append(p99s, this)
	}
	return rows, p99s
}

// perReq divides a CPU time by the row's requests, or 0.
func (r *row) perReq(d time.Duration) time.Duration {
	if r.res == nil || r.res.Requests == 0 {
		return 0
	}
	return d / time.Duration(r.res.Requests)
}

// name returns the row's label.
func (r *row) name() string {
	if r.col.label != "" {
		return r.col.label
	}
	return r.col.name
}

// cpuPerReq returns the proxy's CPU time per completed request, or 0.
func (r *row) cpuPerReq() time.Duration {
	if !r.measured || r.res == nil || r.res.Requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.res.Requests)
}

// rps returns the row's requests per second, or 0.
func (r *row) rps() float64 {
	if r.res == nil {
		return 0
	}
	return r.res.RPS()
}

// measure runs the load of c and reads the proxy's CPU and peak memory around it.
func (h *harness) measure(ctx context.Context, c column) row {
	r := row{col: c, rounds: 1}
	if c.skip != "" {
		return r
	}
	h.settle()
	d := c.dur
	if d == 0 {
		d = h.opts.Duration
	}
	read := procstat.Read
	if c.tree {
		read = procstat.ReadTree
	}
	var before procstat.Sample
	if c.pid != 0 {
		resetPeaks(c.pid, c.tree)
		var err error
		if before, err = read(c.pid); err != nil {
			r.err = err
			return r
		}
	}
	var metrics0 map[string]float64
	if c.metrics != "" {
		metrics0 = scrapeAll(c.metrics, runMetrics...)
	}
	var up0, side0, self0 procstat.Sample
	if c.upstream != 0 {
		up0, _ = procstat.Read(c.upstream)
	}
	sideErr := errors.New("no side process")
	if c.side != 0 {
		side0, sideErr = procstat.Read(c.side)
	}
	self0, _ = procstat.Read(os.Getpid())
	machine0, machineErr := procstat.Machine()
	var profiled <-chan error
	if c.pprof != "" && h.opts.Profile != "" {
		profiled = cpuProfile(c.pprof, d, h.opts.Profile, fileName(h.scenario+"-"+r.name()))
	}
	conns := h.opts.Conns
	if c.conns > 0 {
		conns = c.conns
	}
	paced := ""
	if c.rate > 0 {
		paced = fmt.Sprintf(" at %.0f/s", c.rate)
	}
	h.logf("  %-22s %v x %d connections%s ...", r.name(), d, conns, paced)
	res, err := loadgen.Run(ctx, loadgen.Config{
		Addr: c.addr, TLS: c.tls, Conns: conns, Duration: d, Build: c.build, Check: c.check, Rate: c.rate,
	})
	if err != nil {
		r.err = err
		h.logf(" %v\n", err)
		return r
	}
	r.res = res
	if c.pid != 0 {
		after, err := read(c.pid)
		if err != nil {
			r.err = err
		} else {
			r.cpu, r.peakRSS, r.measured = after.CPU-before.CPU, after.PeakRSS, true
		}
	}
	if c.upstream != 0 {
		if up1, err := procstat.Read(c.upstream); err == nil {
			r.upCPU = up1.CPU - up0.CPU
		}
	}
	if sideErr == nil {
		if side1, err := procstat.Read(c.side); err == nil {
			r.sideCPU = side1.CPU - side0.CPU
		}
	}
	if self1, err := procstat.Read(os.Getpid()); err == nil {
		r.selfCPU = self1.CPU - self0.CPU
	}
	if machine1, err := procstat.Machine(); err == nil && machineErr == nil {
		r.machine = machine1.Sub(machine0)
	}
	if c.metrics != "" {
		r.readMetrics(metrics0, scrapeAll(c.metrics, runMetrics...))
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			h.logf("  CPU profile: %v\n", err)
		}
	}
	h.logf(" %8.0f req/s, p99 %v, %d errors\n", res.RPS(), res.Latency.Quantile(0.99).Round(time.Microsecond), res.Errors)
	return r
}

// resetPeaks resets VmHWM of pid (and its descendants) so the reading after a run is that run's
// peak; where the kernel refuses, the peak is the process's lifetime peak.
func resetPeaks(pid int, tree bool) {
	_ = procstat.ResetPeak(pid)
	if tree {
		for _, c := range procstat.Descendants(pid) {
			_ = procstat.ResetPeak(c)
		}
	}
}

// fmtDur prints a latency compactly.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// fmtSigned prints a latency difference with its sign ("+1.20 ms", "−300 µs").
func fmtSigned(d time.Duration) string {
	switch {
	case d < 0:
		return "−" + fmtDur(-d)
	case d == 0:
		return "0 µs"
	default:
		return "+" + fmtDur(d)
	}
}
