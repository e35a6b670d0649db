package proxy_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/store"
)

// testEnv is a real emulator (api.weixin.qq.com over HTTP, api.mch.weixin.qq.com over TLS) and a
// real wxgate on loopback.
type testEnv struct {
	t       *testing.T
	cfg     *policies.Config
	text    string // the rendered config, for configWith
	emu     *emulator.Emulator
	recv    *receiver
	emuAddr string
	// callbackURL is wxgate's callback listener.
	callbackURL string
	mchAddr     string
	gw          *proxy.Gateway
	appURL      string
	adminURL    string
	client      *fasthttp.Client
	store       store.Store  // given to the gateways this env starts; nil: memory
	logger      *slog.Logger // given to the gateways this env starts; nil: discard
}

// startEnv starts the emulator and a gateway for testdata/gateway.toml and merchants.toml; edit
// may change the TOML.
func startEnv(t *testing.T, edit func(string) string) *testEnv {
	t.Helper()
	return startEnvWith(t, envOptions{edit: edit})
}

// envOptions change a test environment beyond its config.
type envOptions struct {
	edit         func(string) string // changes the TOML
	emulatorIdle time.Duration       // the emulator's IdleTimeout; 0 keeps its default
	receiver     receiverOptions     // the app's event endpoint
	store        store.Store         // the gateway's store; nil: memory
	logger       *slog.Logger        // the gateway's logger; nil: discard
}

// startEnvWith is startEnv with options.
func startEnvWith(t *testing.T, opts envOptions) *testEnv {
	t.Helper()
	edit := opts.edit
	weixinLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mchLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for _, f := range []string{"testdata/gateway.toml", "testdata/merchants.toml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	recv := startReceiverWith(t, opts.receiver)
	render := func(caFile, pubFile, pubID string) string {
		text := strings.NewReplacer(
			"RECEIVER", recv.url,
			"UPSTREAM", "http://"+weixinLn.Addr().String(),
			"MCHUPSTREAM", "https://"+mchLn.Addr().String(),
			"CAFILE", caFile, "PUBKEYFILE", pubFile, "PUBKEYID", pubID,
		).Replace(string(raw))
		if edit != nil {
			text = edit(text)
		}
		return text
	}
	// WeChat's side is made from the config (merchant public keys from their private keys); the
	// emulator's own CA and WeChat Pay public key then complete wxgate's config.
	pre, err := policies.Parse([]byte(render("", "stand_in_pub.pem", "PUB_KEY_ID_0000000000000000000000000000000001")), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	ec, err := emulator.ConfigFromPolicies(pre)
	if err != nil {
		t.Fatal(err)
	}
	ec.PayKey = sharedPayKey(t)
	ec.RetryScale = 0.0005 // WeChat's 15 s first retry becomes 7.5 ms
	ec.AllowHTTPNotifyURL = true
	ec.IdleTimeout = opts.emulatorIdle
	ls, err := proxy.Listen(pre.Server)
	if err != nil {
		t.Fatal(err)
	}
	callbackURL := "http://" + ls.Callback.Addr().String()
	for i := range ec.Apps {
		if pre.Apps[i].Push != nil {
			ec.Apps[i].PushURL = callbackURL + "/callbacks/message/" + pre.Apps[i].Name
		}
	}
	emu, err := emulator.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, pubFile := dir+"/emulator-ca.pem", dir+"/wechatpay-pub.pem"
	if err := os.WriteFile(caFile, emu.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, emu.PayPublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	go emu.Serve(weixinLn)
	go emu.ServeTLS(mchLn)
	t.Cleanup(func() { emu.Shutdown() })
	text := render(caFile, pubFile, emu.PayPublicKeyID())
	cfg, err := policies.Parse([]byte(text), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, cfg: cfg, text: text, emu: emu, recv: recv, callbackURL: callbackURL,
		emuAddr: "http://" + weixinLn.Addr().String(), mchAddr: "https://" + mchLn.Addr().String(),
		client: &fasthttp.Client{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxConnsPerHost: 256},
		store:  opts.store, logger: opts.logger}
	e.gw, e.appURL, e.adminURL = e.startGatewayOn(cfg, ls)
	return e
}

var (
	payKeyOnce sync.Once
	payKey     *rsa.PrivateKey
)

// sharedPayKey is one WeChat Pay key for every emulator of the test binary (RSA key generation is
// slow, more so under -race).
func sharedPayKey(t *testing.T) *rsa.PrivateKey {
	payKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		payKey = k
	})
	return payKey
}

// startGateway starts another wxgate with cfg and returns it with its listener URLs.
func (e *testEnv) startGateway(cfg *policies.Config) (*proxy.Gateway, string, string) {
	e.t.Helper()
	ls, err := proxy.Listen(cfg.Server)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.startGatewayOn(cfg, ls)
}

// startGatewayOn starts a wxgate with cfg on bound listeners.
func (e *testEnv) startGatewayOn(cfg *policies.Config, ls proxy.Listeners) (*proxy.Gateway, string, string) {
	e.t.Helper()
	gw, err := proxy.NewGateway(cfg, proxy.Options{Store: e.store, Logger: e.logger})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := proxy.NewServer(gw)
	srv.Start(ls)
	e.t.Cleanup(func() {
		defer gw.Close()
		if err := srv.Shutdown(); err != nil {
			e.t.Errorf("gateway shutdown: %v", err)
		}
	})
	return gw, "http://" + ls.App.Addr().String(), "http://" + ls.Admin.Addr().String()
}

// configWith parses this env's config with edit applied.
func (e *testEnv) configWith(edit func(string) string) *policies.Config {
	e.t.Helper()
	cfg, err := policies.Parse([]byte(edit(e.text)), "testdata")
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// answer is an HTTP answer from wxgate.
type answer struct {
	Status int
	Header map[string]string
	Body   []byte
}

// json decodes the body into a generic map.
func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Body, &m); err != nil {
		t.Fatalf("answer is not JSON (%d): %s", a.Status, a.Body)
	}
	return m
}

