package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/bench/procstat"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// jsapiPath is the WeChat Pay API of the v3 runs.
const jsapiPath = "/v3/pay/transactions/jsapi"

// v3Load builds JSAPI orders.
type v3Load struct {
	appID, openid string
	publicKeyID   string
	tag           string
	seq           []uint64
	signer        *signer.RSASigner // signs in the load generator (direct); nil for wxgate
	serial        string
	presigned     []v3Signed // cycled through (bare, nginx): the emulator accepts a repeated order
	next          []int
	// merchants, when set, are cycled through request by request, each named in
	// X-Wxgate-Merchant (wxgate only); nil orders for the main merchant.
	merchants []merchantCreds
}

// v3Signed is one order the load generator signed before the run.
type v3Signed struct {
	body []byte
	auth string
}

func (h *harness) newV3Load(openid string, sign bool) *v3Load {
	return h.newV3LoadFor(openid, sign, h.opts.Conns)
}

// newV3LoadFor is newV3Load for a run of conns connections.
func (h *harness) newV3LoadFor(openid string, sign bool, conns int) *v3Load {
	l := &v3Load{appID: h.main.apps[0].AppID, openid: openid, publicKeyID: h.main.emuInfo.PublicKeyID, tag: randomHex(3),
		seq: make([]uint64, conns), next: make([]int, conns), serial: h.mat.merchantSerial}
	if sign {
		l.signer = signer.NewRSASigner(h.mat.merchantKey)
	}
	return l
}

// body returns a JSAPI order for the main merchant with a unique out_trade_no.
func (l *v3Load) body(conn int) []byte {
	return l.bodyFor(conn, mchID)
}

// bodyFor returns a JSAPI order for merchant mchid with a unique out_trade_no.
func (l *v3Load) bodyFor(conn int, mchid string) []byte {
	n := l.seq[conn]
	l.seq[conn]++
	b := make([]byte, 0, 320)
	b = append(b, `{"appid":"`...)
	b = append(b, l.appID...)
	b = append(b, `","mchid":"`...)
	b = append(b, mchid...)
	b = append(b, `","description":"bench","out_trade_no":"`...)
	b = append(b, l.tag...)
	b = strconv.AppendInt(append(b, 'c'), int64(conn), 10)
	b = strconv.AppendUint(append(b, 'n'), n, 10)
	b = append(b, `","notify_url":"https://127.0.0.1/notify","amount":{"total":1,"currency":"CNY"},"payer":{"openid":"`...)
	b = append(b, l.openid...)
	return append(b, `"}}`...)
}

// authorization signs a request as an app without wxgate does.
func (l *v3Load) authorization(body []byte) (string, error) {
	var nb [16]byte
	rand.Read(nb[:])
	nonce := strings.ToUpper(hex.EncodeToString(nb[:]))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := l.signer.AppendSign(nil, signer.AppendRequestMessage(nil, "POST", jsapiPath, ts, nonce, body))
	if err != nil {
		return "", err
	}
	return string(signer.AppendAuthorization(nil, mchID, nonce, string(sig), ts, l.serial)), nil
}

// presign signs n orders before a run.
func (l *v3Load) presign(n int) error {
	for i := range n {
		b := l.body(i % len(l.seq))
		auth, err := l.authorization(b)
		if err != nil {
			return err
		}
		l.presigned = append(l.presigned, v3Signed{b, auth})
	}
	return nil
}

// build fills req with connection conn's next order: plain (wxgate), pre-signed (bare, nginx)
// or signed now (direct).
func (l *v3Load) build(conn int, req *fasthttp.Request) bool {
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(jsapiPath)
	req.Header.SetContentType("application/json")
	req.Header.Set("Accept", "application/json")
	switch {
	case l.presigned != nil:
		s := l.presigned[(conn+l.next[conn]*len(l.seq))%len(l.presigned)]
		l.next[conn]++
		req.SetBody(s.body)
		req.Header.Set("Authorization", s.auth)
	case l.signer != nil:
		b := l.body(conn)
		auth, err := l.authorization(b)
		if err != nil {
			return false
		}
		req.SetBody(b)
		req.Header.Set("Authorization", auth)
	case l.merchants != nil:
		// Connection conn's n-th order goes to merchant (conn + n × conns) mod N, so the
		// connections together cycle through every merchant.
		mc := l.merchants[(uint64(conn)+l.seq[conn]*uint64(len(l.seq)))%uint64(len(l.merchants))]
		req.SetBody(l.bodyFor(conn, mc.MchID))
		req.Header.Set(proxy.HeaderMerchant, mc.Name)
		return true
	default:
		req.SetBody(l.body(conn))
		return true
	}
	req.Header.Set("Wechatpay-Serial", l.publicKeyID)
	return true
}

