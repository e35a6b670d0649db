package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/bench/loadgen"
	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/signer"
)

// notification is one genuine WeChat callback built before a run: the path and query it is
// POSTed to (on wxgate's callback listener), its headers and body.
type notification struct {
	path   string // path?query
	header map[string]string
	body   []byte
}

// notificationPool holds pre-built notifications.
type notificationPool struct {
	items []notification
}

// cycled returns a Builder going round the pool again and again (for targets that keep no nonce
// store); from, when not "", is a path prefix replaced by to (the direct columns).
func (p *notificationPool) cycled(from, to string) loadgen.Builder {
	return p.builder(0, int64(len(p.items)), false, from, to)
}

// fresh returns a Builder sending the notifications of part round of rounds once each (as
// wxgate's replay protection requires); it ends the connection when they are used up.
func (p *notificationPool) fresh(round, rounds int) loadgen.Builder {
	n := int64(len(p.items))
	return p.builder(n*int64(round)/int64(rounds), n*int64(round+1)/int64(rounds), true, "", "")
}

func (p *notificationPool) builder(lo, hi int64, once bool, from, to string) loadgen.Builder {
	var next atomic.Int64
	return func(_ int, req *fasthttp.Request) bool {
		i := next.Add(1) - 1
		if once && lo+i >= hi {
			return false
		}
		n := &p.items[lo+i%(hi-lo)]
		req.Header.SetMethod(fasthttp.MethodPost)
		path := n.path
		if from != "" {
			path = to + strings.TrimPrefix(path, from)
		}
		req.SetRequestURI(path)
		for k, v := range n.header {
			req.Header.Set(k, v)
		}
		req.SetBody(n.body)
		return true
	}
}

// notifier returns an in-harness emulator that builds notifications exactly as WeChat does, with
// the WeChat Pay key and public key ID wxgate trusts.
func (h *harness) notifier() (*emulator.Emulator, error) {
	if h.emu != nil {
		return h.emu, nil
	}
	ec, err := emulator.ConfigFromPolicies(h.main.cfg)
	if err != nil {
		return nil, err
	}
	ec.PayKey = h.mat.payKey
	if h.emu, err = emulator.New(ec); err != nil {
		return nil, err
	}
	return h.emu, nil
}

// buildPool builds up to n notifications on every core, stopping early after budget; it
// returns how long building took.
func buildPool(n int, budget time.Duration, build func(i int) (notification, error)) (*notificationPool, time.Duration, error) {
	p := &notificationPool{items: make([]notification, n)}
	var next atomic.Int64
	var built atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	deadline := start.Add(budget)
	var wg sync.WaitGroup
	for range gomaxprocs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				item, err := build(i)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				p.items[i] = item
				built.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, 0, firstErr
	}
	// Keep only the contiguous prefix that was built.
	k := 0
	for k < n && p.items[k].body != nil {
		k++
	}
	p.items = p.items[:k]
	if k == 0 {
		return nil, 0, errors.New("no notification could be built within the budget")
	}
	return p, time.Since(start), nil
}

// Callback paths on wxgate's callback listener.
const (
	pathV3Callback   = "/callbacks/wechatpay/" + merchantName
	pathPushCallback = "/callbacks/message/"
)

