package proxy

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/internal/signing"
	"github.com/wxgate/wxgate/policies"
)

// metrics counts what the gateway does. Counters only; no label carries request data.
type metrics struct {
	// requests[kind][class] counts answers by route kind (0 = helpers) and status class 1xx..5xx.
	requests          [policies.RouteKindCount][6]atomic.Uint64
	signatureFailures atomic.Uint64
	staleRetries      atomic.Uint64
	sessionsCaptured  atomic.Uint64
	overloaded        atomic.Uint64
	errors            codeCounter
	callbacks         [len(callbackSources)][len(callbackOutcomes)]atomic.Uint64
	acceptFailures    [3]atomic.Uint64 // by listenerNames
	reloadsOK         atomic.Uint64
	reloadsFailed     atomic.Uint64
	lastReload        atomic.Int64 // unix seconds of the last config applied (start-up or reload)
}

// listenerNames are the listener label values, in the order of metrics.acceptFailures.
var listenerNames = [...]string{listenerApp, listenerCallback, listenerAdmin}

// acceptFailure is the counter of temporary accept failures of the listener called name.
func (m *metrics) acceptFailure(name string) *atomic.Uint64 {
	for i, n := range listenerNames {
		if n == name {
			return &m.acceptFailures[i]
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

func newMetrics() *metrics { return &metrics{} }

func (m *metrics) observe(kind policies.RouteKind, status int) {
	k := int(kind)
	if k < 0 || k >= len(m.requests) {
		k = 0
	}
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	m.requests[k][c].Add(1)
}

// codeCounter counts wxgate error codes (a small fixed set).
type codeCounter struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (c *codeCounter) inc(code string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]uint64{}
	}
	c.n[code]++
	c.mu.Unlock()
}

func (c *codeCounter) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// write renders the counters in the Prometheus text format.
func (g *Gateway) writeMetrics(w io.Writer) {
	m := g.metrics
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintln(w, "# HELP go_memstats_mallocs_total Heap objects allocated (for allocations per request).")
	fmt.Fprintln(w, "# TYPE go_memstats_mallocs_total counter")
	fmt.Fprintf(w, "go_memstats_mallocs_total %d\n", ms.Mallocs)
	fmt.Fprintln(w, "# HELP go_memstats_alloc_bytes_total Heap bytes allocated.")
	fmt.Fprintln(w, "# TYPE go_memstats_alloc_bytes_total counter")
	fmt.Fprintf(w, "go_memstats_alloc_bytes_total %d\n", ms.TotalAlloc)
	fmt.Fprintln(w, "# HELP go_memstats_heap_inuse_bytes Heap bytes in use.")
	fmt.Fprintln(w, "# TYPE go_memstats_heap_inuse_bytes gauge")
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\n", ms.HeapInuse)
	fmt.Fprintln(w, "# HELP wxgate_requests_total Answers on the app listener by route kind and status class.")
	fmt.Fprintln(w, "# TYPE wxgate_requests_total counter")
	for k := range m.requests {
		name := policies.RouteKind(k).String()
		if k == 0 {
			name = "helper"
		}
		for c := 1; c <= 5; c++ {
			if v := m.requests[k][c].Load(); v > 0 {
				fmt.Fprintf(w, "wxgate_requests_total{route=%q,code=\"%dxx\"} %d\n", name, c, v)
			}
		}
	}
	fmt.Fprintln(w, "# HELP wxgate_errors_total wxgate's own error answers by stable code.")
	fmt.Fprintln(w, "# TYPE wxgate_errors_total counter")
	errs := m.errors.snapshot()
	for _, c := range sortedKeys(errs) {
		fmt.Fprintf(w, "wxgate_errors_total{code=%q} %d\n", c, errs[c])
	}
	fmt.Fprintln(w, "# HELP wxgate_response_signature_failures_total WeChat Pay answers that failed verification and were not passed on.")
	fmt.Fprintln(w, "# TYPE wxgate_response_signature_failures_total counter")
	fmt.Fprintf(w, "wxgate_response_signature_failures_total %d\n", m.signatureFailures.Load())
	fmt.Fprintln(w, "# HELP wxgate_sign_overloaded_total Requests answered 503 because every RSA signing slot was busy.")
	fmt.Fprintln(w, "# TYPE wxgate_sign_overloaded_total counter")
	fmt.Fprintf(w, "wxgate_sign_overloaded_total %d\n", m.overloaded.Load())
	signed, signCPU := g.workers.Counted()
	fmt.Fprintln(w, "# HELP wxgate_signatures_total RSA signatures computed (v3 Authorization headers and payment parameters).")
	fmt.Fprintln(w, "# TYPE wxgate_signatures_total counter")
	fmt.Fprintf(w, "wxgate_signatures_total %d\n", signed)
	fmt.Fprintln(w, "# HELP wxgate_sign_cpu_seconds_total CPU time those RSA signatures took on the signing threads (Linux; 0 where a thread's CPU time cannot be read).")
	fmt.Fprintln(w, "# TYPE wxgate_sign_cpu_seconds_total counter")
	fmt.Fprintf(w, "wxgate_sign_cpu_seconds_total %.6f\n", signCPU.Seconds())
	fmt.Fprintln(w, "# HELP wxgate_gomaxprocs GOMAXPROCS now (raised while RSA signatures run, when wxgate serve chose it).")
	fmt.Fprintln(w, "# TYPE wxgate_gomaxprocs gauge")
	fmt.Fprintf(w, "wxgate_gomaxprocs %d\n", runtime.GOMAXPROCS(0))
	waits, waitSum, longest := g.signing.WaitStats()
	fmt.Fprintln(w, "# HELP wxgate_sign_wait_max_seconds The longest any request waited for an RSA signing slot since start (bounded by sign_max_wait).")
	fmt.Fprintln(w, "# TYPE wxgate_sign_wait_max_seconds gauge")
	fmt.Fprintf(w, "wxgate_sign_wait_max_seconds %.6f\n", longest.Seconds())
	fmt.Fprintln(w, "# HELP wxgate_sign_wait_seconds Waits for an RSA signing slot (requests that found every slot busy and joined the queue).")
	fmt.Fprintln(w, "# TYPE wxgate_sign_wait_seconds histogram")
	var cum uint64
	for i, le := range signing.WaitBuckets {
		cum += waits[i]
		fmt.Fprintf(w, "wxgate_sign_wait_seconds_bucket{le=\"%g\"} %d\n", le.Seconds(), cum)
	}
	cum += waits[len(signing.WaitBuckets)]
	fmt.Fprintf(w, "wxgate_sign_wait_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(w, "wxgate_sign_wait_seconds_sum %.6f\n", waitSum.Seconds())
	fmt.Fprintf(w, "wxgate_sign_wait_seconds_count %d\n", cum)
	fmt.Fprintln(w, "# HELP wxgate_callbacks_total Callbacks from WeChat by source and outcome (forwarded, duplicate, rejected, forward_failed).")
	fmt.Fprintln(w, "# TYPE wxgate_callbacks_total counter")
	for s := range m.callbacks {
		for o := range m.callbacks[s] {
			if v := m.callbacks[s][o].Load(); v > 0 {
				fmt.Fprintf(w, "wxgate_callbacks_total{source=%q,outcome=%q} %d\n", callbackSources[s], callbackOutcomes[o], v)
			}
		}
	}
	fmt.Fprintln(w, "# HELP wxgate_accept_failures_total Temporary accept failures (descriptors exhausted, ...) by listener; each was retried.")
	fmt.Fprintln(w, "# TYPE wxgate_accept_failures_total counter")
	for i, name := range listenerNames {
		fmt.Fprintf(w, "wxgate_accept_failures_total{listener=%q} %d\n", strings.TrimSuffix(name, " listener"), m.acceptFailures[i].Load())
	}
	fmt.Fprintln(w, "# HELP wxgate_stale_token_retries_total Calls retried after WeChat called the access_token stale.")
	fmt.Fprintln(w, "# TYPE wxgate_stale_token_retries_total counter")
	fmt.Fprintf(w, "wxgate_stale_token_retries_total %d\n", m.staleRetries.Load())
	fmt.Fprintln(w, "# HELP wxgate_session_keys_captured_total session_keys stored from jscode2session answers.")
	fmt.Fprintln(w, "# TYPE wxgate_session_keys_captured_total counter")
	fmt.Fprintf(w, "wxgate_session_keys_captured_total %d\n", m.sessionsCaptured.Load())
	st := g.store.Stats()
	if st.Sessions >= 0 { // the redis kind does not count them: a scan of every key
		fmt.Fprintln(w, "# HELP wxgate_session_keys Session keys currently stored.")
		fmt.Fprintln(w, "# TYPE wxgate_session_keys gauge")
		fmt.Fprintf(w, "wxgate_session_keys %d\n", st.Sessions)
	}
	fmt.Fprintln(w, "# HELP wxgate_store_up Whether the store (kind label) answered its last operation.")
	fmt.Fprintln(w, "# TYPE wxgate_store_up gauge")
	fmt.Fprintf(w, "wxgate_store_up{kind=%q} %d\n", st.Kind, boolInt(st.Up))
	fmt.Fprintln(w, "# HELP wxgate_store_errors_total Store operations that failed (unreachable, too slow, disk refused).")
	fmt.Fprintln(w, "# TYPE wxgate_store_errors_total counter")
	fmt.Fprintf(w, "wxgate_store_errors_total %d\n", st.Errors)
	fmt.Fprintln(w, "# HELP wxgate_config_reloads_total Config reloads (SIGHUP) by result: ok, or error when the new config was refused.")
	fmt.Fprintln(w, "# TYPE wxgate_config_reloads_total counter")
	fmt.Fprintf(w, "wxgate_config_reloads_total{result=\"ok\"} %d\n", m.reloadsOK.Load())
	fmt.Fprintf(w, "wxgate_config_reloads_total{result=\"error\"} %d\n", m.reloadsFailed.Load())
	fmt.Fprintln(w, "# HELP wxgate_config_last_reload_success_timestamp_seconds When the config now served was applied (start-up or the last successful reload).")
	fmt.Fprintln(w, "# TYPE wxgate_config_last_reload_success_timestamp_seconds gauge")
	fmt.Fprintf(w, "wxgate_config_last_reload_success_timestamp_seconds %d\n", m.lastReload.Load())
	fmt.Fprintln(w, "# HELP wxgate_token_fetches_total access_token fetches from WeChat by app.")
	fmt.Fprintln(w, "# TYPE wxgate_token_fetches_total counter")
	apps := g.current().apps
	for _, n := range sortedKeys(apps) {
		st := apps[n].tokens.Status()
		fmt.Fprintf(w, "wxgate_token_fetches_total{app=%q} %d\n", n, st.Fetches)
		fmt.Fprintf(w, "wxgate_token_force_refreshes_total{app=%q} %d\n", n, st.ForceRefreshes)
	}
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