// checkPrepay refuses an answer without a prepay_id.
func checkPrepay(resp *fasthttp.Response) error {
	if !bytes.Contains(resp.Body(), []byte(`"prepay_id"`)) {
		return fmt.Errorf("no prepay_id: %.160s", resp.Body())
	}
	return nil
}

// verifyingCheck also verifies WeChat Pay's signature on the answer, as an app without wxgate
// must.
func (h *harness) verifyingCheck() func(*fasthttp.Response) error {
	v := signer.NewRSAVerifier(&h.mat.payKey.PublicKey)
	return func(resp *fasthttp.Response) error {
		if err := checkPrepay(resp); err != nil {
			return err
		}
		hd := &resp.Header
		msg := signer.AppendResponseMessage(nil, string(hd.Peek("Wechatpay-Timestamp")), string(hd.Peek("Wechatpay-Nonce")), resp.Body())
		if err := v.Verify(msg, string(hd.Peek("Wechatpay-Signature"))); err != nil {
			return errors.New("answer signature: " + err.Error())
		}
		return nil
	}
}

// jsapiTarget is the share of the RSA signing ceiling the JSAPI path must reach (issue 5).
const jsapiTarget = 0.85

// presignedOrders is how many orders bare and nginx cycle through.
const presignedOrders = 256

// scenarioV3 compares JSAPI orders (RSA-2048 Authorization, answer verified) with the
// machine's RSA signing ceiling.
func (h *harness) scenarioV3(ctx context.Context) error {
	apps, err := h.xpayApps() // a logged-in user as the payer
	if err != nil {
		return err
	}
	openid := apps[0].users[0].openid
	h.logf("  measuring the RSA-2048 signing ceiling (best of %d × %v) ...\n", ceilingRuns, h.opts.CeilingDuration)
	ceiling := rsaSignCeiling(h.mat.merchantKey, h.opts.CeilingDuration)
	h.logf("  %.0f signatures/s\n", ceiling)
	verifyCeiling, err := rsaVerifyCeiling(h.mat.payKey, h.opts.CeilingDuration)
	if err != nil {
		return fmt.Errorf("RSA verify ceiling: %w", err)
	}
	pre := h.newV3Load(openid, true)
	if err := pre.presign(presignedOrders); err != nil {
		return err
	}
	mchAddr := strings.TrimPrefix(h.main.emuInfo.Mch, "https://")
	direct := column{name: colDirect, addr: mchAddr, tls: h.mchTLS, build: h.newV3Load(openid, true).build, check: h.verifyingCheck(),
		note: "signs each order in the load generator and verifies each answer's signature, as an app without wxgate must"}
	bare := h.bareColumn("mch")
	bare.build, bare.check = pre.build, checkPrepay
	gate := column{name: colWxgate, addr: h.main.appAddr, pid: h.main.gate.pid(), metrics: h.main.metricsURL(), pprof: h.main.pprofURL(),
		build: h.newV3Load(openid, false).build, check: checkPrepay, upstream: h.main.emu.pid()}
	ngx := h.nginxColumn("mch")
	if ngx.skip == "" {
		ngx.build, ngx.check = pre.build, checkPrepay
	}
	sec := &section{
		title: "2. WeChat Pay APIv3 JSAPI order (RSA-2048 path)",
		intro: fmt.Sprintf("POST %s over TLS to the emulated api.mch.weixin.qq.com, a unique out_trade_no per request "+
			"(bare and nginx cycle through %d orders the load generator signed before the run; the emulator accepts a repeated order). "+
			"wxgate signs the Authorization (RSA-2048) and verifies WeChat Pay's RSA signature on every answer. "+
			"The emulator RSA-signs every answer too, on the same cores.", jsapiPath, presignedOrders),
	}
	sec.rows = h.compare(ctx, []column{direct, bare, gate, ngx})
	sec.addRatios(false)
	sec.notes = append(sec.notes, fmt.Sprintf("RSA-2048 signing ceiling of this machine: %.0f signatures/s (%d goroutines, signer.RSASigner, best of %d runs of %v), i.e. %s of CPU per signature",
		ceiling, gomaxprocs(), ceilingRuns, h.opts.CeilingDuration, fmtDur(cpuPerOp(ceiling))))
	sec.targets = append(sec.targets, ceilingChecks("v3 JSAPI", sec.find(colWxgate), ceiling, jsapiTarget)...)
	if note := machineBound(sec.find(colWxgate), ceiling); note != "" {
		sec.notes = append(sec.notes, note)
	}
	sec.notes = append(sec.notes, signingBound(sec.find(colWxgate), sec.find(colBare), ceiling, verifyCeiling, jsapiTarget)...)
	inRun, note := inRunSigning("v3 JSAPI", sec.find(colWxgate), sec.find(colBare), ceiling, verifyCeiling, jsapiTarget)
	sec.targets = append(sec.targets, inRun)
	if note != "" {
		sec.notes = append(sec.notes, note)
	}
	h.report.add(sec)
	// The closed loop of closedLoopClients runs before the overload, so that the longest wait
	// wxgate reports (a gauge since its start) is still the closed loops'.
	closed := h.v3ClosedLoop(ctx, openid)
	if err := h.v3Overload(ctx, openid, ceiling); err != nil {
		return err
	}
	h.report.add(closed)
	return nil
}

