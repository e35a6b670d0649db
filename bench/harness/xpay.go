package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/signer"
)

// xpayApp is one app ready for currency_pay load: users logged in through wxgate with a large
// balance, the access_token and AppKey an app signing by itself would use.
type xpayApp struct {
	creds appCreds
	key   *signer.XpayKey
	token string
	users []xpayUser
}

type xpayUser struct{ openid, sessionKey string }

// usersPerApp is how many users currency_pay load rotates through per app.
const usersPerApp = 8

// prepareXpay logs users of each app in through wxgate (login codes test:bench<n>), presents
// them a balance no run can exhaust, and fetches the access_token for the direct columns.
func prepareXpay(st *stack, apps []appCreds, users int) ([]*xpayApp, error) {
	base := "http://" + st.appAddr
	var out []*xpayApp
	for _, a := range apps {
		xa := &xpayApp{creds: a, key: signer.NewXpayKey(a.AppKey)}
		hdr := map[string]string{proxy.HeaderApp: a.Name}
		for i := range users {
			var login struct {
				OpenID     string `json:"openid"`
				SessionKey string `json:"session_key"`
			}
			if err := call("GET", fmt.Sprintf("%s/sns/jscode2session?js_code=test:bench%d", base, i), hdr, nil, &login); err != nil {
				return nil, err
			}
			if login.OpenID == "" || login.SessionKey == "" {
				return nil, errors.New("jscode2session through wxgate gave no openid or session_key")
			}
			var gift struct{ Errcode int }
			body := mustJSON(map[string]any{"openid": login.OpenID, "env": 0, "order_id": "gift" + randomHex(8), "amount": int64(1) << 50})
			if err := call("POST", base+"/xpay/present_currency", hdr, body, &gift); err != nil {
				return nil, err
			}
			if gift.Errcode != 0 {
				return nil, fmt.Errorf("present_currency through wxgate: errcode %d", gift.Errcode)
			}
			xa.users = append(xa.users, xpayUser{login.OpenID, login.SessionKey})
		}
		// Normal-mode stable_token hands out the token wxgate already holds, as WeChat does.
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		body := mustJSON(map[string]any{"grant_type": "client_credential", "appid": a.AppID, "secret": a.Secret})
		if err := call("POST", st.emuInfo.Weixin+"/cgi-bin/stable_token", nil, body, &tok); err != nil {
			return nil, err
		}
		if tok.AccessToken == "" {
			return nil, errors.New("stable_token gave no access_token")
		}
		xa.token = tok.AccessToken
		out = append(out, xa)
	}
	return out, nil
}

// currencyPayPath is the xpay API every xpay run calls.
const currencyPayPath = "/xpay/currency_pay"

// xpayLoad builds currency_pay requests of a given body size, each with a unique order_id.
type xpayLoad struct {
	apps   []*xpayApp
	size   int  // target body size in bytes
	signed bool // the load generator signs (direct, bare, nginx); else wxgate does
	tag    string
	seq    []uint64 // per connection
	bufs   [][]byte // per connection
}

func newXpayLoad(apps []*xpayApp, size int, signed bool, conns int) *xpayLoad {
	return &xpayLoad{apps: apps, size: size, signed: signed, tag: randomHex(3), seq: make([]uint64, conns), bufs: make([][]byte, conns)}
}

// build fills req with connection conn's next currency_pay.
func (x *xpayLoad) build(conn int, req *fasthttp.Request) bool {
	n := x.seq[conn]
	x.seq[conn]++
	a := x.apps[(uint64(conn)+n)%uint64(len(x.apps))]
	u := a.users[n%uint64(len(a.users))]
	b := x.bufs[conn][:0]
	b = append(b, `{"openid":"`...)
	b = append(b, u.openid...)
	b = append(b, `","env":0,"user_ip":"127.0.0.1","amount":1,"order_id":"`...)
	b = append(b, x.tag...)
	b = strconv.AppendInt(append(b, 'c'), int64(conn), 10)
	b = strconv.AppendUint(append(b, 'n'), n, 10)
	b = append(b, `","payitem":"[{\"productid\":\"bench\",\"unit_price\":1,\"quantity\":1}]","remark":"`...)
	for pad := x.size - len(b) - 2; pad > 0; pad-- {
		b = append(b, 'x')
	}
	b = append(b, `"}`...)
	x.bufs[conn] = b
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBody(b)
	if !x.signed {
		req.SetRequestURI(currencyPayPath)
		req.Header.Set(proxy.HeaderApp, a.creds.Name)
		return true
	}
	var sig [64]byte
	uri := make([]byte, 0, 512)
	uri = append(uri, currencyPayPath+"?access_token="...)
	uri = append(uri, a.token...)
	uri = a.key.AppendPaySig(append(uri, "&pay_sig="...), currencyPayPath, b)
	uri = append(append(uri, "&signature="...), signer.AppendUserSignature(sig[:0], u.sessionKey, b)...)
	req.SetRequestURIBytes(uri)
	return true
}

// checkErrcode0 refuses a WeChat answer whose errcode is not 0.
func checkErrcode0(resp *fasthttp.Response) error {
	if body := resp.Body(); !bytes.Contains(body, []byte(`"errcode":0,`)) {
		if len(body) > 160 {
			body = body[:160]
		}
		return fmt.Errorf("WeChat error: %s", body)
	}
	return nil
}

