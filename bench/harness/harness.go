// Package harness runs wxgate's end-to-end benchmark: it builds wxgate, starts the WeChat
// emulator, wxgate, the bare pass-through proxy and (when installed) nginx as separate processes
// on loopback, drives each scenario through every one of them with the closed-loop load
// generator, reads each proxy's CPU time and peak memory from /proc, and writes the comparison
// as Markdown. Everything it starts is stopped before Run returns, on error and interrupt too.
package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wxgate/wxgate/bench/procstat"
	"github.com/wxgate/wxgate/emulator"
)

// Scenario names, in the order they run.
var Scenarios = []string{"xpay", "v3", "callbacks", "push", "body", "apps", "merchants", "sessions", "micro", "store"}

// Options configure a benchmark run.
type Options struct {
	Root            string        // the module root (where go.mod is)
	Out             string        // the Markdown report to write
	Duration        time.Duration // each column of each main scenario
	GrowthDuration  time.Duration // each step of the cost-growth runs
	CeilingDuration time.Duration // each crypto ceiling loop
	Conns           int           // connections of the load generator
	Scenarios       []string      // subset of Scenarios; all when empty
	Nginx           string        // the nginx binary; "" looks it up on PATH
	MaxSessions     int           // largest stored-session-key step
	Notifications   int           // pre-built APIv3 notifications (each costs an RSA signature)
	Command         string        // the command line, for the report
	Log             io.Writer     // progress
	Keep            bool          // keep the temporary folder
	// Profile, when set, is a folder for a CPU profile of every wxgate column, fetched from
	// wxgate's /debug/pprof/profile during the run.
	Profile string
	// SignPriority, when set, is the generated configs' [server] sign_priority ("low", the
	// default, or "normal"), to compare where wxgate computes its RSA signatures.
	SignPriority string
	// Rounds is how many times each comparison's columns are measured in turn (interleaved);
	// each column's rounds are added up. 1 when zero.
	Rounds int
	// PacedRounds is how many rounds the paced and open-loop runs take: the xpay comparison at
	// half of the peak (the p99 added) and the v3 overload (the 503 p99); their latency targets
	// read the median round. Rounds when zero.
	PacedRounds int
}

// harness is one benchmark run's state.
type harness struct {
	opts     Options
	dir      string
	mat      *material
	app      *appServer
	main     *stack
	stacks   []*stack         // every stack started (settle asks their emulators to collect)
	bares    map[string]*proc // bare proxy per upstream ("weixin", "mch", "app") -> process
	bareAddr map[string]string
	nginx    *nginxProc
	mchTLS   *tls.Config        // trusts the emulator CA, for direct WeChat Pay calls
	xpay     []*xpayApp         // the main stack's app, ready for currency_pay
	emu      *emulator.Emulator // builds notifications in the harness (never serves)
	report   *report
	scenario string // the scenario running, for profile file names
	cleanup  []func()
}

// Run runs the benchmark and writes the report.
func Run(ctx context.Context, opts Options) (err error) {
	if len(opts.Scenarios) == 0 {
		opts.Scenarios = Scenarios
	}
	for _, s := range opts.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(Scenarios, ","))
		}
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	h := &harness{opts: opts, bares: map[string]*proc{}, bareAddr: map[string]string{}}
	h.report = newReport(opts)
	defer func() {
		for i := len(h.cleanup) - 1; i >= 0; i-- {
			h.cleanup[i]()
		}
	}()
	if h.dir, err = os.MkdirTemp("", "wxbench-"); err != nil {
		return err
	}
	if !opts.Keep {
		h.defer_(func() { os.RemoveAll(h.dir) })
	}
	if err := h.setUp(ctx); err != nil {
		return err
	}
	for _, s := range Scenarios {
		if !slices.Contains(opts.Scenarios, s) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		h.logf("scenario %s\n", s)
		h.scenario = s
		before, steal0, t0 := len(h.report.sections), machineSteal(), time.Now()
		err := h.runScenario(ctx, s)
		if steal1 := machineSteal(); steal0 >= 0 && steal1 >= 0 {
			note := stealNote(steal1-steal0, time.Since(t0))
			for _, sec := range h.report.sections[before:] {
				sec.notes = append(sec.notes, note)
			}
		}
		if err != nil {
			h.report.failed(s, err)
			h.logf("scenario %s failed: %v\n", s, err)
			if ctx.Err() != nil {
				return errors.Join(err, h.report.write())
			}
		}
	}
	h.report.finish()
	return h.report.write()
}

// machineSteal reads the hypervisor's steal time, or -1 where it cannot be read.
func machineSteal() time.Duration {
	m, err := procstat.Machine()
	if err != nil {
		return -1
	}
	return m.Steal
}