// scenarioV3Callbacks compares APIv3 payment notifications: wxgate verifies, decrypts and
// forwards to the app; the pass-through proxies hand the raw notification to the app; direct is
// the app verifying and decrypting by itself.
func (h *harness) scenarioV3Callbacks(ctx context.Context) error {
	emu, err := h.notifier()
	if err != nil {
		return err
	}
	appID, serial := h.main.apps[0].AppID, h.main.emuInfo.PublicKeyID
	n := h.opts.Notifications
	h.logf("  building %d APIv3 notifications (an RSA signature each) ...\n", n)
	pool, took, err := buildPool(n, 45*time.Second, func(i int) (notification, error) {
		res := fmt.Appendf(nil, `{"mchid":%q,"appid":%q,"out_trade_no":"cb%s%d","transaction_id":"4200000000%010d","trade_type":"JSAPI",`+
			`"trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":%q,`+
			`"payer":{"openid":"oBench000000000000000000000"},"amount":{"total":1,"payer_total":1,"currency":"CNY","payer_currency":"CNY"}}`,
			mchID, appID, randomHex(3), i, i, time.Now().Format(time.RFC3339))
		nt, err := emu.BuildV3Notification(mchID, emulator.EventTransactionSuccess, res, pathV3Callback, emulator.NotifyOptions{Serial: serial})
		if err != nil {
			return notification{}, err
		}
		return notification{path: pathV3Callback, header: nt.Header, body: nt.Body}, nil
	})
	if err != nil {
		return err
	}
	h.logf("  built %d in %v; measuring the RSA-verify + AES-GCM ceiling ...\n", len(pool.items), took.Round(time.Millisecond))
	ceiling, err := h.verifyOpenCeiling(pool.items[0])
	if err != nil {
		return err
	}
	sec := &section{
		title: "3. WeChat Pay APIv3 notifications (callback front door)",
		intro: fmt.Sprintf("POST %s with genuine TRANSACTION.SUCCESS notifications built by the emulator package in the harness "+
			"(%d built before the run in %v; each has a fresh nonce and id, so the wxgate column uses each once and ends early when they run out). "+
			"wxgate verifies the RSA signature, checks timestamp and nonce, decrypts the AES-256-GCM resource, forwards the event to the "+
			"harness app (which checks X-Wxgate-Signature and answers 200) and answers 204. bare and nginx pass the raw notification to "+
			"the app, which answers 200 unverified; direct is the app verifying and decrypting by itself (no nonce store).",
			pathV3Callback, len(pool.items), took.Round(time.Millisecond)),
	}
	h.runCallbackColumns(ctx, sec, pool, pathV3Callback, pathDirectV3, h.main.cbAddr)
	sec.notes = append(sec.notes, fmt.Sprintf("RSA-verify + AES-GCM-open ceiling of this machine: %.0f/s (%d goroutines, best of %d runs of %v)", ceiling, gomaxprocs(), ceilingRuns, h.opts.CeilingDuration))
	sec.targets = append(sec.targets, ceilingChecks("v3 callbacks", sec.find(colWxgate), ceiling, 0.8)...)
	sec.notes = append(sec.notes, hopBound("v3 callbacks", sec.find(colWxgate), sec.find(colBare), ceiling, 0.8)...)
	h.report.add(sec)
	return nil
}

// runCallbackColumns measures the four columns of a callback comparison.
func (h *harness) runCallbackColumns(ctx context.Context, sec *section, pool *notificationPool, from, direct, cbAddr string) {
	ok2xx := func(*fasthttp.Response) error { return nil }
	rounds := max(h.opts.Rounds, 1)
	cols := []column{
		{name: colDirect, addr: strings.TrimPrefix(h.app.url, "http://"), build: pool.cycled(from, direct)},
		h.bareColumn("app"),
		{name: colWxgate, addr: cbAddr, pid: h.main.gate.pid(), metrics: h.main.metricsURL(), pprof: h.main.pprofURL(),
			perRound: func(round int) loadgen.Builder { return pool.fresh(round, rounds) }},
		h.nginxColumn("app"),
	}
	cols[1].build = pool.cycled("", "")
	if cols[3].skip == "" {
		cols[3].build = pool.cycled("", "")
	}
	for i := range cols {
		cols[i].check = ok2xx
	}
	sec.rows = h.compare(ctx, cols)
	sec.addRatios(false)
	if r := sec.find(colWxgate); r != nil && r.res != nil && int(r.res.Requests) >= len(pool.items) {
		sec.notes = append(sec.notes, fmt.Sprintf("the wxgate column used all %d pre-built notifications in %v (its rate is over that time)", len(pool.items), r.res.Elapsed.Round(time.Millisecond)))
	}
}

// verifyOpenCeiling measures RSA-verify + AES-GCM-open per second on a real notification.
func (h *harness) verifyOpenCeiling(n notification) (float64, error) {
	v := signer.NewRSAVerifier(&h.mat.payKey.PublicKey)
	aead, err := signer.NewAEADKey([]byte(h.mat.apiv3Key))
	if err != nil {
		return 0, err
	}
	var env struct {
		Resource struct {
			Ciphertext, Nonce string
			AssociatedData    string `json:"associated_data"`
		}
	}
	if err := json.Unmarshal(n.body, &env); err != nil {
		return 0, err
	}
	msg := signer.AppendResponseMessage(nil, n.header["Wechatpay-Timestamp"], n.header["Wechatpay-Nonce"], n.body)
	sig := n.header["Wechatpay-Signature"]
	r := env.Resource
	rate := loopCeiling(h.opts.CeilingDuration, func() error {
		if err := v.Verify(msg, sig); err != nil {
			return err
		}
		_, err := aead.Open(nil, r.Nonce, r.AssociatedData, r.Ciphertext)
		return err
	})
	if rate == 0 {
		return 0, errors.New("the ceiling loop failed to verify a notification")
	}
	return rate, nil
}
