package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/emulator"
)

// The reload tests send SIGHUP to a real `wxgate serve` (the emulator as WeChat) and check what
// a reload swaps, what it refuses and what it leaves to a restart.

// demoMchID is the merchant of demoConfig.
const demoMchID = "1900000109"

// secondApp is an app WeChat knows from the start, added to wxgate's config by a reload.
const secondApp = `
[[app]]
name = "second"
appid = "wx00000000000000b2"
secret = "reload-test-second-secret"
[app.xpay]
offer_id = "1450000002"
app_key = "reload-test-second-app-key"
`

// writeConfig replaces the config file at path as an operator should: a new file renamed over
// the old, so that a reload never reads half of it.
func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// readConfig returns the text of the node's config file.
func readConfig(t *testing.T, n *fleetNode) string {
	t.Helper()
	b, err := os.ReadFile(n.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openFDs counts the node's open descriptors.
func (n *fleetNode) openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", n.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// hup sends SIGHUP to the node.
func (n *fleetNode) hup(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

var reloadsMetric = regexp.MustCompile(`(?m)^wxgate_config_reloads_total\{result="(ok|error)"\} (\d+)$`)

// reloads reads wxgate_config_reloads_total by result from the node's /metrics.
func (n *fleetNode) reloads(t *testing.T) (ok, failed int) {
	t.Helper()
	status, body := n.admin(t, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	for _, m := range reloadsMetric.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.Atoi(m[2])
		if m[1] == "ok" {
			ok = v
		} else {
			failed = v
		}
	}
	return ok, failed
}

// waitReloads polls /metrics until the node counted ok successful and failed refused reloads.
func (n *fleetNode) waitReloads(t *testing.T, ok, failed int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		gotOK, gotFailed := n.reloads(t)
		if gotOK == ok && gotFailed == failed {
			return
		}
		if gotOK > ok || gotFailed > failed || time.Now().After(deadline) {
			t.Fatalf("reloads ok=%d error=%d, want ok=%d error=%d\n%s", gotOK, gotFailed, ok, failed, n.logs)
		}
		time.Sleep(5 * time.Millisecond) // polling /metrics, not synchronising
	}
}

// newMerchantCert writes a new merchant key and API certificate into dir (as a merchant gets
// them when it replaces its certificate) and returns the files' names and the certificate PEM.
func newMerchantCert(t *testing.T, dir string, i int) (keyFile, certFile string, certPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 80))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: demoMchID, Organization: []string{"wxgate reload test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, certFile = fmt.Sprintf("merchant_key_%d.pem", i), fmt.Sprintf("merchant_cert_%d.pem", i)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})
	if err := os.WriteFile(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, certFile), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, certFile, certPEM
}

// loadWorker runs one kind of request in a closed loop and records every failure.
type loadWorker struct {
	name     string
	do       func(c *fasthttp.Client, i int) error
	done     atomic.Int64 // requests completed
	lastFrom atomic.Int64 // start time (unix ns) of the last request completed
}

// load is a set of workers running until stop.
type load struct {
	mu       sync.Mutex
	failures []string
	workers  []*loadWorker
	stopping atomic.Bool
	wg       sync.WaitGroup
}

// start runs w until stop.
func (l *load) start(w *loadWorker) {
	l.mu.Lock()
	l.workers = append(l.workers, w)
	l.mu.Unlock()
	l.wg.Go(func() {
		c := &fasthttp.Client{}
		for i := 0; !l.stopping.Load(); i++ {
			from := time.Now()
			if err := w.do(c, i); err != nil {
				l.mu.Lock()
				l.failures = append(l.failures, fmt.Sprintf("%s #%d at %s: %v", w.name, i, from.Format("15:04:05.000"), err))
				l.mu.Unlock()
			}
			w.lastFrom.Store(from.UnixNano())
			w.done.Add(1)
		}
	})
}

// stop ends the workers and returns the failures.
func (l *load) stop() []string {
	l.stopping.Store(true)
	l.wg.Wait()
	return l.failures
}

// barrier waits until every worker completed a request it started after since: from then on,
// no request that began before since is in flight.
func (l *load) barrier(t *testing.T, since time.Time) {
	t.Helper()
	l.mu.Lock()
	workers := append([]*loadWorker(nil), l.workers...)
	l.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range workers {
		for w.lastFrom.Load() <= since.UnixNano() {
			if time.Now().After(deadline) {
				t.Fatalf("worker %s completed nothing since %s", w.name, since.Format("15:04:05.000"))
			}
			time.Sleep(time.Millisecond) // polling the workers' progress
		}
	}
}

// appCall posts body as JSON to path on the node's app listener for the app (the first when
// app is "") and decodes the answer into out; an error unless it was HTTP 200.
func appCall(c *fasthttp.Client, n *fleetNode, app, path string, body, out any) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(n.appURL + path)
	if app != "" {
		req.Header.Set("X-Wxgate-App", app)
	}
	if body != nil {
		b, _ := json.Marshal(body)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBody(b)
	}
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if resp.StatusCode() != 200 {
		return fmt.Errorf("%s: HTTP %d %s", path, resp.StatusCode(), resp.Body())
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		return fmt.Errorf("%s: %w: %s", path, err, resp.Body())
	}
	return nil
}