// stealNote says how much CPU the hypervisor took from the machine during a scenario that
// lasted wall: time every process was ready and no CPU was there, inside every latency and rate
// of the scenario.
func stealNote(steal, wall time.Duration) string {
	share := float64(steal) / (float64(wall) * float64(runtime.NumCPU()))
	took := fmtDur(steal)
	if steal == 0 {
		took = "none" // fmtDur writes 0 as "-", an empty cell
	}
	return fmt.Sprintf("CPU the hypervisor took from this machine during the scenario (steal, /proc/stat): %s of %s × %d cores (%.1f%%)",
		took, fmtDur(wall.Round(time.Millisecond)), runtime.NumCPU(), 100*share)
}

// runScenario runs one scenario and adds its section to the report.
func (h *harness) runScenario(ctx context.Context, name string) error {
	switch name {
	case "xpay":
		return h.scenarioXpay(ctx)
	case "v3":
		return h.scenarioV3(ctx)
	case "callbacks":
		return h.scenarioV3Callbacks(ctx)
	case "push":
		return h.scenarioPush(ctx)
	case "body":
		return h.scenarioBody(ctx)
	case "apps":
		return h.scenarioApps(ctx)
	case "merchants":
		return h.scenarioMerchants(ctx)
	case "micro":
		return h.scenarioMicro(ctx)
	case "sessions":
		return h.scenarioSessions(ctx)
	case "store":
		return h.scenarioStore(ctx)
	}
	return fmt.Errorf("unknown scenario %q", name)
}

// defer_ registers a clean-up step, run in reverse order when Run returns.
func (h *harness) defer_(f func()) { h.cleanup = append(h.cleanup, f) }

func (h *harness) logf(format string, args ...any) { fmt.Fprintf(h.opts.Log, format, args...) }

// bin returns the path of a built binary.
func (h *harness) bin(name string) string { return filepath.Join(h.dir, "bin", name) }

// maxApps is the largest app count of the apps scenario.
const maxApps = 100

// setUp builds the binaries, generates keys, and starts the app, the main stack, the bare
// proxies and nginx.
func (h *harness) setUp(ctx context.Context) error {
	h.logf("building wxgate and bareproxy ...\n")
	if h.opts.Profile != "" {
		if err := os.MkdirAll(h.opts.Profile, 0o755); err != nil {
			return err
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(h.dir, "bin")+string(filepath.Separator),
		"./cmd/wxgate", "./bench/cmd/bareproxy")
	build.Dir = h.opts.Root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	var err error
	if h.mat, err = newMaterial(h.dir, maxApps); err != nil {
		return err
	}
	h.mat.signPriority = h.opts.SignPriority
	if h.app, err = startApp(h.mat); err != nil {
		return err
	}
	h.defer_(h.app.stop)
	h.logf("starting the emulator and wxgate ...\n")
	if h.main, err = h.startStack("main", h.mat.apps[:1]); err != nil {
		return err
	}
	h.defer_(h.main.stop)
	if h.mchTLS, err = trustFile(h.main.emuInfo.CAFile); err != nil {
		return err
	}
	upstreams := map[string]string{"weixin": h.main.emuInfo.Weixin, "mch": h.main.emuInfo.Mch, "app": h.app.url}
	for _, name := range []string{"weixin", "mch", "app"} {
		p, addr, err := h.startBare("bareproxy "+name, "-upstream", upstreams[name], "-ca-file", h.main.emuInfo.CAFile)
		if err != nil {
			return err
		}
		h.defer_(func() { p.stop(5 * time.Second) })
		h.bares[name], h.bareAddr[name] = p, addr
	}
	h.nginx, err = h.startNginx(upstreams)
	if err != nil {
		return err
	}
	h.report.nginx = h.nginx.missing
	if h.nginx.p != nil {
		h.defer_(func() { h.nginx.p.stop(5 * time.Second) })
		h.report.nginx = h.nginx.version
	}
	_, h.report.memstats = scrape(h.main.metricsURL(), metricMallocs)
	return nil
}

// startBare starts the bareproxy command with args and returns it with the address it listens
// on; the caller stops it.
func (h *harness) startBare(name string, args ...string) (*proc, string, error) {
	p, err := startProc(name, h.dir, h.bin("bareproxy"), args...)
	if err != nil {
		return nil, "", err
	}
	line, err := p.readLine(10 * time.Second)
	if err != nil {
		p.stop(5 * time.Second)
		return nil, "", err
	}
	addr, ok := strings.CutPrefix(line, "bareproxy listening on ")
	if !ok {
		p.stop(5 * time.Second)
		return nil, "", fmt.Errorf("%s printed %q", name, line)
	}
	return p, addr, nil
}

// trustFile returns a TLS client config trusting the PEM certificates of path.
func trustFile(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// bareColumn returns the bare-proxy column for an upstream.
func (h *harness) bareColumn(upstream string) column {
	return column{name: colBare, addr: h.bareAddr[upstream], pid: h.bares[upstream].pid()}
}

// nginxColumn returns the nginx column for an upstream, skipped when nginx is not installed.
func (h *harness) nginxColumn(upstream string) column {
	if h.nginx.p == nil {
		return column{name: colNginx, skip: h.nginx.missing}
	}
	return column{name: colNginx, addr: h.nginx.addr[upstream], pid: h.nginx.p.pid(), tree: true}
}