// errcode is WeChat's errcode in the answer (-999999 when absent).
func (a answer) errcode(t *testing.T) int {
	t.Helper()
	v, ok := a.json(t)["errcode"].(float64)
	if !ok {
		return -999999
	}
	return int(v)
}

// wxgateError is wxgate's own error code in the answer.
func (a answer) wxgateError(t *testing.T) string {
	t.Helper()
	e, _ := a.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if code != "" && msg == "" {
		t.Errorf("error %s has no message", code)
	}
	return code
}

// do sends a request to wxgate's app listener.
func (e *testEnv) do(method, path string, body []byte, headers ...string) answer {
	e.t.Helper()
	return e.doURL(method, e.appURL+path, body, headers...)
}

func (e *testEnv) doURL(method, url string, body []byte, headers ...string) answer {
	e.t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(method)
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if err := e.client.Do(req, resp); err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	h := map[string]string{}
	for k, v := range resp.Header.All() {
		h[string(k)] = string(v)
	}
	return answer{Status: resp.StatusCode(), Header: h, Body: append([]byte(nil), resp.Body()...)}
}

// loginSeq makes every test login code unique: a WeChat code is single-use.
var loginSeq atomic.Int64

// login logs user in through wxgate and returns the openid.
func (e *testEnv) login(user string, headers ...string) string {
	e.t.Helper()
	a := e.do("GET", fmt.Sprintf("/sns/jscode2session?js_code=test:%s:%d", user, loginSeq.Add(1)), nil, headers...)
	m := a.json(e.t)
	openid, _ := m["openid"].(string)
	if a.Status != 200 || openid == "" {
		e.t.Fatalf("login %s: %d %s", user, a.Status, a.Body)
	}
	return openid
}

// warmToken makes one successful signed call so the access_token is cached before faults start.
func (e *testEnv) warmToken() {
	e.t.Helper()
	if a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"warm-000001"}`)); a.Status != 200 || signatureErrors[a.errcode(e.t)] {
		e.t.Fatalf("warm-up call: %d %s", a.Status, a.Body)
	}
}

// metric reads one unlabelled metric from the gateway's admin /metrics.
func (e *testEnv) metric(t *testing.T, name string) float64 {
	t.Helper()
	a := e.doURL("GET", e.adminURL+"/metrics", nil)
	for line := range strings.Lines(string(a.Body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metrics lack %s:\n%s", name, a.Body)
	return 0
}