// xpayWorker logs a user of app in, gives them coins, then spends one per request
// (currency_pay: pay_sig with the AppKey and the user's signature with the session_key).
func xpayWorker(t *testing.T, n *fleetNode, app, user string) *loadWorker {
	t.Helper()
	c := &fasthttp.Client{}
	var login struct{ OpenID string }
	if err := appCall(c, n, app, "/sns/jscode2session?js_code=test:"+user+":"+randomHex(4), nil, &login); err != nil || login.OpenID == "" {
		t.Fatalf("login of %s on app %q: %v", user, app, err)
	}
	var out struct{ Errcode int }
	if err := appCall(c, n, app, "/xpay/present_currency", map[string]any{"openid": login.OpenID, "env": 0,
		"order_id": "gift" + randomHex(6), "amount": 1_000_000}, &out); err != nil || out.Errcode != 0 {
		t.Fatalf("present_currency on app %q: %v %+v", app, err, out)
	}
	return &loadWorker{name: "xpay " + user, do: func(c *fasthttp.Client, i int) error {
		var out struct {
			Errcode int
			Errmsg  string
		}
		err := appCall(c, n, app, "/xpay/currency_pay", map[string]any{"openid": login.OpenID, "env": 0, "user_ip": "127.0.0.1",
			"amount": 1, "order_id": fmt.Sprintf("%s%08d", user, i), "payitem": `[{"productid":"p1","unit_price":1,"quantity":1}]`}, &out)
		if err == nil && out.Errcode != 0 {
			err = fmt.Errorf("currency_pay: errcode %d %s", out.Errcode, out.Errmsg)
		}
		return err
	}}
}

// jsapiWorker places a JSAPI order (APIv3, signed with the merchant key), then has the
// emulated client pay it with wxgate's payment parameters (paySign, merchant key again); WeChat
// Pay then notifies the payment to the callback listener.
func jsapiWorker(t *testing.T, f *fleet, n *fleetNode, openid string) *loadWorker {
	t.Helper()
	prefix := "r" + randomHex(4)
	return &loadWorker{name: "jsapi", do: func(c *fasthttp.Client, i int) error {
		var order struct {
			PrepayID string `json:"prepay_id"`
		}
		if err := appCall(c, n, "", "/v3/pay/transactions/jsapi", map[string]any{"appid": f.appID, "mchid": demoMchID,
			"description": "reload", "out_trade_no": fmt.Sprintf("%s%d", prefix, i),
			"notify_url": n.callbackURL + "/callbacks/wechatpay/demo", "amount": map[string]any{"total": 1, "currency": "CNY"},
			"payer": map[string]any{"openid": openid}}, &order); err != nil {
			return err
		}
		var p struct{ TimeStamp, NonceStr, Package, SignType, PaySign string }
		if err := appCall(c, n, "", "/wxgate/v3/payment-params", map[string]any{"prepay_id": order.PrepayID}, &p); err != nil {
			return err
		}
		if msg, ok := f.emu.RequestPaymentClient(emulator.RequestPayment{AppID: f.appID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr,
			Package: p.Package, SignType: p.SignType, PaySign: p.PaySign}); !ok {
			return fmt.Errorf("wx.requestPayment: %s", msg)
		}
		return nil
	}}
}

// pushWorker delivers genuine message pushes (new signature each) to the callback listener.
func pushWorker(f *fleet, n *fleetNode) *loadWorker {
	return &loadWorker{name: "push", do: func(_ *fasthttp.Client, i int) error {
		note, err := f.emu.BuildPushMessage(f.appID, pushMessage(fmt.Sprintf("reload-push-%d", i)),
			n.callbackURL+"/callbacks/message/demo", emulator.NotifyOptions{Nonce: randomHex(8)})
		if err != nil {
			return err
		}
		acked, status, body, err := f.emu.Deliver(note)
		if err == nil && !acked {
			err = fmt.Errorf("push not acknowledged: HTTP %d %s", status, body)
		}
		return err
	}}
}

