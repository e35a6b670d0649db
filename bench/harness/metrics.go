package harness

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Prometheus metrics the harness reads from wxgate's /metrics.
const (
	metricMallocs   = "go_memstats_mallocs_total"
	metricHeapInuse = "go_memstats_heap_inuse_bytes"
	metricSessions  = "wxgate_session_keys"
	// the signing slots' overload answers and longest wait
	metricSignOverloaded = "wxgate_sign_overloaded_total"
	metricSignWaitMax    = "wxgate_sign_wait_max_seconds"
	metricGOMAXPROCS     = "wxgate_gomaxprocs"
	metricSignWaitBucket = "wxgate_sign_wait_seconds_bucket"
	metricSignWaitCount  = "wxgate_sign_wait_seconds_count"
	// the RSA signatures computed and the CPU they took on wxgate's signing threads
	metricSignatures = "wxgate_signatures_total"
	metricSignCPU    = "wxgate_sign_cpu_seconds_total"
)

// runMetrics are the counters read from wxgate's /metrics before and after every run (row.readMetrics).
var runMetrics = []string{metricMallocs, metricSignatures, metricSignCPU}

// scrape returns the value of a metric from a Prometheus text endpoint; name is the metric's name,
// with its labels as wxgate writes them when it has any (name{le="0.05"}).
func scrape(url, name string) (float64, bool) {
	v, ok := scrapeAll(url, name)[name]
	return v, ok
}

// scrapeAll reads several metrics in one request (each request costs the endpoint allocations,
// which the allocations per request include); a metric the endpoint lacks is missing from the map.
func scrapeAll(url string, names ...string) map[string]float64 {
	out := make(map[string]float64, len(names))
	status, body, err := fasthttp.GetTimeout(nil, url, 10*time.Second)
	if err != nil || status != fasthttp.StatusOK {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			rest, ok := strings.CutPrefix(line, name+" ")
			if !ok {
				continue
			}
			if v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64); err == nil {
				out[name] = v
			}
		}
	}
	return out
}
