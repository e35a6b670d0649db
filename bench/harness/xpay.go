package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
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
	return prepareXpayUsers(st, apps, users, "bench")
}

// prepareXpayUsers is prepareXpay with the users named user<n> (login codes test:user<n>).
// wxgates sharing one emulator need users of their own: the emulator keeps only the newest
// session_key of each user, so a second login through another wxgate would make the first
// one's stored key stale.
func prepareXpayUsers(st *stack, apps []appCreds, users int, user string) ([]*xpayApp, error) {
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
			if err := call("GET", fmt.Sprintf("%s/sns/jscode2session?js_code=test:%s%d", base, user, i), hdr, nil, &login); err != nil {
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

// addedLatency paces every column at half of wxgate's peak (the closed-loop req/s just measured)
// and compares their p99 with direct's: the latency each hop adds at a sustainable load. The
// target is wxgate's; the bare pass-through (and nginx), paced alike, show what one proxy hop
// that signs nothing adds on the same machine. The paced latencies count from each request's
// scheduled time.
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
	for i := range cols {
		cols[i].label, cols[i].rate = cols[i].name+", paced at half", rate
	}
	rows, rounds := h.compareRounds(ctx, cols, h.pacedRounds())
	var paced []*row
	for i := range rows {
		if rows[i].col.skip == "" {
			sec.rows = append(sec.rows, rows[i])
			paced = append(paced, &rows[i])
		}
	}
	d, b, g := &rows[0], &rows[1], &rows[2]
	if d.res == nil || g.res == nil || d.res.Errors > 0 || g.res.Errors > 0 {
		t.why = "n/a (a paced run failed)"
		return
	}
	dp, gp := d.res.Latency.Quantile(0.99), g.res.Latency.Quantile(0.99)
	t.value, t.ok = float64(gp-dp)/float64(time.Millisecond), true
	t.remark = fmt.Sprintf("all paced at %.0f req/s (half of wxgate's %.0f)", rate, peak.rps())
	if med, k := medianAdded(rounds, 2); k >= minMedianRounds {
		t.value = float64(med) / float64(time.Millisecond)
		t.remark += fmt.Sprintf("; the median of %d interleaved rounds' p99 differences", k)
		if bm, kb := medianAdded(rounds, 1); kb >= minMedianRounds {
			t.remark += fmt.Sprintf(" (the bare pass-through's median: %s)", fmtSigned(bm))
		}
		t.remark += "; all rounds added up"
	}
	t.remark += fmt.Sprintf(": p99 %s through wxgate, %s direct", fmtDur(gp), fmtDur(dp))
	if b.res != nil && b.res.Errors == 0 {
		bp := b.res.Latency.Quantile(0.99)
		t.remark += fmt.Sprintf(", %s through the bare pass-through (%s over direct; wxgate − bare %s)", fmtDur(bp), fmtSigned(bp-dp), fmtSigned(gp-bp))
	}
	sec.notes = append(sec.notes, pacedNote(paced))
	if note := roundsNote(cols, rounds); note != "" {
		sec.notes = append(sec.notes, note)
	}
}

// minMedianRounds is how many clean paced rounds the added-latency target needs before it reads
// their median; with fewer it reads the rounds added up.
const minMedianRounds = 3

// medianAdded is the median over the clean rounds of column i's p99 minus direct's (column 0),
// counted from the due time, and how many rounds were clean. A median of the per-round
// differences, each from runs seconds apart, is what one slow interval on a shared machine
// (a burst of steal, another tenant) moves least; the rounds added up let the slowest run
// decide the p99.
func medianAdded(rounds [][]roundP99, i int) (time.Duration, int) {
	var diffs []time.Duration
	for _, r := range rounds {
		if r[0].ok && r[i].ok {
			diffs = append(diffs, r[i].due-r[0].due)
		}
	}
	return median(diffs), len(diffs)
}

// median returns the median of ds (the mean of the middle two for an even count), or 0 for
// none; ds is left unchanged.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	k := len(s)
	if k%2 == 1 {
		return s[k/2]
	}
	return (s[k/2-1] + s[k/2]) / 2
}

// joinDurs prints latencies as a comma-separated list.
func joinDurs(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmtDur(d)
	}
	return strings.Join(parts, ", ")
}

// pacedRounds is how many rounds the paced and open-loop comparisons run (-paced-rounds, else
// -rounds).
func (h *harness) pacedRounds() int {
	if h.opts.PacedRounds > 0 {
		return h.opts.PacedRounds
	}
	return h.opts.Rounds
}

// pacedNote says what else is inside the paced p99s (rows[0] is direct): how late the load
// generator sent (every connection busy, or the generator waiting for a CPU), the p99 counted
// from each request's sending instead, and how busy the whole machine was during each run.
func pacedNote(rows []*row) string {
	var lag, sent, busy []string
	direct := rows[0].res.Service.Quantile(0.99)
	for _, r := range rows {
		name := r.col.name
		lag = append(lag, fmt.Sprintf("%s (%s)", fmtDur(r.res.Lag.Quantile(0.99)), name))
		s := r.res.Service.Quantile(0.99)
		if r == rows[0] {
			sent = append(sent, fmt.Sprintf("%s %s", fmtDur(s), name))
		} else {
			sent = append(sent, fmt.Sprintf("%s through %s (%s added)", fmtDur(s), name, fmtSigned(s-direct)))
		}
		busy = append(busy, fmt.Sprintf("%.0f%% of the %s run (steal %.0f%%)", 100*r.machine.BusyShare(), name, 100*r.machine.StealShare()))
	}
	return fmt.Sprintf("Paced runs: the load generator sent its requests late by p99 %s after their due "+
		"time (loadgen Result.Lag: every connection busy, or the generator waiting for a CPU it shares with the emulator and the "+
		"proxy); that lateness is inside every p99. Counted from each request's sending instead, the p99 is %s. "+
		"The machine's %d cores were busy %s (/proc/stat, steal included): near 100%%, every process waits its turn for a CPU.",
		strings.Join(lag, ", "), strings.Join(sent, ", "), runtime.NumCPU(), strings.Join(busy, ", "))
}

// roundsNote lists, when there were several rounds, each round's p99 added over direct (column
// 0) by every other column, counted from the due time and from the sending: how far one
// round's reading moves from the next on this machine.
func roundsNote(cols []column, rounds [][]roundP99) string {
	if len(rounds) < 2 {
		return ""
	}
	var parts, steal []string
	for i := range cols {
		if cols[i].skip != "" {
			continue
		}
		var each []string
		for _, r := range rounds {
			each = append(each, fmt.Sprintf("%.0f%%", 100*r[i].steal))
		}
		steal = append(steal, cols[i].name+" "+strings.Join(each, ", "))
	}
	for i := 1; i < len(cols); i++ {
		if cols[i].skip != "" {
			continue
		}
		var each []string
		for _, r := range rounds {
			if !r[0].ok || !r[i].ok {
				each = append(each, "n/a")
				continue
			}
			each = append(each, fmt.Sprintf("%s (%s)", fmtSigned(r[i].due-r[0].due), fmtSigned(r[i].sent-r[0].sent)))
		}
		parts = append(parts, cols[i].name+" "+strings.Join(each, ", "))
	}
	return fmt.Sprintf("Each of the %d paced rounds on its own, p99 added over direct (counted from sending in brackets): %s. "+
		"The hypervisor's steal during each round's run: %s.", len(rounds), strings.Join(parts, "; "), strings.Join(steal, "; "))
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