// closedLoopClients is how many JSAPI clients section 2c runs in a closed loop: the most a
// 2-core wxgate with the default sign_max_wait must serve without a single 503 (issue 20).
const closedLoopClients = 256

// v3ClosedLoop runs closedLoopClients connections of JSAPI orders through wxgate in a closed loop
// (each sends its next order when the last was answered) with wxgate's default sign_max_wait:
// every order must wait its turn for a signing slot, none be answered 503.
func (h *harness) v3ClosedLoop(ctx context.Context, openid string) *section {
	srv := h.main.cfg.Server
	url := h.main.metricsURL()
	half := fmt.Sprintf("%s{le=\"%g\"}", metricSignWaitBucket, (srv.SignMaxWait / 2).Seconds())
	within := fmt.Sprintf("%s{le=\"%g\"}", metricSignWaitBucket, srv.SignMaxWait.Seconds())
	names := []string{metricSignOverloaded, metricSignWaitCount, half, within}
	before := scrapeAll(url, names...)
	gate := column{name: colWxgate, label: fmt.Sprintf("wxgate, %d clients", closedLoopClients), addr: h.main.appAddr, pid: h.main.gate.pid(),
		metrics: url, pprof: h.main.pprofURL(), conns: closedLoopClients, upstream: h.main.emu.pid(),
		build: h.newV3LoadFor(openid, false, closedLoopClients).build, check: checkPrepay}
	sec := &section{
		title: fmt.Sprintf("2c. WeChat Pay APIv3 JSAPI orders, a closed loop of %d clients", closedLoopClients),
		intro: fmt.Sprintf("wxgate alone with the JSAPI orders of section 2 from %d connections, each sending its next order when the last "+
			"was answered, %d round(s) of %v, with wxgate's default [server] sign_max_wait (%v) and sign_concurrency %d: the signatures "+
			"queue (a closed loop never queues more requests than it has clients) and every order must wait its turn; none may be "+
			"answered 503.", closedLoopClients, max(h.opts.Rounds, 1), h.opts.Duration, srv.SignMaxWait, srv.SignConcurrency),
	}
	sec.rows = h.compare(ctx, []column{gate})
	after := scrapeAll(url, names...)
	rise := func(name string) (float64, bool) {
		a, ok0 := before[name]
		b, ok1 := after[name]
		return b - a, ok0 && ok1
	}
	refusals := targetCheck{what: fmt.Sprintf("v3 closed loop of %d JSAPI clients: 503 answers", closedLoopClients), limit: 0, atMost: true}
	r := sec.find(colWxgate)
	switch {
	case r == nil || r.res == nil:
		refusals.why = "n/a (the run failed)"
	default:
		busy := statusHist(r.res.ByStatus, fasthttp.StatusServiceUnavailable)
		refusals.value, refusals.ok = float64(busy.Count()), true
		refusals.remark = fmt.Sprintf("of %d orders, sign_max_wait %v (the default)", r.res.Requests, srv.SignMaxWait)
		if over, ok := rise(metricSignOverloaded); ok {
			refusals.remark += fmt.Sprintf("; wxgate_sign_overloaded_total rose by %.0f", over)
		}
	}
	sec.targets = append(sec.targets, refusals)
	waits, okW := rise(metricSignWaitCount)
	inHalf, okH := rise(half)
	inBound, okB := rise(within)
	longest, okL := scrape(url, metricSignWaitMax)
	if okW {
		note := fmt.Sprintf("%.0f orders waited for a signing slot", waits)
		if okH && okB {
			note += fmt.Sprintf(", %.0f of them longer than half of sign_max_wait (the queue an overload is held at) "+
				"and %.0f longer than sign_max_wait", waits-inHalf, waits-inBound)
		}
		if okL {
			note += fmt.Sprintf("; the longest wait since wxgate started (sections 2 and 2c; the overload of 2b runs after): %s",
				fmtDur(time.Duration(longest*float64(time.Second))))
		}
		sec.notes = append(sec.notes, note)
	}
	if r != nil && r.res != nil && r.res.Requests > 0 {
		sec.notes = append(sec.notes, fmt.Sprintf("Little's law: %d clients ÷ %.0f orders/s = %s per order, nearly all of it the wait "+
			"for a signing slot and for the emulator on the same cores; WeChat Pay itself answers in 100–300 ms",
			closedLoopClients, r.rps(), fmtDur(time.Duration(float64(closedLoopClients)/r.rps()*float64(time.Second)))))
	}
	return sec
}

