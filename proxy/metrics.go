package proxy

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/internal/signing"
	"github.com/wxgate/wxgate/policies"
)

// metrics is what the gateway measures, kept in a VictoriaMetrics metric set. Every series is
// made once (at start-up, or the first time its label values occur) from a bounded set of label
// values: route kinds, status classes, configured names, route paths, error codes; never from
// request data. Counting on the request path is an atomic add or a short lock, no allocation.
type metrics struct {
	set *vm.Set

	// requests[kind][class] counts answers by route kind (0 = helpers) and status class 1xx..5xx.
	requests   [policies.RouteKindCount][6]lazy[vm.Counter]
	requestDur [policies.RouteKindCount][6]lazy[vm.PrometheusHistogram]

	signatureFailures *vm.Counter
	staleRetries      *vm.Counter
	sessionsCaptured  *vm.Counter
	overloaded        *vm.Counter
	tokenFailures     *vm.Counter
	errors            sync.Map // wxgate error code -> *vm.Counter

	callbacks      [len(callbackSources)][len(callbackOutcomes)]lazy[vm.Counter]
	callbackDur    [len(callbackSources)][len(callbackOutcomes)]lazy[vm.PrometheusHistogram]
	forwardDur     [len(callbackSources)][len(forwardOutcomes)]lazy[vm.PrometheusHistogram]
	acceptFailures [len(listenerNames)]*vm.Counter

	storeDur  [len(storeOps)]*vm.PrometheusHistogram
	storeErrs [len(storeOps)]*vm.Counter

	reloadsOK     *vm.Counter
	reloadsFailed *vm.Counter
	lastReload    atomic.Int64 // unix seconds of the last config applied (start-up or reload)

	upstreamMu sync.Mutex
	upstream   atomic.Pointer[map[upstreamKey]*upstreamSeries] // copied on write
}

// lazy is a series made the first time it is used, so that /metrics lists only label values
// that occurred (as Prometheus clients usually do for labels known only at run time).
type lazy[T any] struct{ p atomic.Pointer[T] }

// get returns the series, making it with mk the first time.
func (l *lazy[T]) get(mk func() *T) *T {
	if v := l.p.Load(); v != nil {
		return v
	}
	v := mk()
	if !l.p.CompareAndSwap(nil, v) {
		return l.p.Load()
	}
	return v
}

// Bucket upper bounds (seconds) of the duration histograms.
var (
	// requestBuckets cover a local answer (tens of µs) to WeChat's slowest (seconds).
	requestBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// storeBuckets cover a memory or disk operation (µs) to a Redis timeout.
	storeBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
)

// listenerNames are the listener label values, in the order of metrics.acceptFailures.
var listenerNames = [...]string{listenerApp, listenerCallback, listenerAdmin}

// acceptFailure is the counter of temporary accept failures of the listener called name.
func (m *metrics) acceptFailure(name string) *vm.Counter {
	for i, n := range listenerNames {
		if n == name {
			return m.acceptFailures[i]
		}
	}
	panic("proxy: unknown listener " + name)
}

// callbackSource is the source label of wxgate_callbacks_total, an index of callbackSources.
type callbackSource int

// The callback sources, in the order the metrics list them.
const (
	cbMessagePush callbackSource = iota
	cbWeChatPayV2
	cbWeChatPayV3
)

// callbackSources are the label values of the callback sources (the events' Source).
var callbackSources = [...]string{cbMessagePush: event.SourceMessagePush, cbWeChatPayV2: event.SourceWeChatPayV2, cbWeChatPayV3: event.SourceWeChatPayV3}

// callbackOutcome is what became of a callback, an index of callbackOutcomes.
type callbackOutcome int

// The callback outcomes, in the order the metrics list them.
const (
	outcomeDuplicate callbackOutcome = iota
	outcomeForwardFailed
	outcomeForwarded
	outcomeRejected
)