// xpayColumns are the four columns of a currency_pay comparison at one body size.
func (h *harness) xpayColumns(apps []*xpayApp, size int) []column {
	conns := h.opts.Conns
	direct := column{name: colDirect, addr: strings.TrimPrefix(h.main.emuInfo.Weixin, "http://"), build: newXpayLoad(apps, size, true, conns).build}
	bare := h.bareColumn("weixin")
	bare.build = newXpayLoad(apps, size, true, conns).build
	gate := column{name: colWxgate, addr: h.main.appAddr, pid: h.main.gate.pid(), metrics: h.main.metricsURL(), pprof: h.main.pprofURL(), build: newXpayLoad(apps, size, false, conns).build}
	ngx := h.nginxColumn("weixin")
	if ngx.skip == "" {
		ngx.build = newXpayLoad(apps, size, true, conns).build
	}
	cols := []column{direct, bare, gate, ngx}
	for i := range cols {
		cols[i].check = checkErrcode0
	}
	return cols
}

// scenarioXpay compares currency_pay (HMAC pay_sig + user signature with a stored session_key).
func (h *harness) scenarioXpay(ctx context.Context) error {
	apps, err := h.xpayApps()
	if err != nil {
		return err
	}
	sec := &section{
		title: "1. xpay currency_pay (HMAC pay_sig + session_key signature)",
		intro: fmt.Sprintf("POST /xpay/currency_pay, %d-byte bodies, a unique order_id per request, %d users logged in through wxgate "+
			"(codes test:bench<n>). direct and bare/nginx send requests the load generator signed itself (access_token, pay_sig, "+
			"signature); wxgate gets the plain body and signs. Every answer must carry errcode 0.", defaultBody, usersPerApp),
	}
	sec.rows = h.compare(ctx, h.xpayColumns(apps, defaultBody))
	sec.addRatios(true)
	h.addedLatency(ctx, sec, apps)
	h.report.add(sec)
	return nil
}

// addedLatency paces direct and wxgate at half of wxgate's peak (the closed-loop req/s just
// measured) and compares their p99: the latency the wxgate hop adds at a sustainable load. The
// paced latencies count from each request's scheduled time.
func (h *harness) addedLatency(ctx context.Context, sec *section, apps []*xpayApp) {
	t := targetCheck{what: "xpay p99 added latency (wxgate − direct) at half of wxgate's peak", limit: 1, atMost: true, unit: " ms"}
	defer func() { sec.targets = append(sec.targets, t) }()
	peak := sec.find(colWxgate)
	if peak == nil || peak.res == nil || peak.res.Errors > 0 || peak.rps() == 0 {
		t.why = "n/a (the wxgate run failed)"
		return
	}
	rate := peak.rps() / 2
	cols := h.xpayColumns(apps, defaultBody)
	direct, gate := cols[0], cols[2]
	direct.label, gate.label = "direct, paced at half", "wxgate, paced at half"
	direct.rate, gate.rate = rate, rate
	rows := h.compare(ctx, []column{direct, gate})
	sec.rows = append(sec.rows, rows...)
	d, g := &rows[0], &rows[1]
	if d.res == nil || g.res == nil || d.res.Errors > 0 || g.res.Errors > 0 {
		t.why = "n/a (a paced run failed)"
		return
	}
	dp, gp := d.res.Latency.Quantile(0.99), g.res.Latency.Quantile(0.99)
	t.value, t.ok = float64(gp-dp)/float64(time.Millisecond), true
	t.remark = fmt.Sprintf("both paced at %.0f req/s (half of wxgate's %.0f): p99 %s through wxgate, %s direct", rate, peak.rps(), fmtDur(gp), fmtDur(dp))
	sec.notes = append(sec.notes, pacedNote(d, g))
}

// pacedNote says what else is inside the paced p99s: how late the load generator sent (every
// connection busy, or the generator waiting for a CPU), the p99 counted from each request's
// sending instead, and how busy the whole machine was during each run.
func pacedNote(d, g *row) string {
	ds, gs := d.res.Service.Quantile(0.99), g.res.Service.Quantile(0.99)
	return fmt.Sprintf("Paced runs: the load generator sent its requests late by p99 %s (direct) and %s (wxgate) after their due "+
		"time (loadgen Result.Lag: every connection busy, or the generator waiting for a CPU it shares with the emulator and the "+
		"proxy); that lateness is inside both p99s. Counted from each request's sending instead, the p99 is %s direct and %s "+
		"through wxgate (%s added). The machine's %d cores were busy %.0f%% of the direct run and %.0f%% of the wxgate run "+
		"(/proc/stat, steal included): near 100%%, every process waits its turn for a CPU.",
		fmtDur(d.res.Lag.Quantile(0.99)), fmtDur(g.res.Lag.Quantile(0.99)), fmtDur(ds), fmtDur(gs), fmtSigned(gs-ds),
		runtime.NumCPU(), 100*d.machine.BusyShare(), 100*g.machine.BusyShare())
}

// defaultBody is the currency_pay body size of the main xpay run.
const defaultBody = 256

// xpayApps prepares the main stack's app for xpay load once.
func (h *harness) xpayApps() ([]*xpayApp, error) {
	if h.xpay == nil {
		apps, err := prepareXpay(h.main, h.main.apps, usersPerApp)
		if err != nil {
			return nil, err
		}
		h.xpay = apps
	}
	return h.xpay, nil
}