// machineBound says what throughput the shared machine could give wxgate at most: each of its
// requests also costs the emulator (which RSA-signs every answer and verifies wxgate's
// signature) and the load generator CPU on the same cores.
func machineBound(gate *row, ceiling float64) string {
	if gate == nil || gate.res == nil || gate.res.Requests == 0 || gate.cpuPerReq() == 0 || ceiling <= 0 {
		return ""
	}
	own, emu, gen := gate.cpuPerReq(), gate.perReq(gate.upCPU), gate.perReq(gate.selfCPU)
	total := own + emu + gen
	bound := float64(gomaxprocs()) / total.Seconds()
	return fmt.Sprintf("the shared machine's bound: each wxgate request cost wxgate %s, the emulator %s and the load generator %s of CPU, "+
		"so %d cores serve at most %.0f req/s = **%.2fx** of the RSA ceiling while the emulator signs on them too; "+
		"wxgate reached %.0f req/s = **%.2fx** of that bound. The CPU-bound rate above is the same comparison with wxgate's own CPU alone",
		fmtDur(own), fmtDur(emu), fmtDur(gen), gomaxprocs(), bound, bound/ceiling, gate.rps(), gate.rps()/bound)
}

// overloadConns returns how many connections the overload run opens: enough that the offered
// rate never waits for a free connection. Admitted requests wait up to sign_max_wait, and the
// slots serve at most the ceiling meanwhile, so ceiling × sign_max_wait connections hold every
// admitted request; 512 more carry the refusals (answered at once). At most loadgen.MaxConns.
func overloadConns(ceiling float64, maxWait time.Duration) int {
	return min(int(ceiling*maxWait.Seconds())+512, loadgen.MaxConns)
}

// overloadFactor is the offered load of the overload run, in multiples of the RSA signing ceiling.
const overloadFactor = 2