// TestReloadUnderLoad is issue 20's test: xpay, JSAPI and callbacks run against a real `wxgate
// serve` while its config is reloaded 20 times by SIGHUP: the merchant's key is rotated four
// times (WeChat Pay revokes the old certificate once the reload took, so a request still signed
// with it fails), a new app is added (and must serve at once), and [upstream] changes on every
// other reload (new pooled clients, old ones retired; two rotations happen with it, two without). No request may fail, every payment notification
// is acknowledged at its first delivery, descriptors stay bounded, and SIGTERM still drains.
func TestReloadUnderLoad(t *testing.T) {
	f := startFleetKnowing(t, 1, `kind = "memory"`, secondApp)
	n := f.nodes[0]
	// Idle connections would outlive the test: only retiring the replaced clients closes them.
	base := strings.Replace(readConfig(t, n), "[upstream]\n", "[upstream]\nmax_idle_duration = \"5m\"\n", 1)
	openid := f.login(t, n, "jsapi-payer")

	var l load
	l.start(xpayWorker(t, n, "", "alice"))
	l.start(xpayWorker(t, n, "", "bob"))
	l.start(jsapiWorker(t, f, n, openid))
	l.start(jsapiWorker(t, f, n, openid))
	l.start(pushWorker(f, n))
	defer l.stop()

	serial, keyFile, certFile := f.fields["serial_no"], "merchant_key.pem", "merchant_cert.pem"
	withApp := false
	fdBase := 0
	for i := 1; i <= 20; i++ {
		text := base
		if i/2%2 == 1 { // [upstream] changes on reloads 2, 4, 6...: new clients; unchanged on the others
			text = strings.Replace(text, `ca_file = "`+f.fields["ca_file"]+`"`+"\n"+`timeout = "3s"`, `ca_file = "`+f.fields["ca_file"]+`"`+"\n"+`timeout = "4s"`, 1)
			if text == base {
				t.Fatal("the upstream timeout is not in the config")
			}
		}
		oldSerial := serial
		if i%5 == 0 { // the merchant replaces its API certificate: at WeChat Pay first, then in wxgate
			var certPEM []byte
			keyFile, certFile, certPEM = newMerchantCert(t, f.dir, i)
			var err error
			if serial, err = f.emu.AddMerchantCertificate(demoMchID, certPEM); err != nil {
				t.Fatal(err)
			}
		}
		text = strings.Replace(text, `serial_no = "`+f.fields["serial_no"]+`"`, `serial_no = "`+serial+`"`, 1)
		text = strings.ReplaceAll(text, `"merchant_key.pem"`, `"`+keyFile+`"`)
		text = strings.Replace(text, `"merchant_cert.pem"`, `"`+certFile+`"`, 1)
		if i == 3 {
			withApp = true
		}
		if withApp {
			text += secondApp
		}
		writeConfig(t, n.cfgPath, text)
		n.hup(t)
		n.waitReloads(t, i, 0)
		swapped := time.Now()
		l.barrier(t, swapped) // every request from now on runs on the new config
		switch {
		case serial != oldSerial:
			if err := f.emu.RevokeMerchantCertificate(demoMchID, oldSerial); err != nil {
				t.Fatal(err)
			}
			l.barrier(t, time.Now()) // each worker ran once more: the JSAPI ones with the new key only
		case i == 3:
			w := xpayWorker(t, n, "second", "carol") // its login and coins already went through the new app
			l.start(w)
			l.barrier(t, time.Now())
		}
		if i == 1 {
			fdBase = n.openFDs(t)
		}
	}
	failures := l.stop()
	total := int64(0)
	for _, w := range l.workers {
		t.Logf("%s: %d requests", w.name, w.done.Load())
		if w.done.Load() == 0 {
			t.Errorf("worker %s completed no request", w.name)
		}
		total += w.done.Load()
	}
	t.Logf("%d requests, %d failed, over 20 reloads", total, len(failures))
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... and %d more", len(failures)-10)
			break
		}
		t.Errorf("failed: %s", f)
	}

	// Every payment notification was acknowledged at its first delivery.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds := f.emu.Deliveries()
		pending, retried := 0, 0
		for _, d := range ds {
			if !d.Acked {
				pending++
			}
			if d.Attempts > 1 {
				retried++
			}
		}
		if retried > 0 {
			t.Fatalf("%d of %d payment notifications needed a retry", retried, len(ds))
		}
		if pending == 0 {
			t.Logf("%d payment notifications, each acknowledged at once", len(ds))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d payment notifications still unacknowledged", pending, len(ds))
		}
		time.Sleep(10 * time.Millisecond) // polling the emulator's records
	}

	// Replaced clients do not keep their connections: the descriptors come back to what one
	// config holds (the retired clients' idle connections are closed at once, the rest after
	// their grace).
	deadline = time.Now().Add(40 * time.Second)
	fds := n.openFDs(t)
	for ; fds > fdBase+8; fds = n.openFDs(t) {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after 20 reloads, %d after the first", fds, fdBase)
		}
		time.Sleep(50 * time.Millisecond) // polling /proc
	}
	t.Logf("%d descriptors open after 20 reloads, %d after the first", fds, fdBase)

	if c := strings.Count(n.logs.String(), "config reloaded"); c != 20 {
		t.Errorf("%d reload lines, want 20", c)
	}
	for _, k := range []string{"forward_secret", "secret", "app_key", "apiv3_key", "apiv2_key", "push_token", "push_aes_key"} {
		if n.logs.has(f.fields[k]) {
			t.Errorf("a log line holds the %s", k)
		}
	}
	n.stop(t) // SIGTERM still drains and exits 0
}

