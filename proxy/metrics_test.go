package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxgate/wxgate/proxy"
)

// scrapeFamilies reads the gateway's /metrics with Prometheus's own text parser; text that does
// not parse fails the test.
func (e *testEnv) scrapeFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	a := e.doURL("GET", e.adminURL+"/metrics", nil)
	if a.Status != 200 || !strings.HasPrefix(a.Header["Content-Type"], "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %v", a.Status, a.Header)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(a.Body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, a.Body)
	}
	return fams
}

// sample is the value of the series of family with exactly labels (a histogram's count), or -1.
func sample(fams map[string]*dto.MetricFamily, family string, labels ...string) float64 {
	f := fams[family]
	if f == nil {
		return -1
	}
series:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels)/2 {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				continue series
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
		return m.GetUntyped().GetValue()
	}
	return -1
}

// TestMetricsExposition parses /metrics with Prometheus's text parser before and after the
// flows that move each family: the families have their types and HELP text, the bench
// harness's names are there, the new histograms count what happened, and the Grafana
// dashboard's queries name only families that exist.
func TestMetricsExposition(t *testing.T) {
	e := startEnv(t, nil)
	before := e.scrapeFamilies(t)
	for name, f := range before {
		if f.GetHelp() == "" || f.Type == nil {
			t.Errorf("family %s has no HELP text or TYPE", name)
		}
	}
	// The bench harness reads these (bench/harness/metrics.go); the reload's are always there.
	for _, name := range []string{"go_memstats_mallocs_total", "go_memstats_heap_inuse_bytes", "wxgate_session_keys", "wxgate_sign_overloaded_total",
		"wxgate_sign_wait_max_seconds", "wxgate_gomaxprocs", "wxgate_sign_wait_seconds", "wxgate_signatures_total", "wxgate_sign_cpu_seconds_total",
		"wxgate_config_reloads_total", "wxgate_config_last_reload_success_timestamp_seconds"} {
		if before[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if f := before["wxgate_build_info"]; f == nil || f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 1 {
		t.Errorf("wxgate_build_info: %v", f)
	} else if l := labelPairs(f.GetMetric()[0]); sample(before, "wxgate_build_info", l...) != 1 ||
		sample(before, "wxgate_build_info", "version", "dev", "goversion", runtime.Version(), "commit", "unknown") != 1 {
		t.Errorf("wxgate_build_info labels %v (a test binary has no VCS stamp: commit unknown)", l)
	}

	// The flows: a login, a user-signed xpay call, a bad request, a paid JSAPI order whose
	// notification is forwarded, a WeChat Pay answer that fails verification, a forged
	// callback and a forward to an app that is down.
	appID := e.cfg.Apps[0].AppID
	openid := e.login("metrics-bob")
	e.emu.Credit(appID, 0, openid, 100)
	if a := e.do("POST", "/xpay/currency_pay", []byte(`{"openid":"`+openid+`","env":0,"user_ip":"127.0.0.1","amount":10,"order_id":"met-pay-0001","payitem":"[]","remark":""}`)); a.Status != 200 {
		t.Fatalf("currency_pay: %d %s", a.Status, a.Body)
	}
	e.do("POST", "/xpay/query_order", []byte(`{"env":7}`))
	e.payJSAPI(t, "pk", "met-order-1", 100)
	e.recv.waitEvents(1, waitTime)
	e.emu.SendSignTest(1)
	if a := e.do("GET", "/v3/pay/transactions/out-trade-no/met-order-1?mchid=1900000001", nil, proxy.HeaderMerchant, "pk"); a.Status != 502 {
		t.Fatalf("SIGNTEST answer: %d %s", a.Status, a.Body)
	}
	e.doURL("POST", e.callbackURL+"/callbacks/wechatpay/pk", []byte(`{"id":"forged"}`),
		"Wechatpay-Timestamp", fmt.Sprint(time.Now().Unix()), "Wechatpay-Nonce", "n1", "Wechatpay-Serial", "00", "Wechatpay-Signature", "AAAA")
	e.recv.setUp(false)
	if acked, _, _, _ := e.emu.Deliver(e.v3Event(t, "met-fwd-1")); acked {
		t.Fatal("acknowledged while the app is down")
	}
	e.recv.setUp(true)

	after := e.scrapeFamilies(t)
	weixin := strings.TrimPrefix(e.emuAddr, "http://")
	mch := strings.TrimPrefix(e.mchAddr, "https://")
	moved := []struct {
		family string
		typ    dto.MetricType
		labels []string
	}{
		{"wxgate_requests_total", dto.MetricType_COUNTER, []string{"route", "xpay", "code", "2xx"}},
		{"wxgate_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route", "xpay", "code", "2xx"}},
		{"wxgate_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route", "code2session", "code", "2xx"}},
		{"wxgate_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route", "wechatpay_v3", "code", "5xx"}},
		{"wxgate_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route", "xpay", "code", "4xx"}},
		{"wxgate_errors_total", dto.MetricType_COUNTER, []string{"code", "wxgate.bad_env"}},
		{"wxgate_upstream_duration_seconds", dto.MetricType_HISTOGRAM, []string{"host", weixin, "api", "/xpay/currency_pay"}},
		{"wxgate_upstream_duration_seconds", dto.MetricType_HISTOGRAM, []string{"host", weixin, "api", "/sns/jscode2session"}},
		{"wxgate_upstream_duration_seconds", dto.MetricType_HISTOGRAM, []string{"host", weixin, "api", "/cgi-bin/stable_token"}},
		{"wxgate_upstream_duration_seconds", dto.MetricType_HISTOGRAM, []string{"host", mch, "api", "/v3/pay/transactions/jsapi"}},
		{"wxgate_upstream_errors_total", dto.MetricType_COUNTER, []string{"host", mch, "api", "/v3/pay/transactions/out-trade-no/*", "error", "signature_invalid"}},
		{"wxgate_response_signature_failures_total", dto.MetricType_COUNTER, nil},
		{"wxgate_callbacks_total", dto.MetricType_COUNTER, []string{"source", "wechatpay.v3", "outcome", "forwarded"}},
		{"wxgate_callback_duration_seconds", dto.MetricType_HISTOGRAM, []string{"source", "wechatpay.v3", "outcome", "forwarded"}},
		{"wxgate_callback_duration_seconds", dto.MetricType_HISTOGRAM, []string{"source", "wechatpay.v3", "outcome", "rejected"}},
		{"wxgate_callback_duration_seconds", dto.MetricType_HISTOGRAM, []string{"source", "wechatpay.v3", "outcome", "forward_failed"}},
		{"wxgate_forward_duration_seconds", dto.MetricType_HISTOGRAM, []string{"source", "wechatpay.v3", "outcome", "accepted"}},
		{"wxgate_forward_duration_seconds", dto.MetricType_HISTOGRAM, []string{"source", "wechatpay.v3", "outcome", "failed"}},
		{"wxgate_store_operation_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op", "get_session"}},
		{"wxgate_store_operation_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op", "put_session"}},
		{"wxgate_store_operation_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op", "claim"}},
		{"wxgate_store_operation_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op", "release"}},
		{"wxgate_store_operation_duration_seconds", dto.MetricType_HISTOGRAM, []string{"op", "delivered"}},
		{"wxgate_signatures_total", dto.MetricType_COUNTER, nil},
		{"wxgate_session_keys_captured_total", dto.MetricType_COUNTER, nil},
		{"go_memstats_mallocs_total", dto.MetricType_COUNTER, nil},
	}
	for _, m := range moved {
		f := after[m.family]
		if f == nil {
			t.Errorf("/metrics lacks %s after the flows", m.family)
			continue
		}
		if f.GetType() != m.typ || f.GetHelp() == "" {
			t.Errorf("%s: type %s help %q, want %s with a HELP text", m.family, f.GetType(), f.GetHelp(), m.typ)
		}
		was, now := max(sample(before, m.family, m.labels...), 0), sample(after, m.family, m.labels...)
		if now <= was {
			t.Errorf("%s%v did not move: %v then %v", m.family, m.labels, was, now)
		}
	}
	// No label value carries request data: the order numbers are not in any series.
	for name, f := range after {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "met-") || strings.Contains(l.GetValue(), openid) {
					t.Errorf("%s has a label from a request: %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	t.Run("the Grafana dashboard queries existing families", func(t *testing.T) {
		checkDashboard(t, "../deploy/grafana/wxgate.json", after)
	})
}

// labelPairs flattens a series' labels to name, value, ...
func labelPairs(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName(), l.GetValue())
	}
	return out
}

// metricName finds the metric names in a PromQL expression: identifiers of wxgate's or Go's.
var metricName = regexp.MustCompile(`\b(?:wxgate|go|process)_[a-z0-9_]+\b`)

// checkDashboard parses a Grafana dashboard and checks that every panel has a query and that
// every metric a query names is a family of fams (a histogram's _bucket, _sum and _count count).
func checkDashboard(t *testing.T, path string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s is not valid JSON: %v", path, err)
	}
	if dash.Title == "" || len(dash.Panels) < 8 {
		t.Fatalf("%s: title %q, %d panels", path, dash.Title, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				if fams[n] != nil {
					continue
				}
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				if f := fams[base]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
					t.Errorf("panel %q: %s is not on /metrics", p.Title, n)
				}
			}
		}
	}
}