// v3Overload drives wxgate's RSA signing far past what its signing slots serve and reports how
// the overflow is answered: 503 wxgate.overloaded at once, and no request waiting for a slot
// longer than [server] sign_max_wait. Two loads: JSAPI orders (the emulator RSA-signs every
// answer on the same cores, so the whole machine is oversubscribed), and the
// /wxgate/v3/payment-params helper (one RSA signature, no upstream: only wxgate and the load
// generator on the cores). The targets are checked on the second. The two loads alternate for
// -paced-rounds rounds; the 503 latency target reads the median of the rounds' p99s.
func (h *harness) v3Overload(ctx context.Context, openid string, ceiling float64) error {
	srv := h.main.cfg.Server
	conns := overloadConns(ceiling, srv.SignMaxWait)
	rounds := max(h.pacedRounds(), 1)
	sec := &section{
		title: "2b. WeChat Pay APIv3 under overload",
		intro: fmt.Sprintf("wxgate alone, offered %.0f requests/s (%d× the RSA signing ceiling) open-loop for %v each: each request "+
			"is due at a fixed time and sent by the first of %d connections free to send it, and its latency counts from that time, "+
			"so an answer slow to come counts its wait. [server] sign_concurrency = %d and sign_max_wait = %v. A request joins the "+
			"signing queue only when the signatures ahead of it should finish within three quarters of sign_max_wait, half from the "+
			"first refusal on; the others are answered 503 wxgate.overloaded at once. Two loads: JSAPI orders (the emulator RSA-signs every answer on the same two cores, so the "+
			"machine is oversubscribed and every answer, 503s too, waits for a CPU), and POST /wxgate/v3/payment-params (one RSA "+
			"signature in wxgate, no upstream: what overload of wxgate itself looks like), then the same load on the overload "+
			"yardstick (bareproxy answering 503 at once while as many threads at nice +5 sign RSA-2048 without pause: the fastest "+
			"refusal this machine allows beside that signing), in turn for %d rounds, added up in the table. Every connection "+
			"sends one warm-up request (a path nothing works for) before the clock starts, so no measured answer includes opening "+
			"its connection. The targets are checked on payment-params.",
			overloadFactor*ceiling, overloadFactor, h.opts.Duration, conns, srv.SignConcurrency, srv.SignMaxWait, rounds),
		table: []string{
			"| load | answers | count | req/s | p50 | p99 | p99.9 | max | p99 from sending |",
			"|---|---|---:|---:|---:|---:|---:|---:|---:|",
		},
	}
	loads := []struct {
		label     string
		build     loadgen.Builder
		check     loadgen.Checker
		yardstick bool // the overload yardstick, not wxgate
	}{
		{"JSAPI orders", h.newV3LoadFor(openid, false, conns).build, checkPrepay, false},
		{"payment-params", buildPaymentParams, checkPaySign, false},
		{yardstickLabel, buildPaymentParams, nil, true},
	}
	runs := make([]overloadRun, len(loads))
	within := fmt.Sprintf("%s{le=\"%g\"}", metricSignWaitBucket, srv.SignMaxWait.Seconds())
	_, okWithin := scrape(h.main.metricsURL(), within)
	// The yardstick runs with the GOMAXPROCS wxgate had when its overloaded run before it ended
	// (raised while it signs), read then rather than assumed.
	var wxgateProcs float64
	h.settle()
	idleProbe := startStallProbe()
	h.logf("  stall probe, idle      %v ...\n", h.opts.Duration)
	time.Sleep(h.opts.Duration) // the span the probe measures, not a synchronisation
	idle := idleProbe.end()
	for round := range rounds {
		for i, load := range loads {
			if load.yardstick {
				line, res, stall, err := h.runYardstick(ctx, srv.SignConcurrency, int(wxgateProcs), conns, overloadFactor*ceiling)
				if err != nil {
					return err
				}
				runs[i].addStall(stall)
				runs[i].procs = wxgateProcs
				runs[i].signed = append(runs[i].signed, line)
				runs[i].add(res)
				continue
			}
			h.settle()
			resetPeaks(h.main.gate.pid(), false)
			over0, _ := scrape(h.main.metricsURL(), metricSignOverloaded)
			waits0, _ := scrape(h.main.metricsURL(), metricSignWaitCount)
			within0, _ := scrape(h.main.metricsURL(), within)
			h.logf("  wxgate overloaded      %v x %d connections, %s (round %d of %d) ...", h.opts.Duration, conns, load.label, round+1, rounds)
			probe := startStallProbe()
			res, err := loadgen.Run(ctx, loadgen.Config{
				Addr: h.main.appAddr, Conns: conns, Duration: h.opts.Duration, Build: load.build, Check: load.check, Rate: overloadFactor * ceiling,
				Warm: warmOverload,
			})
			stall := probe.end()
			if err != nil {
				return err
			}
			runs[i].addStall(stall)
			over1, _ := scrape(h.main.metricsURL(), metricSignOverloaded)
			waits1, _ := scrape(h.main.metricsURL(), metricSignWaitCount)
			within1, _ := scrape(h.main.metricsURL(), within)
			r := &runs[i]
			r.overloaded += over1 - over0
			r.waits += waits1 - waits0
			r.longer += (waits1 - waits0) - (within1 - within0)
			r.maxWait, _ = scrape(h.main.metricsURL(), metricSignWaitMax)
			r.procs, _ = scrape(h.main.metricsURL(), metricGOMAXPROCS)
			if st, err := procstat.Read(h.main.gate.pid()); err == nil {
				r.peakRSS = max(r.peakRSS, st.PeakRSS)
			}
			wxgateProcs = r.procs
			h.logf(" %d answered 200, %d answered 503\n", statusHist(res.ByStatus, fasthttp.StatusOK).Count(),
				statusHist(res.ByStatus, fasthttp.StatusServiceUnavailable).Count())
			r.add(res)
		}
	}
	var fast, bound targetCheck
	var yard overloadRun
	var fastStall *loadgen.Histogram // the stall probe during the load the targets are checked on
	for i, load := range loads {
		label, r, res := load.label, runs[i], runs[i].res
		if load.yardstick {
			yard = r
			busy, busySent := statusHist(res.ByStatus, fasthttp.StatusServiceUnavailable), statusHist(res.ServiceByStatus, fasthttp.StatusServiceUnavailable)
			sec.table = append(sec.table, statusRow(label, "503 at once", busy, busySent, res.Elapsed))
			sec.notes = append(sec.notes, fmt.Sprintf("%s: the overload yardstick (bareproxy -refuse-beside-signers %d, GOMAXPROCS %.0f), "+
				"no wxgate: every request answered 503 at once while %d threads at nice +5 sign RSA-2048 without pause, as wxgate's "+
				"signing workers do while overloaded; each round's 503 p99: %s; the load generator sent late by p99 %s; per round it %s; "+
				"the stall probe overslept %s (each round's p99: %s)",
				label, srv.SignConcurrency, r.procs, srv.SignConcurrency, joinDurs(r.busyP99), fmtDur(res.Lag.Quantile(0.99)),
				strings.Join(r.signed, ", "), stallNote(&r.stall), joinDurs(r.stallP99)))
			continue
		}
		ok, busy := statusHist(res.ByStatus, fasthttp.StatusOK), statusHist(res.ByStatus, fasthttp.StatusServiceUnavailable)
		okSent, busySent := statusHist(res.ServiceByStatus, fasthttp.StatusOK), statusHist(res.ServiceByStatus, fasthttp.StatusServiceUnavailable)
		other := res.Requests - ok.Count() - busy.Count()
		sec.table = append(sec.table,
			statusRow(label, "200 (order placed)", ok, okSent, res.Elapsed),
			statusRow(label, "503 wxgate.overloaded", busy, busySent, res.Elapsed),
			fmt.Sprintf("| %s | other (errors) | %d | | | | | | |", label, other))
		sec.notes = append(sec.notes, fmt.Sprintf("%s: wxgate_sign_overloaded_total rose by %.0f; %.0f requests waited for a signing slot, "+
			"%.0f of them longer than sign_max_wait (wxgate_sign_wait_seconds); the longest wait since wxgate started: %s; "+
			"the load generator sent its requests late by p99 %s (inside every latency above); wxgate's GOMAXPROCS at the end: %.0f; "+
			"each round's 503 p99: %s; wxgate's peak RSS in a round (the queue's requests and their connections): %s; "+
			"the stall probe overslept %s (each round's p99: %s)",
			label, r.overloaded, r.waits, r.longer, fmtDur(time.Duration(r.maxWait*float64(time.Second))), fmtDur(res.Lag.Quantile(0.99)), r.procs,
			joinDurs(r.busyP99), fmtMB(r.peakRSS), stallNote(&r.stall), joinDurs(r.stallP99)))
		if other > 0 {
			sec.notes = append(sec.notes, fmt.Sprintf("**⚠ %s: %d answers were neither 200 nor 503**: %s", label, other, strings.Join(res.Samples, " | ")))
		}
		fast = targetCheck{what: "v3 overload: p99 latency of 503 answers", limit: 5, atMost: true, unit: " ms"}
		fastStall = &runs[i].stall
		switch {
		case busy.Count() == 0:
			fast.why = "n/a (no 503: not overloaded)"
		case len(r.busyP99) >= minMedianRounds:
			fast.value, fast.ok = float64(median(r.busyP99))/float64(time.Millisecond), true
			fast.remark = fmt.Sprintf("%s; the median of %d rounds' p99s (%s); all rounds added up: %d of %d requests answered 503, p99 %s, "+
				"counted from their sending instead of their due time %s", label, len(r.busyP99), joinDurs(r.busyP99), busy.Count(), res.Requests,
				fmtDur(busy.Quantile(0.99)), fmtDur(busySent.Quantile(0.99)))
		default:
			fast.value, fast.ok = float64(busy.Quantile(0.99))/float64(time.Millisecond), true
			fast.remark = fmt.Sprintf("%s; %d of %d requests answered 503; counted from their sending instead of their due time, p99 %s",
				label, busy.Count(), res.Requests, fmtDur(busySent.Quantile(0.99)))
		}
		bound = targetCheck{what: "v3 overload: waits for a signing slot longer than sign_max_wait", limit: 0, atMost: true}
		if okWithin {
			bound.value, bound.ok = r.longer, true
			bound.remark = fmt.Sprintf("%s; of %.0f waits (wxgate_sign_wait_seconds), sign_max_wait %v", label, r.waits, srv.SignMaxWait)
		} else {
			bound.why = "n/a (sign_max_wait is not a bucket of wxgate_sign_wait_seconds)"
		}
	}
	if fast.ok && len(yard.busyP99) > 0 {
		fast.remark += fmt.Sprintf("; the yardstick answering 503 at once beside the same signing threads, no wxgate: median p99 %s (%s)",
			fmtDur(median(yard.busyP99)), joinDurs(yard.busyP99))
	}
	if fast.ok {
		fast.remark += fmt.Sprintf("; the machine's own floor, the stall probe (a 1 ms sleep in the load generator, which sees every answer): "+
			"idle %s; in those rounds %s", stallNote(idle), stallNote(fastStall))
	}
	sec.notes = append(sec.notes, fmt.Sprintf("the stall probe: the load generator's process sleeps 1 ms again and again beside the load and "+
		"records by how much each sleep overran; an answer can be seen no sooner than the machine wakes the load generator, so a stall "+
		"of the probe is inside every latency measured meanwhile. Idle (before the rounds, nothing under load): %s", stallNote(idle)))
	sec.targets = append(sec.targets, fast, bound)
	h.report.add(sec)
	return nil
}