// callbackOutcomes are the label values of the outcomes.
var callbackOutcomes = [...]string{outcomeDuplicate: "duplicate", outcomeForwardFailed: "forward_failed", outcomeForwarded: "forwarded", outcomeRejected: "rejected"}

// forwardOutcomes are the outcome label values of wxgate_forward_duration_seconds: the app
// answered 2xx, or it did not (an error status, a timeout, unreachable).
var forwardOutcomes = [...]string{0: "accepted", 1: "failed"}

// storeOp is a store operation the gateway times, an index of storeOps.
type storeOp int

// The store operations, in the order the metrics list them.
const (
	storeGetSession storeOp = iota
	storePutSession
	storeClaim
	storeRelease
	storeDelivered
)

// storeOps are the op label values of the store metrics.
var storeOps = [...]string{storeGetSession: "get_session", storePutSession: "put_session", storeClaim: "claim", storeRelease: "release", storeDelivered: "delivered"}

// upstreamKey is one WeChat API on one host: the host of [upstream] weixin or mch, and the API,
// a route path (configured or built in) or a WeChat Pay path template, never request data.
type upstreamKey struct{ host, api string }

// upstreamSeries are the series of one upstreamKey.
type upstreamSeries struct {
	dur    *vm.PrometheusHistogram
	errors sync.Map // error class -> *vm.Counter
	key    upstreamKey
}

// metricsOnce enables HELP and TYPE lines in the library's exposition (a process-wide switch).
var metricsOnce sync.Once

func newMetrics() *metrics {
	metricsOnce.Do(func() { vm.ExposeMetadata(true) })
	s := vm.NewSet()
	m := &metrics{
		set:               s,
		signatureFailures: s.NewCounter("wxgate_response_signature_failures_total"),
		staleRetries:      s.NewCounter("wxgate_stale_token_retries_total"),
		sessionsCaptured:  s.NewCounter("wxgate_session_keys_captured_total"),
		overloaded:        s.NewCounter("wxgate_sign_overloaded_total"),
		tokenFailures:     s.NewCounter("wxgate_token_fetch_failures_total"),
		reloadsOK:         s.NewCounter(`wxgate_config_reloads_total{result="ok"}`),
		reloadsFailed:     s.NewCounter(`wxgate_config_reloads_total{result="error"}`),
	}
	s.NewGauge("wxgate_config_last_reload_success_timestamp_seconds", func() float64 { return float64(m.lastReload.Load()) })
	for i, n := range listenerNames {
		m.acceptFailures[i] = s.NewCounter(fmt.Sprintf("wxgate_accept_failures_total{listener=%q}", strings.TrimSuffix(n, " listener")))
	}
	for i, op := range storeOps {
		m.storeDur[i] = s.NewPrometheusHistogramExt(fmt.Sprintf("wxgate_store_operation_duration_seconds{op=%q}", op), storeBuckets)
		m.storeErrs[i] = s.NewCounter(fmt.Sprintf("wxgate_store_operation_errors_total{op=%q}", op))
	}
	empty := map[upstreamKey]*upstreamSeries{}
	m.upstream.Store(&empty)
	return m
}

// routeLabel is the route label value of a route kind (0: the /wxgate/ helpers and refusals).
func routeLabel(kind policies.RouteKind) string {
	if kind == 0 {
		return "helper"
	}
	return kind.String()
}

// observe counts an answer on the app listener and how long it took since the request was read.
func (m *metrics) observe(kind policies.RouteKind, status int, took time.Duration) {
	k := int(kind)
	if k < 0 || k >= len(m.requests) {
		k = 0
	}
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	m.requests[k][c].get(func() *vm.Counter {
		return m.set.GetOrCreateCounter(fmt.Sprintf(`wxgate_requests_total{route=%q,code="%dxx"}`, routeLabel(policies.RouteKind(k)), c))
	}).Inc()
	m.requestDur[k][c].get(func() *vm.PrometheusHistogram {
		return m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`wxgate_request_duration_seconds{route=%q,code="%dxx"}`, routeLabel(policies.RouteKind(k)), c), requestBuckets)
	}).Update(took.Seconds())
}

