package proxy_test

import (
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// reloadEnv is a test environment whose gateway logs to a buffer, with a short upstream idle
// time so that retired clients' cleaners end quickly.
func reloadEnv(t *testing.T) (*testEnv, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	e := startEnvWith(t, envOptions{
		edit: func(s string) string {
			return strings.Replace(s, "[upstream]\n", "[upstream]\nmax_idle_duration = \"1s\"\n", 1)
		},
		logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	return e, logs
}

// reloadText reloads the env's gateway with its config text edited by edit.
func (e *testEnv) reloadText(t *testing.T, edit func(string) string) error {
	t.Helper()
	return e.gw.Reload(func() (*policies.Config, error) { return policies.Parse([]byte(edit(e.text)), "testdata") })
}

// lastLine is the last log line holding s.
func lastLine(logs *syncBuffer, s string) string {
	var last string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, s) {
			last = line
		}
	}
	return last
}

const shopAppID = "wx00000000000000a1"

// TestReloadSwapsWhatChangedAndKeepsTheRest: each reload applies what the new config changed
// (routes, apps, upstream settings) and keeps the rest: an unchanged app keeps its access_token
// (no fetch from WeChat), new [upstream] settings bring new clients and token caches. A config
// that does not load is refused with every problem logged, restart-only settings are named and
// keep their values, and the reload metrics count both.
func TestReloadSwapsWhatChangedAndKeepsTheRest(t *testing.T) {
	e, logs := reloadEnv(t)
	same := func(s string) string { return s }
	e.warmToken()
	if n := e.emu.TokenFetches(shopAppID); n != 1 {
		t.Fatalf("%d token fetches after the warm-up, want 1", n)
	}
	// An identical config: nothing is rebuilt, the token stays.
	if err := e.reloadText(t, same); err != nil {
		t.Fatal(err)
	}
	e.warmToken()
	if n := e.emu.TokenFetches(shopAppID); n != 1 {
		t.Errorf("%d token fetches after an identical reload, want 1 (the token cache is kept)", n)
	}
	for _, want := range []string{"apps=3", "apps_added=0", "apps_removed=0", "apps_changed=0", "upstream_changed=false", "routes_changed=false"} {
		if line := lastLine(logs, "config reloaded"); !strings.Contains(line, want) {
			t.Errorf("reload line lacks %s: %s", want, line)
		}
	}

	// A route allowed by the new config is served; an app removed is refused by name; an app
	// whose forward_url changed keeps its token.
	if a := e.do("POST", "/wxa/another_allowed", []byte(`{}`)); a.wxgateError(t) != proxy.CodeUnknownRoute {
		t.Fatalf("before the reload: %d %s", a.Status, a.Body)
	}
	edit := func(s string) string {
		s = strings.Replace(s, `allow = ["/wxa/custom_allowed"]`, `allow = ["/wxa/custom_allowed", "/wxa/another_allowed"]`, 1)
		s = strings.Replace(s, "forward_url = \""+e.recv.url+"\"", "forward_url = \""+e.recv.url+"?shop\"", 1)
		i := strings.Index(s, "[[app]]\nname = \"plain\"")
		j := strings.Index(s[i+1:], "[[")
		return s[:i] + s[i+1+j:]
	}
	if err := e.reloadText(t, edit); err != nil {
		t.Fatal(err)
	}
	if a := e.do("POST", "/wxa/another_allowed", []byte(`{}`)); a.Status == 404 || strings.Contains(string(a.Body), proxy.CodeUnknownRoute) {
		t.Errorf("a route the reload allowed: %d %s", a.Status, a.Body)
	}
	if a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"warm-000001"}`), proxy.HeaderApp, "plain"); a.wxgateError(t) != proxy.CodeUnknownApp {
		t.Errorf("an app the reload removed: %d %s", a.Status, a.Body)
	}
	e.warmToken()
	if n := e.emu.TokenFetches(shopAppID); n != 1 {
		t.Errorf("%d token fetches after its forward_url changed, want 1", n)
	}
	for _, want := range []string{"apps=2", "apps_removed=1", "apps_changed=1", "routes_changed=true"} {
		if line := lastLine(logs, "config reloaded"); !strings.Contains(line, want) {
			t.Errorf("reload line lacks %s: %s", want, line)
		}
	}

	// New [upstream] settings: new clients, and new token caches (fetched once more).
	if err := e.reloadText(t, func(s string) string { return strings.Replace(edit(s), `timeout = "2s"`, `timeout = "3s"`, 1) }); err != nil {
		t.Fatal(err)
	}
	e.warmToken()
	if n := e.emu.TokenFetches(shopAppID); n != 2 {
		t.Errorf("%d token fetches after [upstream] changed, want 2", n)
	}
	if line := lastLine(logs, "config reloaded"); !strings.Contains(line, "upstream_changed=true") {
		t.Errorf("reload line: %s", line)
	}

	// A config with problems: every one logged, the running config keeps serving.
	err := e.reloadText(t, func(s string) string {
		return strings.Replace(strings.Replace(s, `appid = "wx00000000000000b2"`, `appid = "wx-bad"`, 1), "[forward]\n", "[forward]\nsecrte = \"x\"\n", 1)
	})
	if err == nil {
		t.Fatal("a config with problems was applied")
	}
	line := lastLine(logs, "config reload refused")
	for _, want := range []string{"problems=2", "app[1].appid", "forward.secrte"} {
		if !strings.Contains(line, want) {
			t.Errorf("refusal line lacks %s: %s", want, line)
		}
	}
	e.warmToken()
	if a := e.do("POST", "/wxa/another_allowed", []byte(`{}`)); strings.Contains(string(a.Body), proxy.CodeUnknownRoute) {
		t.Errorf("the refused reload changed the routes: %s", a.Body)
	}

	// Restart-only settings are named and keep their running values; the rest applies.
	if err := e.reloadText(t, func(s string) string {
		return strings.Replace(s, "max_body_bytes = 65536", "max_body_bytes = 1024", 1)
	}); err != nil {
		t.Fatal(err)
	}
	if line := lastLine(logs, "config reloaded"); !strings.Contains(line, "needs_restart=server.max_body_bytes") || !strings.Contains(line, "routes_changed=true") {
		t.Errorf("reload line: %s", line)
	}
	big := fmt.Sprintf(`{"env":0,"order_id":"warm-000001","pad":%q}`, strings.Repeat("x", 4096))
	if a := e.do("POST", "/xpay/query_order", []byte(big)); a.Status == 413 {
		t.Errorf("a restart-only limit changed on reload: %d %s", a.Status, a.Body)
	}

	for name, want := range map[string]float64{
		`wxgate_config_reloads_total{result="ok"}`:    4,
		`wxgate_config_reloads_total{result="error"}`: 1,
	} {
		if got := e.metric(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if ts := e.metric(t, "wxgate_config_last_reload_success_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last reload success at %v", ts)
	}
	for _, secret := range []string{"shop-app-secret-7f3a", "test-forward-secret-0123456789", "shop-prod-appkey-9c1d", "shop-push-token"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a secret")
		}
	}
}

// TestReloadLeavesNoGoroutines: 20 reloads that each replace the upstream clients, with WeChat
// and WeChat Pay calls between them, leave the goroutine count where one config has it: the
// replaced clients' connections are closed and their cleaners end.
func TestReloadLeavesNoGoroutines(t *testing.T) {
	e, _ := reloadEnv(t)
	round := func(i int) {
		timeout := []string{`timeout = "2s"`, `timeout = "3s"`}[i%2]
		if err := e.reloadText(t, func(s string) string { return strings.Replace(s, `timeout = "2s"`, timeout, 1) }); err != nil {
			t.Fatal(err)
		}
		e.warmToken()
		e.payJSAPI(t, "pk", fmt.Sprintf("reload-goroutines-%02d", i), 1)
	}
	round(0)
	base := runtime.NumGoroutine()
	// Calls run while the reloads swap the config under them (and the race detector watches).
	stop := make(chan struct{})
	var failed []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			req.Reset()
			req.SetRequestURI(e.appURL + "/xpay/query_order")
			req.Header.SetMethod("POST")
			req.SetBodyString(`{"env":0,"order_id":"warm-000001"}`)
			if err := e.client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				failed = append(failed, fmt.Sprintf("call %d: %v %d %s", i, err, resp.StatusCode(), resp.Body()))
			}
		}
	}()
	for i := 1; i <= 20; i++ {
		round(i)
	}
	close(stop)
	<-done
	if len(failed) > 0 {
		t.Errorf("%d calls failed during the reloads, first: %s", len(failed), failed[0])
	}
	deadline := time.Now().Add(30 * time.Second)
	for n := runtime.NumGoroutine(); n > base+4; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after 20 reloads, %d after the first:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond) // polling the goroutine count
	}
}

// TestReloadRefusesAConfigOverTheOpenFileLimit: a reload whose connection pools could exceed the
// process's open-file limit is refused like an invalid config.
func TestReloadRefusesAConfigOverTheOpenFileLimit(t *testing.T) {
	const text = `
[upstream]
max_conns_per_host = %d
[[app]]
name = "door"
appid = "wx00000000000000e5"
secret = "reload-fd-test-secret"
`
	parse := func(conns int) (*policies.Config, error) {
		return policies.Parse(fmt.Appendf(nil, text, conns), t.TempDir())
	}
	cfg, err := parse(64)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	g, err := proxy.NewGateway(cfg, proxy.Options{OpenFileLimit: uint64(proxy.DescriptorsNeeded(cfg)), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Reload(func() (*policies.Config, error) { return parse(64) }); err != nil {
		t.Fatalf("a config within the limit: %v", err)
	}
	if err := g.Reload(func() (*policies.Config, error) { return parse(65) }); err == nil || !strings.Contains(lastLine(logs, "config reload refused"), "open-file limit") {
		t.Fatalf("a config over the limit: %v\n%s", err, logs)
	}
}