// yardstickLabel is the overload yardstick's row in section 2b.
const yardstickLabel = "yardstick"

// runYardstick starts the overload yardstick (bareproxy answering 503 at once beside signers
// low-priority RSA signing threads, at GOMAXPROCS procs when positive), offers it the overload
// rate for -duration, stops it, and returns what it said it signed with the load's result.
func (h *harness) runYardstick(ctx context.Context, signers, procs, conns int, rate float64) (string, *loadgen.Result, *loadgen.Histogram, error) {
	args := []string{"-refuse-beside-signers", strconv.Itoa(signers)}
	if procs > 0 {
		args = append(args, "-gomaxprocs", strconv.Itoa(procs))
	}
	p, addr, err := h.startBare("bareproxy refuser", args...)
	if err != nil {
		return "", nil, nil, err
	}
	h.settle()
	h.logf("  yardstick overloaded   %v x %d connections, 503 beside %d signing threads ...", h.opts.Duration, conns, signers)
	probe := startStallProbe()
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: addr, Conns: conns, Duration: h.opts.Duration, Build: buildPaymentParams, Rate: rate, Warm: warmOverload})
	stall := probe.end()
	p.stop(5 * time.Second)
	if err != nil {
		return "", nil, nil, err
	}
	signed := "printed no signature count"
	select {
	case line := <-p.lines:
		signed, _ = strings.CutPrefix(line, "bareproxy ")
	default:
	}
	h.logf(" %d answered 503\n", statusHist(res.ByStatus, fasthttp.StatusServiceUnavailable).Count())
	return signed, res, stall, nil
}

