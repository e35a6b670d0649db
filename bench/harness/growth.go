package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/bench/procstat"
)

// bodySizes are the currency_pay body sizes of the body-growth run.
var bodySizes = []int{256, 4 << 10, 64 << 10}

// scenarioBody measures how wxgate's cost grows with the xpay body size, beside the bare proxy.
func (h *harness) scenarioBody(ctx context.Context) error {
	apps, err := h.xpayApps()
	if err != nil {
		return err
	}
	sec := &section{
		title: "5. Cost growth: xpay body size",
		intro: fmt.Sprintf("currency_pay as in section 1 with the body padded (remark) to each size, %v per step; wxgate signs "+
			"(two HMAC-SHA256 over the body), bare forwards bodies the load generator signed.", h.opts.GrowthDuration),
	}
	for _, size := range bodySizes {
		cols := h.xpayColumns(apps, size)[1:3] // bare, wxgate
		for i := range cols {
			cols[i].label = fmt.Sprintf("%s, %s", cols[i].name, fmtBytes(size))
			cols[i].dur = h.opts.GrowthDuration
		}
		sec.rows = append(sec.rows, h.compare(ctx, cols)...)
		n := len(sec.rows)
		gate, bare := &sec.rows[n-1], &sec.rows[n-2]
		cpu := ratio(gate, bare, func(r *row) float64 { return float64(r.cpuPerReq()) })
		tput := ratio(gate, bare, (*row).rps)
		sec.notes = append(sec.notes, fmt.Sprintf("%s: CPU/request wxgate ÷ bare %s, throughput wxgate ÷ bare %s", fmtBytes(size), cpu.value2(), tput.value2()))
	}
	h.report.add(sec)
	return nil
}

