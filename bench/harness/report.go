package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// optimisationLog is the hand-kept before/after log (bench/optimisations.md) every report ends with.
const optimisationLog = "optimisations.md"

// report collects the sections of a run and writes them as Markdown.
type report struct {
	opts     Options
	started  time.Time
	load0    string
	load1    string
	nginx    string
	memstats bool // wxgate's /metrics has go_memstats_mallocs_total
	sections []*section
	failures []string
}

// section is one scenario's results: a comparison table (rows) or a table of its own (table),
// ratios against the targets, and notes.
type section struct {
	title   string
	intro   string
	rows    []row
	table   []string // a custom Markdown table, for the growth runs
	targets []targetCheck
	notes   []string
}

// targetCheck is one ratio compared with its target.
type targetCheck struct {
	what   string
	value  float64 // the measured ratio; NaN-free: valid only when ok
	limit  float64
	atMost bool   // the target is value <= limit (else value >= limit)
	ok     bool   // the ratio could be computed
	why    string // why not, when !ok
	unit   string // "x" for ratios, "MB" ...
	remark string
}

func (t targetCheck) verdict() string {
	switch {
	case !t.ok:
		return "n/a"
	case t.atMost && t.value <= t.limit, !t.atMost && t.value >= t.limit:
		return "**met**"
	default:
		return "**missed**"
	}
}

func newReport(opts Options) *report {
	return &report{opts: opts, started: time.Now(), load0: loadAvg()}
}

func (r *report) add(s *section) { r.sections = append(r.sections, s) }

func (r *report) failed(scenario string, err error) {
	r.failures = append(r.failures, fmt.Sprintf("scenario %s failed: %v", scenario, err))
}

func (r *report) finish() { r.load1 = loadAvg() }

// write writes the report to opts.Out.
func (r *report) write() error {
	if r.opts.Out == "" {
		return nil
	}
	return os.WriteFile(r.opts.Out, []byte(r.markdown()), 0o644)
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# wxgate benchmark results\n\n")
	p("Written by `%s` on %s (took %s). Regenerate with the same command; see bench/README.md for what each column means.\n\n",
		r.opts.Command, r.started.Format("2006-01-02 15:04 MST"), time.Since(r.started).Round(time.Second))
	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n| cores | %d (GOMAXPROCS %d) |\n| Go | %s %s/%s |\n| kernel | %s |\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, kernel())
	p("| nginx | %s |\n| load average | %s at the start, %s at the end |\n", orDash(r.nginx), r.load0, orDash(r.load1))
	signing := "low (wxgate's default)"
	if r.opts.SignPriority != "" {
		signing = fmt.Sprintf("%q (-sign-priority)", r.opts.SignPriority)
	}
	p("| settings | %v per column × %d round(s), interleaved; %d connections; growth steps %v; ceilings %v; wxgate's sign_priority %s |\n\n",
		r.opts.Duration, max(r.opts.Rounds, 1), r.opts.Conns, r.opts.GrowthDuration, r.opts.CeilingDuration, signing)
	p("¹ allocs/req: the change of `%s` on wxgate's /metrics over a run, divided by its requests (the harness's own "+
		"two scrapes included). ", metricMallocs)
	if !r.memstats {
		p("This wxgate's /metrics does not export it, so the column reads n/a¹. ")
	}
	p("The other columns have no such endpoint. The generated wxgate configs set `[server] pprof = true` (admin listener only).")
	if r.opts.Profile != "" {
		p(" A CPU profile of every wxgate column is in %s; the profiler running costs a few percent of these numbers.", r.opts.Profile)
	}
	p("\n\n")
	p("Everything runs on this one machine: the load generator, the emulator (which verifies every signature and, for WeChat Pay, ")
	p("RSA-signs every answer), the proxy under test and the callback app share its cores. Compare columns within a table; ")
	p("absolute numbers are this machine's. The load average above shows how busy the machine was with other work. ")
	p("Before every measured run the emulator (which runs with GOGC=off) and the harness collect their garbage, so that ")
	p("their collections land between runs, not inside one column's.\n\n")
	if errs := r.errorSummary(); len(errs) > 0 {
		p("## ⚠ FAILED REQUESTS\n\n")
		for _, e := range errs {
			p("- **%s**\n", e)
		}
		p("\nNumbers of a column with failed requests are not comparable.\n\n")
	}
	for _, f := range r.failures {
		p("> **%s**\n\n", f)
	}
	if t := r.targetSummary(); t != "" {
		p("## Targets\n\n%s\n", t)
	}
	for _, s := range r.sections {
		s.markdown(&b)
	}
	// The optimisation log is kept by hand beside the harness and carried into every report.
	if r.opts.Root != "" {
		if log, err := os.ReadFile(filepath.Join(r.opts.Root, "bench", optimisationLog)); err == nil {
			b.WriteString("\n")
			b.Write(log)
		}
	}
	return b.String()
}

// errorSummary lists every column with failed requests.
func (r *report) errorSummary() []string {
	var out []string
	for _, s := range r.sections {
		for _, row := range s.rows {
			if row.err != nil {
				out = append(out, fmt.Sprintf("%s / %s: %v", s.title, row.name(), row.err))
			}
			if row.res != nil && row.res.Errors > 0 {
				out = append(out, fmt.Sprintf("%s / %s: %d of %d requests failed (%s)", s.title, row.name(), row.res.Errors, row.res.Requests, strings.Join(row.res.Samples, " | ")))
			}
		}
	}
	return out
}