// TestReloadRefusesAnInvalidConfig: a config with problems is refused whole, every problem is
// logged, the process keeps serving the old config, and a corrected file reloads.
func TestReloadRefusesAnInvalidConfig(t *testing.T) {
	f := startFleet(t, 1, `kind = "memory"`)
	n := f.nodes[0]
	base := readConfig(t, n)
	bad := strings.Replace(base, `appid = "`+f.appID+`"`, `appid = "not-an-appid"`, 1)
	bad = strings.Replace(bad, `private_key_file = "merchant_key.pem"`, `private_key_file = "missing_key.pem"`, 1)
	bad += "\n[forward_typo]\nsecret = \"x\"\n"
	writeConfig(t, n.cfgPath, bad)
	n.hup(t)
	n.waitReloads(t, 0, 1)
	line := grepLines(n.logs.String(), "config reload refused")
	for _, want := range []string{"problems=4", "app[0].appid", "missing_key.pem", "forward_typo"} {
		if !strings.Contains(line, want) {
			t.Errorf("the refusal line does not name %q:\n%s", want, line)
		}
	}
	// The old config still serves: a login and the user-signed xpay calls with the old app.
	f.pays(t, n, f.login(t, n, "dave"))

	// A file that is not even TOML is refused too.
	writeConfig(t, n.cfgPath, base+"\n[server\n")
	n.hup(t)
	n.waitReloads(t, 0, 2)
	f.pays(t, n, f.login(t, n, "erin"))

	writeConfig(t, n.cfgPath, base)
	n.hup(t)
	n.waitReloads(t, 1, 2)
	f.pays(t, n, f.login(t, n, "frank"))
	status, body := n.admin(t, "/metrics")
	if status != 200 || !regexp.MustCompile(`(?m)^wxgate_config_last_reload_success_timestamp_seconds [1-9][0-9]{9}$`).MatchString(body) {
		t.Errorf("/metrics has no last reload timestamp:\n%s", grepLines(body, "reload"))
	}
	n.stop(t)
}

// TestReloadListenerChangeNeedsRestart: a reload that moves the app listener keeps it where it
// is and says that the change needs a restart; the rest of the reload (a new app) applies.
func TestReloadListenerChangeNeedsRestart(t *testing.T) {
	f := startFleetKnowing(t, 1, `kind = "memory"`, secondApp)
	n := f.nodes[0]
	base := readConfig(t, n)
	oldPort := strings.TrimPrefix(n.appURL, "http://127.0.0.1:")
	newPort := strconv.Itoa(freePort(t))
	text := strings.Replace(base, `app_listen = "127.0.0.1:`+oldPort+`"`, `app_listen = "127.0.0.1:`+newPort+`"`, 1)
	text = strings.Replace(text, "[server]\n", "[server]\nmax_conns = 777\n", 1)
	writeConfig(t, n.cfgPath, text+secondApp)
	n.hup(t)
	n.waitReloads(t, 1, 0)
	line := grepLines(n.logs.String(), "config reloaded")
	for _, want := range []string{"needs_restart=server.app_listen,server.max_conns", "apps_added=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("the reload line does not say %q:\n%s", want, line)
		}
	}
	// The new app works on the listener that stayed; nothing listens on the new address.
	c := &fasthttp.Client{}
	var login struct{ OpenID string }
	if err := appCall(c, n, "second", "/sns/jscode2session?js_code=test:gina:"+randomHex(4), nil, &login); err != nil || login.OpenID == "" {
		t.Fatalf("login on the added app: %v", err)
	}
	if _, _, err := fasthttp.GetTimeout(nil, "http://127.0.0.1:"+newPort+"/healthz", 2*time.Second); err == nil || !errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(err.Error(), "refused") {
		t.Errorf("the new app_listen address answered (or failed oddly): %v", err)
	}
	n.stop(t)
}