// errorCount counts one wxgate error answer by its code (a constant of errors.go).
func (m *metrics) errorCount(code string) {
	if c, ok := m.errors.Load(code); ok {
		c.(*vm.Counter).Inc()
		return
	}
	c, _ := m.errors.LoadOrStore(code, m.set.GetOrCreateCounter(fmt.Sprintf("wxgate_errors_total{code=%q}", code)))
	c.(*vm.Counter).Inc()
}

// callback counts what became of a callback and how long wxgate took to handle it.
func (m *metrics) callback(source callbackSource, outcome callbackOutcome, took time.Duration) {
	m.callbacks[source][outcome].get(func() *vm.Counter {
		return m.set.GetOrCreateCounter(fmt.Sprintf("wxgate_callbacks_total{source=%q,outcome=%q}", callbackSources[source], callbackOutcomes[outcome]))
	}).Inc()
	m.callbackDur[source][outcome].get(func() *vm.PrometheusHistogram {
		return m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf("wxgate_callback_duration_seconds{source=%q,outcome=%q}", callbackSources[source], callbackOutcomes[outcome]), requestBuckets)
	}).Update(took.Seconds())
}

// forward times one forward of an event to the app.
func (m *metrics) forward(source callbackSource, accepted bool, took time.Duration) {
	o := 1
	if accepted {
		o = 0
	}
	m.forwardDur[source][o].get(func() *vm.PrometheusHistogram {
		return m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf("wxgate_forward_duration_seconds{source=%q,outcome=%q}", callbackSources[source], forwardOutcomes[o]), requestBuckets)
	}).Update(took.Seconds())
}

// store times one store operation and counts it when it failed.
func (m *metrics) store(op storeOp, start time.Time, err error) {
	m.storeDur[op].Update(time.Since(start).Seconds())
	if err != nil {
		m.storeErrs[op].Inc()
	}
}