func fmtBytes(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// appCounts are the steps of the apps-growth run.
var appCounts = []int{1, 10, 100}

// scenarioApps measures wxgate with 1, 10 and 100 configured apps (a fresh emulator and wxgate
// each), the load spread over every app.
func (h *harness) scenarioApps(ctx context.Context) error {
	sec := &section{
		title: "6. Cost growth: configured apps",
		intro: fmt.Sprintf("A fresh emulator and wxgate per step with a generated config of N apps (each with xpay and push keys); one user "+
			"per app logged in through wxgate; currency_pay through wxgate only, each request for the next app (X-Wxgate-App), %v per step.", h.opts.GrowthDuration),
		table: growthHead("apps"),
	}
	lines, err := h.growthSteps(ctx, appCounts, func(n int) growthStep {
		return growthStep{name: fmt.Sprintf("apps%d", n), what: fmt.Sprintf("%d apps", n), apps: h.mat.apps[:n],
			load: func(apps []*xpayApp) (loadgen.Builder, loadgen.Checker) {
				return newXpayLoad(apps, defaultBody, false, h.opts.Conns).build, checkErrcode0
			}}
	})
	sec.table = append(sec.table, lines...)
	h.report.add(sec)
	return err
}

// errCell renders an error count, loudly when not zero.
func errCell(errs, total uint64, samples []string) string {
	if errs == 0 {
		return "0"
	}
	return fmt.Sprintf("**%d of %d FAILED ⚠** %v", errs, total, samples)
}

// merchantCounts are the steps of the merchants-growth run.
var merchantCounts = []int{1, 10, 100}

// scenarioMerchants measures wxgate with 1, 10 and 100 configured WeChat Pay merchants, each
// with its own RSA-2048 key (a fresh emulator and wxgate each), JSAPI orders spread over every
// merchant.
func (h *harness) scenarioMerchants(ctx context.Context) error {
	most := merchantCounts[len(merchantCounts)-1]
	h.logf("  generating %d merchant keys ...", most-1)
	began := time.Now()
	more, err := h.mat.moreMerchants(most - 1)
	if err != nil {
		return fmt.Errorf("merchant keys: %w", err)
	}
	keysIn := time.Since(began)
	h.logf(" %v\n", keysIn.Round(time.Millisecond))
	all := append([]merchantCreds{h.mat.mainMerchant()}, more...)
	sec := &section{
		title: "7. Cost growth: configured merchants",
		intro: fmt.Sprintf("A fresh emulator and wxgate per step with a generated config of N merchants, each with its own RSA-2048 "+
			"private key, API certificate serial and APIv3 key (bound to one app); JSAPI orders (section 2) through wxgate only, "+
			"each request for the next merchant (X-Wxgate-Merchant, its mchid in the body), %v per step. wxgate signs each "+
			"order with that merchant's key and verifies WeChat Pay's answer; the emulator checks the signature against that "+
			"merchant's public key and RSA-signs its answer on the same cores.", h.opts.GrowthDuration),
		table: growthHead("merchants"),
	}
	lines, err := h.growthSteps(ctx, merchantCounts, func(n int) growthStep {
		return growthStep{name: fmt.Sprintf("merchants%d", n), what: fmt.Sprintf("%d merchants", n), apps: h.mat.apps[:1], merchants: all[:n],
			load: func(apps []*xpayApp) (loadgen.Builder, loadgen.Checker) {
				load := h.newV3Load(apps[0].users[0].openid, false) // a logged-in user as the payer
				load.merchants = all[:n]
				return load.build, checkPrepay
			}}
	})
	sec.table = append(sec.table, lines...)
	sec.notes = append(sec.notes, fmt.Sprintf("the %d keys besides the main merchant's were generated before the first step in %s (not measured)",
		most-1, fmtDur(keysIn)))
	h.report.add(sec)
	return err
}

// growthHead is the table head of a configuration-growth run over what.
func growthHead(what string) []string {
	return []string{
		"| " + what + " | wxgate start (to /healthz) | RSS after start | req/s | p50 | p99 | errors | CPU/req | peak RSS |",
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
	}
}

// growthStep is one step of a configuration-growth run: a fresh emulator and wxgate for apps and
// merchants (nil: the main one), one user per app logged in through wxgate, and the load.
type growthStep struct {
	name, what string // the stack's folder; what is configured, for the log and the column
	apps       []appCreds
	merchants  []merchantCreds
	load       func(apps []*xpayApp) (loadgen.Builder, loadgen.Checker) // given the logged-in users
}

// growthSteps runs the step of each count and returns their table lines; a failed step says
// why in its line and the run goes on.
func (h *harness) growthSteps(ctx context.Context, counts []int, step func(n int) growthStep) ([]string, error) {
	var lines []string
	for _, n := range counts {
		if err := ctx.Err(); err != nil {
			return lines, err
		}
		line, err := h.runGrowthStep(ctx, n, step(n))
		if err != nil {
			line = fmt.Sprintf("| %d | failed: %v | | | | | | | |", n, err)
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// runGrowthStep runs one step and returns its table line.
func (h *harness) runGrowthStep(ctx context.Context, n int, s growthStep) (string, error) {
	h.logf("  %s: starting a fresh emulator and wxgate ...\n", s.what)
	st, err := h.startStackFor(s.name, s.apps, s.merchants)
	if err != nil {
		return "", err
	}
	defer st.stop()
	startRSS, _ := procstat.Read(st.gate.pid())
	apps, err := prepareXpay(st, st.apps, 1)
	if err != nil {
		return "", err
	}
	build, check := s.load(apps)
	c := column{name: colWxgate, label: "wxgate, " + s.what, addr: st.appAddr, pid: st.gate.pid(), dur: h.opts.GrowthDuration,
		metrics: st.metricsURL(), upstream: st.emu.pid(), build: build, check: check}
	r := h.measure(ctx, c)
	if r.res == nil {
		return "", r.err
	}
	l := &r.res.Latency
	return fmt.Sprintf("| %d | %s | %s | %.0f | %s | %s | %s | %s | %s |", n, fmtDur(st.startedIn), fmtMB(startRSS.RSS), r.rps(),
		fmtDur(l.Quantile(0.5)), fmtDur(l.Quantile(0.99)), errCell(r.res.Errors, r.res.Requests, r.res.Samples), fmtDur(r.cpuPerReq()), fmtMB(r.peakRSS)), nil
}