// targetSummary tabulates every target check of every section.
func (r *report) targetSummary() string {
	var b strings.Builder
	for _, s := range r.sections {
		for _, t := range s.targets {
			if b.Len() == 0 {
				b.WriteString("| target | measured | verdict | remark |\n|---|---|---|---|\n")
			}
			fmt.Fprintf(&b, "| %s %s %s%s | %s | %s | %s |\n", t.what, map[bool]string{true: "≤", false: "≥"}[t.atMost], trimFloat(t.limit), t.unit, t.value2(), t.verdict(), t.remark)
		}
	}
	return b.String()
}

// value2 renders the measured value with two decimals, or more (up to four) where two would
// print it equal to a limit it misses or only just meets (0.846 against 0.85).
func (t targetCheck) value2() string {
	if !t.ok {
		return t.why
	}
	prec := 2
	for prec < 4 && t.value != t.limit && fmt.Sprintf("%.*f", prec, t.value) == fmt.Sprintf("%.*f", prec, t.limit) {
		prec++
	}
	return fmt.Sprintf("%.*f%s", prec, t.value, t.unit)
}

func (s *section) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## %s\n\n%s\n\n", s.title, s.intro)
	if len(s.rows) > 0 {
		b.WriteString("| column | req/s | p50 | p99 | p99.9 | errors | proxy CPU/req | proxy peak RSS | allocs/req |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for i := range s.rows {
			b.WriteString(s.rows[i].markdown())
		}
		b.WriteString("\n")
	}
	for _, l := range s.table {
		b.WriteString(l + "\n")
	}
	if len(s.table) > 0 {
		b.WriteString("\n")
	}
	for _, t := range s.targets {
		fmt.Fprintf(b, "- %s: %s (target %s %s%s: %s)%s\n", t.what, t.value2(), map[bool]string{true: "≤", false: "≥"}[t.atMost], trimFloat(t.limit), t.unit, t.verdict(), prefixed(" — ", t.remark))
	}
	for _, n := range s.notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	for _, r := range s.rows {
		if r.res != nil && r.res.Errors > 0 {
			fmt.Fprintf(b, "- **⚠ %s: %d of %d requests FAILED**: %s\n", r.name(), r.res.Errors, r.res.Requests, strings.Join(r.res.Samples, " | "))
		}
		if r.col.note != "" {
			fmt.Fprintf(b, "- %s: %s\n", r.name(), r.col.note)
		}
	}
	b.WriteString("\n")
}

// markdown renders one table row.
func (r *row) markdown() string {
	if r.col.skip != "" {
		return fmt.Sprintf("| %s | %s | | | | | | | |\n", r.name(), r.col.skip)
	}
	if r.res == nil {
		return fmt.Sprintf("| %s | failed: %v | | | | | | | |\n", r.name(), r.err)
	}
	l := &r.res.Latency
	errs := fmt.Sprint(r.res.Errors)
	if r.res.Errors > 0 {
		errs = "**" + errs + " ⚠**"
	}
	cpu, rss := "n/a (no proxy)", "n/a"
	if r.col.pid != 0 {
		cpu, rss = "?", "?"
		if r.measured {
			cpu, rss = fmtDur(r.cpuPerReq()), fmtMB(r.peakRSS)
		}
	}
	allocs := r.allocsReq()
	if r.col.metrics == "" {
		allocs = "n/a"
	}
	return fmt.Sprintf("| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.name(), r.rps(),
		fmtDur(l.Quantile(0.5)), fmtDur(l.Quantile(0.99)), fmtDur(l.Quantile(0.999)), errs, cpu, rss, allocs)
}

// addRatios adds the wxgate/bare and wxgate/nginx ratios of the section's rows; withTargets
// checks them against the xpay targets.
func (s *section) addRatios(withTargets bool) {
	gate, bare, ngx := s.find(colWxgate), s.find(colBare), s.find(colNginx)
	cpu := ratio(gate, bare, func(r *row) float64 { return float64(r.cpuPerReq()) })
	tput := ratio(gate, bare, (*row).rps)
	vsNginx := ratio(gate, ngx, (*row).rps)
	if withTargets {
		cpu.what, cpu.limit, cpu.atMost, cpu.unit = "xpay CPU/request wxgate ÷ bare", 1.2, true, "x"
		vsNginx.what, vsNginx.limit, vsNginx.unit = "xpay throughput wxgate ÷ nginx", 0.8, "x"
		s.targets = append(s.targets, cpu, vsNginx)
		s.notes = append(s.notes, "throughput wxgate ÷ bare: "+tput.value2())
		return
	}
	cpu.unit, tput.unit, vsNginx.unit = "x", "x", "x"
	s.notes = append(s.notes, "CPU/request wxgate ÷ bare: "+cpu.value2(), "throughput wxgate ÷ bare: "+tput.value2(), "throughput wxgate ÷ nginx: "+vsNginx.value2())
}

// find returns the section's row of a column, or nil.
func (s *section) find(name string) *row {
	for i := range s.rows {
		if s.rows[i].col.name == name {
			return &s.rows[i]
		}
	}
	return nil
}

// ratio computes f(a)/f(b) when both rows ran cleanly.
func ratio(a, b *row, f func(*row) float64) targetCheck {
	t := targetCheck{unit: "x"}
	switch {
	case a == nil || b == nil:
		t.why = "n/a (column missing)"
	case a.col.skip != "" || b.col.skip != "":
		t.why = "n/a (" + b.name() + " " + strings.Split(b.col.skip+a.col.skip, " (")[0] + ")"
	case a.res == nil || b.res == nil:
		t.why = "n/a (a run failed)"
	case a.res.Errors > 0 || b.res.Errors > 0:
		t.why = "n/a (failed requests)"
	case f(b) == 0:
		t.why = "n/a (nothing measured)"
	default:
		t.value, t.ok = f(a)/f(b), true
	}
	return t
}

func fmtMB(n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cpuModel reads the CPU model from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