// upstreamFor returns the series of one WeChat API on host, making them the first time.
func (m *metrics) upstreamFor(host, api string) *upstreamSeries {
	k := upstreamKey{host, api}
	if s := (*m.upstream.Load())[k]; s != nil {
		return s
	}
	m.upstreamMu.Lock()
	defer m.upstreamMu.Unlock()
	old := *m.upstream.Load()
	if s := old[k]; s != nil {
		return s
	}
	s := &upstreamSeries{key: k, dur: m.set.GetOrCreatePrometheusHistogramExt(
		fmt.Sprintf("wxgate_upstream_duration_seconds{host=%q,api=%q}", host, api), requestBuckets)}
	next := make(map[upstreamKey]*upstreamSeries, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = s
	m.upstream.Store(&next)
	return s
}

// fail counts a failed call to this API by error class (timeout, unreachable, tls, busy,
// too_large, signature_invalid, ...).
func (s *upstreamSeries) fail(m *metrics, class string) {
	c, ok := s.errors.Load(class)
	if !ok {
		c, _ = s.errors.LoadOrStore(class, m.set.GetOrCreateCounter(
			fmt.Sprintf("wxgate_upstream_errors_total{host=%q,api=%q,error=%q}", s.key.host, s.key.api, class)))
	}
	c.(*vm.Counter).Inc()
}

// metricHelp is the HELP text of every family wxgate writes (the library writes the HELP
// line, wxgate its text).
var metricHelp = map[string]string{
	"go_memstats_mallocs_total":                "Heap objects allocated (for allocations per request).",
	"go_memstats_alloc_bytes_total":            "Heap bytes allocated.",
	"go_memstats_heap_inuse_bytes":             "Heap bytes in use.",
	"wxgate_build_info":                        "wxgate's version, commit and Go version (always 1).",
	"wxgate_requests_total":                    "Answers on the app listener by route kind and status class.",
	"wxgate_request_duration_seconds":          "Time from a request read to its answer on the app listener, by route kind and status class.",
	"wxgate_errors_total":                      "wxgate's own error answers by stable code.",
	"wxgate_response_signature_failures_total": "WeChat Pay answers that failed verification and were not passed on.",
	"wxgate_sign_overloaded_total":             "Requests answered 503 because every RSA signing slot was busy.",
	"wxgate_signatures_total":                  "RSA signatures computed (v3 Authorization headers and payment parameters).",
	"wxgate_sign_cpu_seconds_total":            "CPU time those RSA signatures took on the signing threads (Linux; 0 where a thread's CPU time cannot be read).",
	"wxgate_gomaxprocs":                        "GOMAXPROCS now (raised while RSA signatures run, when wxgate serve chose it).",
	"wxgate_sign_wait_max_seconds":             "The longest any request waited for an RSA signing slot since start (bounded by sign_max_wait).",
	"wxgate_sign_wait_seconds":                 "Waits for an RSA signing slot (requests that found every slot busy and joined the queue).",
	"wxgate_callbacks_total":                   "Callbacks from WeChat by source and outcome (forwarded, duplicate, rejected, forward_failed).",
	"wxgate_callback_duration_seconds":         "Time wxgate took to handle a callback from WeChat (forward included), by source and outcome.",
	"wxgate_forward_duration_seconds":          "Time a forward of a verified event to the app took, by source and outcome (accepted: the app answered 2xx).",
	"wxgate_accept_failures_total":             "Temporary accept failures (descriptors exhausted, ...) by listener; each was retried.",
	"wxgate_stale_token_retries_total":         "Calls retried after WeChat called the access_token stale.",
	"wxgate_session_keys_captured_total":       "session_keys stored from jscode2session answers.",
	"wxgate_session_keys":                      "Session keys currently stored (disk and memory kinds).",
	"wxgate_store_up":                          "Whether the store (kind label) answered its last operation.",
	"wxgate_store_errors_total":                "Store operations that failed (unreachable, too slow, disk refused).",
	"wxgate_store_operation_duration_seconds":  "Time of the store operations the gateway makes, by operation.",
	"wxgate_store_operation_errors_total":      "Store operations the gateway made that failed, by operation.",
	"wxgate_token_fetches_total":               "access_token fetches from WeChat by app.",
	"wxgate_token_force_refreshes_total":       "access_token force refreshes (WeChat kept rejecting the token) by app.",
	"wxgate_token_fetch_failures_total":        "access_token fetches that failed (wrong secret, IP allowlist, WeChat unreachable).",
	"wxgate_upstream_duration_seconds":         "Time of calls to WeChat (answer read), by host and API.",
	"wxgate_upstream_errors_total":             "Calls to WeChat that failed, by host, API and error class.",
}

// buildInfo is the label set of wxgate_build_info: version from Options.Version, commit and Go
// version from the binary's build information.
func buildInfo(version string) string {
	if version == "" {
		version = "dev"
	}
	commit, goVersion := "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				commit = s.Value
			}
		}
	}
	return fmt.Sprintf("wxgate_build_info{version=%q,commit=%q,goversion=%q}", version, commit, goVersion)
}

// registerGauges adds the series whose values live elsewhere (signing, the store, tokens) to the
// set, read at each scrape.
func (g *Gateway) registerGauges(version string) {
	s := g.metrics.set
	s.NewGauge(buildInfo(version), func() float64 { return 1 })
	s.NewGauge("wxgate_gomaxprocs", func() float64 { return float64(runtime.GOMAXPROCS(0)) })
	s.RegisterMetricsWriter(g.writeExternal)
}