// overloadRun is what one load of the overload section measured, its rounds added up.
type overloadRun struct {
	res                       *loadgen.Result
	overloaded, waits, longer float64           // rises of wxgate's counters over the rounds
	maxWait, procs            float64           // wxgate's gauges after the last round
	peakRSS                   uint64            // wxgate's largest VmHWM of a round
	busyP99                   []time.Duration   // each round's 503 p99, for the median
	signed                    []string          // the yardstick's "signed N signatures in D" per round
	stall                     loadgen.Histogram // the stall probe's oversleeps during the rounds
	stallP99                  []time.Duration   // each round's oversleep p99
}

// addStall adds one round's stall probe.
func (r *overloadRun) addStall(over *loadgen.Histogram) {
	r.stall.Merge(over)
	r.stallP99 = append(r.stallP99, over.Quantile(0.99))
}

// warmOverload is the warm-up request of the overload runs (loadgen.Config.Warm): a path
// neither wxgate (404, no signature) nor the yardstick (503) does any work for, so that every
// connection is open before the clock starts and no measured 503 includes a TCP handshake.
func warmOverload(_ int, req *fasthttp.Request) bool {
	req.SetRequestURI("/wxbench/warm-up")
	return true
}

// stallNote describes a stall probe's oversleeps.
func stallNote(h *loadgen.Histogram) string {
	return fmt.Sprintf("p50 %s, p99 %s, worst %s", fmtDur(h.Quantile(0.5)), fmtDur(h.Quantile(0.99)), fmtDur(h.Max()))
}

