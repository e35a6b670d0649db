package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/bench/procstat"
	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

func TestGeneratedConfigLoads(t *testing.T) {
	dir := t.TempDir()
	m, err := newMaterial(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	gc := gateConfig{
		AppListen: "127.0.0.1:0", CallbackListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		Weixin: "http://127.0.0.1:1", Mch: "https://127.0.0.1:2", PublicKeyID: placeholderKeyID,
		ForwardURL: "http://127.0.0.1:3/events", Apps: m.apps,
	}
	path := filepath.Join(dir, "wxgate.toml")
	if err := os.WriteFile(path, []byte(m.render(gc)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := policies.Load(path)
	if err != nil {
		t.Fatalf("the generated config does not load: %v\n%s", err, m.render(gc))
	}
	if len(cfg.Apps) != 3 || len(cfg.Merchants) != 1 || cfg.Merchants[0].MchID != mchID || cfg.Apps[2].Name != "app2" {
		t.Fatalf("apps %d merchants %d", len(cfg.Apps), len(cfg.Merchants))
	}
	if cfg.Server.SignPriority != policies.SignPriorityLow {
		t.Errorf("without -sign-priority the config keeps wxgate's default, got %q", cfg.Server.SignPriority)
	}
	if cfg.Server.SignMaxWait != policies.DefaultSignMaxWait {
		t.Errorf("the closed loops must run with wxgate's default sign_max_wait %v, got %v", policies.DefaultSignMaxWait, cfg.Server.SignMaxWait)
	}
	if cfg.Store.Kind != policies.StoreMemory {
		t.Errorf("without a Store the generated config must say kind = \"memory\" (wxgate's default is disk), got %q", cfg.Store.Kind)
	}
	for _, c := range []struct{ body, kind, dir string }{
		{diskStoreConfig("state"), policies.StoreDisk, filepath.Join(dir, "state")},
		{redisStoreConfig("127.0.0.1:6399"), policies.StoreRedis, ""},
	} {
		gc := gc
		gc.Store = c.body
		if err := os.WriteFile(path, []byte(m.render(gc)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := policies.Load(path)
		if err != nil {
			t.Fatalf("[store] %s: %v", c.body, err)
		}
		if cfg.Store.Kind != c.kind || (c.dir != "" && cfg.Store.Dir != c.dir) {
			t.Errorf("[store] %s: kind %q dir %q, want %q %q", c.body, cfg.Store.Kind, cfg.Store.Dir, c.kind, c.dir)
		}
		if c.kind == policies.StoreRedis && cfg.Store.RedisURL.Value() != "redis://127.0.0.1:6399" {
			t.Errorf("redis_url %q", cfg.Store.RedisURL.Value())
		}
	}
	m.signPriority = policies.SignPriorityNormal
	if err := os.WriteFile(path, []byte(m.render(gc)), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = policies.Load(path); err != nil || cfg.Server.SignPriority != policies.SignPriorityNormal {
		t.Fatalf("-sign-priority normal: %v, sign_priority %q", err, cfg.Server.SignPriority)
	}
}

func TestXpayBodiesHaveTheSizeAndSignatures(t *testing.T) {
	app := &xpayApp{creds: appCreds{Name: "app0"}, key: signer.NewXpayKey("appkey"), token: "TOKEN",
		users: []xpayUser{{"oUser1", "c2Vzc2lvbmtleTEyMzQ1Ng=="}, {"oUser2", "c2Vzc2lvbmtleTY1NDMyMQ=="}}}
	for _, size := range []int{256, 4096} {
		signed := newXpayLoad([]*xpayApp{app}, size, true, 2)
		plain := newXpayLoad([]*xpayApp{app}, size, false, 2)
		seen := map[string]bool{}
		for i := range 6 {
			req := fasthttp.AcquireRequest()
			signed.build(i%2, req)
			body := req.Body()
			var b struct {
				OpenID  string `json:"openid"`
				OrderID string `json:"order_id"`
			}
			if len(body) != size || json.Unmarshal(body, &b) != nil {
				t.Fatalf("body of %d bytes (want %d): %s", len(body), size, body)
			}
			if seen[b.OrderID] || len(b.OrderID) < 8 || len(b.OrderID) > 32 {
				t.Fatalf("order_id %q repeated or not 8..32 characters", b.OrderID)
			}
			seen[b.OrderID] = true
			q, _ := url.ParseQuery(string(req.URI().QueryString()))
			key := app.users[slices.IndexFunc(app.users, func(u xpayUser) bool { return u.openid == b.OpenID })].sessionKey
			if q.Get("access_token") != "TOKEN" || string(req.URI().Path()) != currencyPayPath ||
				!app.key.VerifyPaySig([]byte(q.Get("pay_sig")), currencyPayPath, body) ||
				!signer.VerifyUserSignature([]byte(q.Get("signature")), key, body) {
				t.Fatalf("signed request %s does not verify", req.URI())
			}
			fasthttp.ReleaseRequest(req)
			req = fasthttp.AcquireRequest()
			plain.build(0, req)
			if len(req.URI().QueryString()) != 0 || string(req.Header.Peek("X-Wxgate-App")) != "app0" {
				t.Fatalf("plain request %s carries signatures or no app", req.URI())
			}
			fasthttp.ReleaseRequest(req)
		}
	}
}

func TestSessionFillerPostsEachKeyOnce(t *testing.T) {
	b := sessionFiller(10, 13)
	var openids []string
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	for b(0, req) {
		var in struct{ OpenID, SessionKey string }
		if err := json.Unmarshal(req.Body(), &struct {
			OpenID     *string `json:"openid"`
			SessionKey *string `json:"session_key"`
		}{&in.OpenID, &in.SessionKey}); err != nil {
			t.Fatal(err)
		}
		if len(in.OpenID) != 28 || len(in.SessionKey) != 24 {
			t.Fatalf("openid %q session_key %q", in.OpenID, in.SessionKey)
		}
		openids = append(openids, in.OpenID)
		req.Reset()
	}
	if len(openids) != 3 || openids[0] == openids[1] {
		t.Fatalf("posted %v", openids)
	}
	if got := sessionSteps(1_000_000); !slices.Equal(got, []int{1000, 10000, 100000, 1000000}) {
		t.Fatalf("steps %v", got)
	}
	if got := sessionSteps(50_000); !slices.Equal(got, []int{1000, 10000, 50000}) {
		t.Fatalf("steps %v", got)
	}
}

func TestRatiosAndVerdicts(t *testing.T) {
	res := func(n uint64, errs uint64) *loadgen.Result {
		return &loadgen.Result{Requests: n, Errors: errs, Elapsed: time.Second}
	}
	s := &section{rows: []row{
		{col: column{name: colBare, pid: 1}, res: res(1000, 0), cpu: 100 * time.Millisecond, measured: true},
		{col: column{name: colWxgate, pid: 2}, res: res(900, 0), cpu: 120 * time.Millisecond, measured: true},
		{col: column{name: colNginx, skip: nginxInstallHint}},
	}}
	s.addRatios(true)
	if len(s.targets) != 2 {
		t.Fatalf("targets %+v", s.targets)
	}
	cpu, vsNginx := s.targets[0], s.targets[1]
	if !cpu.ok || cpu.value < 1.33 || cpu.value > 1.34 || cpu.verdict() != "**missed**" {
		t.Errorf("CPU ratio %+v %s", cpu, cpu.verdict())
	}
	if vsNginx.ok || vsNginx.verdict() != "n/a" {
		t.Errorf("a skipped nginx column must give n/a, got %+v", vsNginx)
	}
	s.rows[0].res.Errors = 1
	if r := ratio(&s.rows[1], &s.rows[0], (*row).rps); r.ok {
		t.Error("a column with failed requests must not give a ratio")
	}
}

func TestNotificationPoolsSplitFreshOnesBetweenRounds(t *testing.T) {
	p := &notificationPool{}
	for i := range 5 {
		p.items = append(p.items, notification{path: "/callbacks/x?i=" + string(rune('a'+i)), body: []byte{byte(i)}})
	}
	drain := func(b loadgen.Builder, max int) []byte {
		var got []byte
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		for len(got) < max && b(0, req) {
			got = append(got, req.Body()[0])
			req.Reset()
		}
		return got
	}
	if got := drain(p.fresh(0, 2), 10); string(got) != "\x00\x01" {
		t.Errorf("round 0 of 2 sent %v", got)
	}
	if got := drain(p.fresh(1, 2), 10); string(got) != "\x02\x03\x04" {
		t.Errorf("round 1 of 2 sent %v", got)
	}
	if got := drain(p.cycled("", ""), 7); string(got) != "\x00\x01\x02\x03\x04\x00\x01" {
		t.Errorf("cycled sent %v", got)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	p.cycled("/callbacks/x", pathDirectPush)(0, req)
	if got := string(req.RequestURI()); got != pathDirectPush+"?i=a" {
		t.Errorf("direct rewrite gave %q", got)
	}
}

func TestRoundsAddUp(t *testing.T) {
	result := func(requests uint64, lat time.Duration) *loadgen.Result {
		r := &loadgen.Result{Requests: requests, Elapsed: time.Second, ByStatus: map[int]*loadgen.Histogram{200: {}}}
		for range requests {
			r.Latency.Record(lat)
			r.Lag.Record(lat / 2)
			r.Service.Record(lat / 2)
			r.ByStatus[200].Record(lat)
		}
		return r
	}
	a := row{col: column{name: colWxgate, pid: 1}, res: result(100, time.Millisecond), cpu: 10 * time.Millisecond, measured: true, mallocs: 200, allocsSrc: "²", peakRSS: 5,
		signed: 100, signCPU: 70 * time.Millisecond, machine: procstat.MachineTimes{Busy: time.Second, Idle: time.Second}}
	b := row{col: a.col, res: result(300, 9*time.Millisecond), cpu: 30 * time.Millisecond, measured: true, mallocs: 600, allocsSrc: "²", peakRSS: 7,
		signed: 300, signCPU: 250 * time.Millisecond, machine: procstat.MachineTimes{Busy: 2 * time.Second, Steal: time.Second}}
	b.res.Errors, b.res.Samples = 1, []string{"x"}
	a.merge(b)
	if a.res.Requests != 400 || a.res.Errors != 1 || a.rps() != 200 || a.cpuPerReq() != 100*time.Microsecond || a.peakRSS != 7 || a.allocsReq() != "2.0²" {
		t.Fatalf("merged %+v %+v rps %v cpu %v allocs %s", a, *a.res, a.rps(), a.cpuPerReq(), a.allocsReq())
	}
	// Every histogram holds both rounds' samples (the slow round's dominate the p99).
	for name, h := range map[string]*loadgen.Histogram{"latency": &a.res.Latency, "lag": &a.res.Lag, "service": &a.res.Service, "200": a.res.ByStatus[200]} {
		if h.Count() != 400 || h.Quantile(0.99) < 4*time.Millisecond {
			t.Errorf("merged %s histogram: %d samples, p99 %v; want 400, from the second round", name, h.Count(), h.Quantile(0.99))
		}
	}
	if a.signed != 400 || a.signCPU != 320*time.Millisecond {
		t.Errorf("merged signatures %v taking %v, want 400 taking 320ms", a.signed, a.signCPU)
	}
	if got := a.machine.BusyShare(); got != 0.8 {
		t.Errorf("merged machine busy share %v, want 0.8 (4 s of 5)", got)
	}
}

func TestPacedNote(t *testing.T) {
	paced := func(lag, service time.Duration, busy float64) *row {
		r := &row{res: &loadgen.Result{}, machine: procstat.MachineTimes{Busy: time.Duration(busy * float64(time.Second)), Idle: time.Duration((1 - busy) * float64(time.Second))}}
		for range 100 {
			r.res.Lag.Record(lag)
			r.res.Service.Record(service)
		}
		return r
	}
	d, g := paced(time.Millisecond, 2*time.Millisecond, 0.5), paced(40*time.Millisecond, 3*time.Millisecond, 0.99)
	d.col.name, g.col.name = colDirect, colWxgate
	note := pacedNote([]*row{d, g})
	for _, want := range []string{"p99 1.00 ms (direct), 40.", "p99 is 2.00 ms direct, 3.", "through wxgate (+1.", "busy 50% of the direct run (steal 0%), 99% of the wxgate run (steal 0%)"} {
		if !strings.Contains(note, want) {
			t.Errorf("pacedNote lacks %q:\n%s", want, note)
		}
	}
}

func TestStealNote(t *testing.T) {
	cores := runtime.NumCPU()
	note := stealNote(time.Duration(cores)*300*time.Millisecond, 3*time.Second)
	if !strings.Contains(note, "(10.0%)") || !strings.Contains(note, fmt.Sprintf("× %d cores", cores)) {
		t.Fatalf("stealNote: %q; want 10.0%% of %d cores", note, cores)
	}
	if note := stealNote(0, 3*time.Second); !strings.Contains(note, ": none of 3.00 s") {
		t.Fatalf("stealNote without steal: %q", note)
	}
}

// TestGeneratedMerchantsLoad: a config of several generated merchants loads in wxgate and in
// the emulator, each merchant with its own key, and the JSAPI load cycles through all of them,
// naming each in X-Wxgate-Merchant with its own mchid in the body.
func TestGeneratedMerchantsLoad(t *testing.T) {
	dir := t.TempDir()
	m, err := newMaterial(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	more, err := m.moreMerchants(3)
	if err != nil {
		t.Fatal(err)
	}
	merchants := append([]merchantCreds{m.mainMerchant()}, more...)
	gc := gateConfig{
		AppListen: "127.0.0.1:0", CallbackListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		Weixin: "http://127.0.0.1:1", Mch: "https://127.0.0.1:2", PublicKeyID: placeholderKeyID,
		ForwardURL: "http://127.0.0.1:3/events", Apps: m.apps, Merchants: merchants,
	}
	path := filepath.Join(dir, "wxgate.toml")
	if err := os.WriteFile(path, []byte(m.render(gc)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := policies.Load(path)
	if err != nil {
		t.Fatalf("the generated config does not load: %v", err)
	}
	if len(cfg.Merchants) != len(merchants) {
		t.Fatalf("%d merchants loaded, want %d", len(cfg.Merchants), len(merchants))
	}
	keys := map[string]bool{}
	for i, mc := range cfg.Merchants {
		if mc.Name != merchants[i].Name || mc.MchID != merchants[i].MchID || mc.SerialNo != merchants[i].Serial {
			t.Errorf("merchant %d: %s %s %s, want %+v", i, mc.Name, mc.MchID, mc.SerialNo, merchants[i])
		}
		keys[mc.Keys().PrivateKey.N.String()] = true
	}
	if len(keys) != len(merchants) {
		t.Errorf("%d distinct private keys among %d merchants", len(keys), len(merchants))
	}
	ec, err := emulator.ConfigFromPolicies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ec.PayKey = m.payKey
	if _, err := emulator.New(ec); err != nil {
		t.Fatalf("the emulator refuses the generated merchants: %v", err)
	}

	const conns = 2
	l := &v3Load{appID: m.apps[0].AppID, openid: "oPayer", tag: "t", seq: make([]uint64, conns), next: make([]int, conns), merchants: merchants}
	seen := map[string]int{}
	for i := range 2 * len(merchants) {
		req := fasthttp.AcquireRequest()
		if !l.build(i%conns, req) {
			t.Fatal("build refused")
		}
		name := string(req.Header.Peek(proxy.HeaderMerchant))
		var body struct {
			MchID string `json:"mchid"`
		}
		if err := json.Unmarshal(req.Body(), &body); err != nil {
			t.Fatalf("order %d: %v: %s", i, err, req.Body())
		}
		found := false
		for _, mc := range merchants {
			if mc.Name == name {
				found = true
				if body.MchID != mc.MchID {
					t.Errorf("order for %s carries mchid %s, want %s", name, body.MchID, mc.MchID)
				}
			}
		}
		if !found {
			t.Errorf("order %d names merchant %q", i, name)
		}
		seen[name]++
		fasthttp.ReleaseRequest(req)
	}
	for _, mc := range merchants {
		if seen[mc.Name] != 2 {
			t.Errorf("merchant %s got %d of %d orders, want 2 each: %v", mc.Name, seen[mc.Name], 2*len(merchants), seen)
		}
	}
}

// TestLoopCeilingKeepsTheBestRun: only the first run is fast (later calls sleep), so the best
// run is about three times the mean over all runs; an average of the runs would be near the
// mean. A failing operation gives no ceiling.
func TestLoopCeilingKeepsTheBestRun(t *testing.T) {
	const d = 20 * time.Millisecond
	var n atomic.Int64
	start := time.Now()
	rate := loopCeiling(d, func() error {
		n.Add(1)
		if time.Since(start) > d {
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	mean := float64(n.Load()) / time.Since(start).Seconds()
	if rate < 2*mean {
		t.Fatalf("ceiling %.0f/s, mean over the %d runs %.0f/s: want the best run (about 3x the mean)", rate, ceilingRuns, mean)
	}
	if r := loopCeiling(time.Millisecond, func() error { return errors.New("broken") }); r != 0 {
		t.Fatalf("failing op: ceiling %.0f, want 0", r)
	}
}

// TestSigningBound: the JSAPI floor adds the signature, the answer's verification and the bare
// hop, and reads wxgate's CPU against it; a missing measurement gives no note.
func TestSigningBound(t *testing.T) {
	procs := float64(gomaxprocs())
	perSecond := func(d time.Duration) float64 { return procs / d.Seconds() } // a ceiling whose op costs d
	res := &loadgen.Result{Requests: 1000, Elapsed: time.Second}
	gate := &row{col: column{name: colWxgate}, res: res, cpu: 1100 * time.Millisecond, measured: true} // 1.1 ms per order
	bare := &row{col: column{name: colBare}, res: res, cpu: 160 * time.Millisecond, measured: true}    // 160 µs per order
	sign, verify := perSecond(800*time.Microsecond), perSecond(40*time.Microsecond)
	notes := signingBound(gate, bare, sign, verify, 0.85)
	if len(notes) != 1 {
		t.Fatalf("notes %q", notes)
	}
	for _, want := range []string{"= **0.80x** of the ceiling", "is **1.10x** that floor", "800 µs ÷ 1.00 ms", "at most 141 µs together"} {
		if !strings.Contains(notes[0], want) {
			t.Errorf("note lacks %q:\n%s", want, notes[0])
		}
	}
	for name, got := range map[string][]string{
		"no bare row":         signingBound(gate, nil, sign, verify, 0.85),
		"no verify ceiling":   signingBound(gate, bare, sign, 0, 0.85),
		"bare CPU unmeasured": signingBound(gate, &row{col: column{name: colBare}, res: res}, sign, verify, 0.85),
	} {
		if got != nil {
			t.Errorf("%s: got %q, want no note", name, got)
		}
	}
}

// TestRoundsNote: each round's difference to direct is listed per column, a failed round reads
// n/a, a skipped column is left out, and one round gives no note.
func TestRoundsNote(t *testing.T) {
	cols := []column{{name: colDirect}, {name: colBare}, {name: colWxgate}, {name: colNginx, skip: "not installed"}}
	ms := time.Millisecond
	rounds := [][]roundP99{
		{{due: 2 * ms, sent: ms, ok: true}, {due: 3 * ms, sent: ms, ok: true}, {due: ms, sent: 3 * ms, steal: 0.25, ok: true}, {}},
		{{due: 2 * ms, sent: ms, ok: true}, {}, {due: 5 * ms, sent: 2 * ms, ok: true}, {}},
	}
	note := roundsNote(cols, rounds)
	want := "bare +1.00 ms (0 µs), n/a; wxgate −1.00 ms (+2.00 ms), +3.00 ms (+1.00 ms)."
	if !strings.Contains(note, want) || strings.Contains(note, colNginx) || !strings.Contains(note, "wxgate 25%, 0%.") {
		t.Fatalf("roundsNote:\n%s\nwant it to contain %q, wxgate's steal per round and no nginx", note, want)
	}
	if note := roundsNote(cols, rounds[:1]); note != "" {
		t.Fatalf("one round gave a note: %q", note)
	}
}

// TestMedianAdded: the median of the clean rounds' differences to direct, odd and even counts;
// a round where either side failed is left out.
func TestMedianAdded(t *testing.T) {
	ms := time.Millisecond
	r := func(direct, other time.Duration, ok bool) []roundP99 {
		return []roundP99{{due: direct, ok: true}, {due: other, ok: ok}}
	}
	tests := []struct {
		rounds [][]roundP99
		want   time.Duration
		n      int
	}{
		{[][]roundP99{r(2*ms, 30*ms, true), r(5*ms, 4*ms, true), r(2*ms, 3*ms, true)}, ms, 3},
		{[][]roundP99{r(2*ms, 30*ms, true), r(5*ms, 4*ms, true), r(2*ms, 3*ms, true), r(ms, 3*ms, true)}, 1500 * time.Microsecond, 4},
		{[][]roundP99{r(2*ms, 30*ms, false), r(5*ms, 4*ms, true)}, -ms, 1},
		{nil, 0, 0},
	}
	for i, tt := range tests {
		if got, n := medianAdded(tt.rounds, 1); got != tt.want || n != tt.n {
			t.Errorf("case %d: medianAdded = %v over %d rounds, want %v over %d", i, got, n, tt.want, tt.n)
		}
	}
}

// TestMedianLeavesItsInput: the median of per-round p99s (the overload target) does not reorder
// the rounds, which the notes list in their order.
func TestMedianLeavesItsInput(t *testing.T) {
	ms := time.Millisecond
	rounds := []time.Duration{24 * ms, 3 * ms, 96 * ms, 2 * ms, 12 * ms}
	if got := median(rounds); got != 12*ms {
		t.Fatalf("median %v, want 12ms", got)
	}
	if rounds[0] != 24*ms || rounds[4] != 12*ms {
		t.Fatalf("median reordered its input: %v", rounds)
	}
	if got := joinDurs(rounds[:2]); got != "24.00 ms, 3.00 ms" {
		t.Fatalf("joinDurs = %q", got)
	}
}

// TestOverloadRoundsAddUp: each round's 503 p99 is kept apart in order, a round without 503s
// adds none, and the histograms of every round are added up.
func TestOverloadRoundsAddUp(t *testing.T) {
	round := func(busy int, lat time.Duration) *loadgen.Result {
		r := &loadgen.Result{Requests: uint64(busy) + 10, Elapsed: time.Second, ByStatus: map[int]*loadgen.Histogram{200: {}}}
		for range 10 {
			r.ByStatus[200].Record(100 * time.Millisecond)
		}
		if busy > 0 {
			r.ByStatus[503] = &loadgen.Histogram{}
			for range busy {
				r.ByStatus[503].Record(lat)
			}
		}
		return r
	}
	var r overloadRun
	r.add(round(100, 7*time.Millisecond))
	r.add(round(0, 0))
	r.add(round(100, 2*time.Millisecond))
	if len(r.busyP99) != 2 || r.busyP99[0] < 6*time.Millisecond || r.busyP99[1] > 3*time.Millisecond {
		t.Fatalf("per-round 503 p99s %v; want two, the 7 ms round first", r.busyP99)
	}
	if r.res.Requests != 230 || r.res.ByStatus[503].Count() != 200 || r.res.ByStatus[200].Count() != 30 || r.res.Elapsed != 3*time.Second {
		t.Fatalf("added up: %d requests, %d 503s, %d 200s over %v", r.res.Requests, r.res.ByStatus[503].Count(), r.res.ByStatus[200].Count(), r.res.Elapsed)
	}
}

// TestTargetValueShowsTheDecimalThatDecides: a value that two decimals would print equal to a
// limit it misses (or only just meets) gets the decimals that tell them apart.
func TestTargetValueShowsTheDecimalThatDecides(t *testing.T) {
	for _, c := range []struct {
		value, limit float64
		want         string
	}{
		{0.846, 0.85, "0.846x"},
		{0.8504, 0.85, "0.8504x"},
		{0.85, 0.85, "0.85x"},
		{0.80, 0.85, "0.80x"},
		{1.111, 1.2, "1.11x"},
		{0.84999, 0.85, "0.8500x"}, // four decimals at most; the verdict still says missed
	} {
		tc := targetCheck{value: c.value, limit: c.limit, unit: "x", ok: true}
		if got := tc.value2(); got != c.want {
			t.Errorf("value %v against %v: %q, want %q", c.value, c.limit, got, c.want)
		}
	}
}

// TestInRunSigning: the target reads the signatures' CPU during the run against wxgate's CPU per
// order, and the note compares the signature's cost with the one measured alone.
func TestInRunSigning(t *testing.T) {
	procs := float64(gomaxprocs())
	res := &loadgen.Result{Requests: 1000, Elapsed: time.Second}
	// 1000 orders, 1000 signatures of 900 µs each, 1 ms of wxgate CPU per order; alone a
	// signature took 750 µs.
	gate := &row{col: column{name: colWxgate}, res: res, cpu: time.Second, measured: true, signed: 1000, signCPU: 900 * time.Millisecond}
	// The bare hop costs 60 µs and a verification 40 µs: the floor during the run is
	// 900 ÷ 1000 µs, and wxgate's 1 ms per order is exactly that floor.
	bare := &row{col: column{name: colBare}, res: res, cpu: 60 * time.Millisecond, measured: true}
	check, note := inRunSigning("v3 JSAPI", gate, bare, procs/750e-6, procs/40e-6, 0.85)
	if !check.ok || check.value != 0.9 || check.verdict() != "**met**" {
		t.Errorf("check %+v %s", check, check.verdict())
	}
	for _, want := range []string{"1000 of them (1.00 per order)", "took 900 µs of CPU each", "1.20x the 750 µs", "would have reached **0.83x** of the ceiling measured alone",
		"90% of wxgate's CPU per order (1.00 ms)", "is **0.90x** of the ceiling during the run", "900 µs ÷ 1.00 ms = **0.90x**", "is **1.00x** that floor"} {
		if !strings.Contains(note, want) {
			t.Errorf("note lacks %q:\n%s", want, note)
		}
	}
	for name, g := range map[string]*row{
		"no signatures counted": {col: column{name: colWxgate}, res: res, cpu: time.Second, measured: true},
		"failed run":            {col: column{name: colWxgate}},
	} {
		if check, note := inRunSigning("v3 JSAPI", g, bare, procs/750e-6, procs/40e-6, 0.85); check.ok || note != "" || check.verdict() != "n/a" {
			t.Errorf("%s: %+v %q, want n/a and no note", name, check, note)
		}
	}
	if _, note := inRunSigning("v3 JSAPI", gate, nil, procs/750e-6, procs/40e-6, 0.85); note == "" || strings.Contains(note, "floor") {
		t.Errorf("without a bare row the note keeps the in-run ceiling and leaves out the floor:\n%s", note)
	}
}

// TestScrapeAllReadsOneRequest: several metrics come from one request to a real endpoint;
// labelled lines and prefixes of other names do not match, and a missing one is left out.
func TestScrapeAllReadsOneRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		hits.Add(1)
		ctx.SetBodyString("# HELP wxgate_signatures_total x\nwxgate_signatures_total 12\nwxgate_signatures_total_extra 99\n" +
			"wxgate_sign_cpu_seconds_total 0.009500\nwxgate_sign_wait_seconds_bucket{le=\"0.001\"} 3\n")
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	endpoint := "http://" + ln.Addr().String() + "/metrics"
	got := scrapeAll(endpoint, metricSignatures, metricSignCPU, metricMallocs)
	want := map[string]float64{metricSignatures: 12, metricSignCPU: 0.0095}
	if len(got) != len(want) || got[metricSignatures] != 12 || got[metricSignCPU] != 0.0095 || hits.Load() != 1 {
		t.Errorf("scrapeAll = %v after %d requests, want %v after 1", got, hits.Load(), want)
	}
	var r row
	r.readMetrics(map[string]float64{metricMallocs: 10, metricSignatures: 2, metricSignCPU: 0.001},
		map[string]float64{metricMallocs: 30, metricSignatures: 12, metricSignCPU: 0.0095})
	if r.mallocs != 20 || r.allocsSrc != "¹" || r.signed != 10 || r.signCPU != 8500*time.Microsecond {
		t.Errorf("readMetrics: mallocs %v (%q), signed %v, signCPU %v", r.mallocs, r.allocsSrc, r.signed, r.signCPU)
	}
	var none row
	none.readMetrics(map[string]float64{metricMallocs: 10}, map[string]float64{})
	if none.allocsSrc != "" || none.signed != 0 {
		t.Errorf("a reading missing after the run must leave the row unmeasured: %+v", none)
	}
}

// TestParseBenchAndTheZeroAllocationTarget reads real go test -bench -benchmem output: names
// keep their package and sub-benchmark and lose the GOMAXPROCS suffix; the target is met at the
// stdlib floor for RSA and zero elsewhere, missed by a signer that allocates or RSA above its
// floor, and not judged when a signer was not measured.
func TestParseBenchAndTheZeroAllocationTarget(t *testing.T) {
	out, err := os.ReadFile("testdata/gotest_bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	results, err := parseBench(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 17 {
		t.Fatalf("%d results, want 17", len(results))
	}
	byName := map[string]microResult{}
	for _, r := range results {
		byName[r.name] = r
	}
	if r := byName["signer.BenchmarkV2Sign/HMAC-SHA256"]; r.nsPerOp != 592.1 || r.allocsPerOp != 0 {
		t.Errorf("V2Sign/HMAC-SHA256: %+v", r)
	}
	if r := byName["signer.BenchmarkAEADOpen"]; r.mbPerS != 762.5 || r.bytesPerOp != 0 || r.nsPerOp != 1070 {
		t.Errorf("AEADOpen: %+v", r)
	}
	if r := byName["proxy.BenchmarkValidJSON/wxgate/256B"]; r.mbPerS != 1295 {
		t.Errorf("ValidJSON: %+v", r)
	}
	if r := byName["signer.BenchmarkRSAVerify"]; r.allocsPerOp != 9 || r.bytesPerOp != 1376 {
		t.Errorf("RSAVerify: %+v", r)
	}

	if c := zeroAllocCheck(results); !c.ok || c.verdict() != "**met**" || c.value != 0 {
		t.Errorf("genuine results: %+v %s", c, c.verdict())
	}
	with := func(name string, allocs float64) []microResult {
		changed := append([]microResult(nil), results...)
		for i := range changed {
			if changed[i].name == name {
				changed[i].allocsPerOp = allocs
			}
		}
		return changed
	}
	if c := zeroAllocCheck(with("signer.BenchmarkPaySig", 7)); c.verdict() != "**missed**" || c.value != 7 || !strings.Contains(c.remark, "BenchmarkPaySig 7") {
		t.Errorf("an allocating signer: %+v %s", c, c.verdict())
	}
	if c := zeroAllocCheck(with("signer.BenchmarkRSAVerify", 10)); c.verdict() != "**missed**" || c.value != 1 {
		t.Errorf("RSA verify one above its floor: %+v %s", c, c.verdict())
	}
	if c := zeroAllocCheck(with("signer.BenchmarkPushDecrypt", 5)); c.verdict() != "**met**" {
		t.Errorf("the string-returning decrypt is not held to zero: %+v", c)
	}
	var without []microResult
	for _, r := range results {
		if r.name != "proxy.BenchmarkSignXpay" {
			without = append(without, r)
		}
	}
	if c := zeroAllocCheck(without); c.ok || c.verdict() != "n/a" || !strings.Contains(c.why, "proxy.BenchmarkSignXpay") {
		t.Errorf("a signer not measured: %+v %s", c, c.verdict())
	}
	if _, err := parseBench([]byte("pkg: x\nBenchmarkA-2 10 5 ns/op\n")); err == nil {
		t.Error("a line without allocs/op (no -benchmem) parses")
	}
}

// TestOverloadConnsHoldTheAdmittedQueue: the overload run opens a connection for every request
// the signing can hold within sign_max_wait at the ceiling, plus room for the refusals, and never
// more than the load generator allows.
func TestOverloadConnsHoldTheAdmittedQueue(t *testing.T) {
	for _, c := range []struct {
		ceiling float64
		wait    time.Duration
		want    int
	}{
		{2000, time.Second, 2512},
		{1500, 250 * time.Millisecond, 887},
		{10000, time.Second, loadgen.MaxConns},
	} {
		if got := overloadConns(c.ceiling, c.wait); got != c.want {
			t.Errorf("ceiling %.0f/s, sign_max_wait %v: %d connections, want %d", c.ceiling, c.wait, got, c.want)
		}
	}
}