// writeExternal writes the families kept outside the metric set: signing statistics, the
// store's own statistics and the token caches'.
func (g *Gateway) writeExternal(w io.Writer) {
	signed, signCPU := g.workers.Counted()
	vm.WriteCounterUint64(w, "wxgate_signatures_total", signed)
	vm.WriteCounterFloat64(w, "wxgate_sign_cpu_seconds_total", signCPU.Seconds())
	waits, waitSum, longest := g.signing.WaitStats()
	vm.WriteGaugeFloat64(w, "wxgate_sign_wait_max_seconds", longest.Seconds())
	vm.WriteMetadataIfNeeded(w, "wxgate_sign_wait_seconds", "histogram")
	var cum uint64
	for i, le := range signing.WaitBuckets {
		cum += waits[i]
		fmt.Fprintf(w, "wxgate_sign_wait_seconds_bucket{le=\"%g\"} %d\n", le.Seconds(), cum)
	}
	cum += waits[len(signing.WaitBuckets)]
	fmt.Fprintf(w, "wxgate_sign_wait_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(w, "wxgate_sign_wait_seconds_sum %.6f\n", waitSum.Seconds())
	fmt.Fprintf(w, "wxgate_sign_wait_seconds_count %d\n", cum)

	st := g.store.Stats()
	if st.Sessions >= 0 { // the redis kind does not count them: a scan of every key
		vm.WriteGaugeUint64(w, "wxgate_session_keys", uint64(st.Sessions))
	}
	vm.WriteMetadataIfNeeded(w, "wxgate_store_up", "gauge")
	fmt.Fprintf(w, "wxgate_store_up{kind=%q} %d\n", st.Kind, boolInt(st.Up))
	vm.WriteCounterUint64(w, "wxgate_store_errors_total", uint64(st.Errors))

	apps := g.current().apps
	names := sortedKeys(apps)
	vm.WriteMetadataIfNeeded(w, "wxgate_token_fetches_total", "counter")
	for _, n := range names {
		fmt.Fprintf(w, "wxgate_token_fetches_total{app=%q} %d\n", n, apps[n].tokens.Status().Fetches)
	}
	vm.WriteMetadataIfNeeded(w, "wxgate_token_force_refreshes_total", "counter")
	for _, n := range names {
		fmt.Fprintf(w, "wxgate_token_force_refreshes_total{app=%q} %d\n", n, apps[n].tokens.Status().ForceRefreshes)
	}
}

// writeMetrics renders every metric in the Prometheus text format: the gateway's set, then the
// Go runtime's and the process's, with wxgate's HELP texts filled in.
func (g *Gateway) writeMetrics(w io.Writer) {
	var bb bytes.Buffer
	g.metrics.set.WritePrometheus(&bb)
	vm.WriteProcessMetrics(&bb)
	writeWithHelp(w, bb.Bytes())
}

// writeWithHelp copies the exposition text to w, completing each bare "# HELP name" line the
// library writes with the family's text from metricHelp (or a generic one).
func writeWithHelp(w io.Writer, text []byte) {
	var out bytes.Buffer
	out.Grow(len(text) + len(text)/8)
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i+1], text[i+1:]
		} else {
			text = nil
		}
		name, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("# HELP "))
		if !ok || bytes.IndexByte(name, ' ') >= 0 {
			out.Write(line)
			continue
		}
		help := metricHelp[string(name)]
		if help == "" {
			help = genericHelp(string(name))
		}
		fmt.Fprintf(&out, "# HELP %s %s\n", name, help)
	}
	_, _ = w.Write(out.Bytes())
}

// genericHelp describes a family of the Go runtime or the process that metricHelp does not.
func genericHelp(name string) string {
	switch {
	case strings.HasPrefix(name, "process_"):
		return "Process statistics (see the VictoriaMetrics/metrics package)."
	case strings.HasPrefix(name, "go_"):
		return "Go runtime statistics (see the runtime and runtime/metrics packages)."
	}
	return "wxgate statistics (see docs/operations.md, Metrics)."
}

// sortedKeys returns a map's keys in order, for stable metrics output.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