// add adds one round's result: its 503 p99 kept apart, its histograms added up.
func (r *overloadRun) add(res *loadgen.Result) {
	if busy := statusHist(res.ByStatus, fasthttp.StatusServiceUnavailable); busy.Count() > 0 {
		r.busyP99 = append(r.busyP99, busy.Quantile(0.99))
	}
	if r.res == nil {
		r.res = res
	} else {
		r.res.Merge(res)
	}
}

// statusHist returns the histogram of one status, or an empty one.
func statusHist(m map[int]*loadgen.Histogram, code int) *loadgen.Histogram {
	if h := m[code]; h != nil {
		return h
	}
	return &loadgen.Histogram{}
}

// buildPaymentParams asks wxgate for a wx.requestPayment object (one RSA signature, no upstream).
func buildPaymentParams(conn int, req *fasthttp.Request) bool {
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("/wxgate/v3/payment-params")
	req.Header.SetContentType("application/json")
	req.SetBodyString(`{"prepay_id":"wx201410272009395522657a690389285100"}`)
	return true
}

// checkPaySign refuses an answer without a paySign.
func checkPaySign(resp *fasthttp.Response) error {
	if !bytes.Contains(resp.Body(), []byte(`"paySign"`)) {
		return fmt.Errorf("no paySign: %.160s", resp.Body())
	}
	return nil
}

// statusRow renders the latency of the answers of one status: l counted from the due times,
// sent from the sendings (its p99 only).
func statusRow(run, label string, l, sent *loadgen.Histogram, elapsed time.Duration) string {
	if l.Count() == 0 {
		return fmt.Sprintf("| %s | %s | 0 | | | | | | |", run, label)
	}
	return fmt.Sprintf("| %s | %s | %d | %.0f | %s | %s | %s | %s | %s |", run, label, l.Count(), float64(l.Count())/elapsed.Seconds(),
		fmtDur(l.Quantile(0.5)), fmtDur(l.Quantile(0.99)), fmtDur(l.Quantile(0.999)), fmtDur(l.Max()), fmtDur(sent.Quantile(0.99)))
}
