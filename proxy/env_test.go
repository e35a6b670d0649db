package proxy_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// testEnv is a real emulator and a real wxgate on loopback.
type testEnv struct {
	t        *testing.T
	cfg      *policies.Config
	emu      *emulator.Emulator
	emuAddr  string
	gw       *proxy.Gateway
	appURL   string
	adminURL string
	client   *fasthttp.Client
}

// startEnv starts the emulator and a gateway for testdata/gateway.toml; edit may change the TOML.
func startEnv(t *testing.T, edit func(string) string) *testEnv {
	t.Helper()
	emuLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "UPSTREAM", "http://"+emuLn.Addr().String(), 1)
	if edit != nil {
		text = edit(text)
	}
	cfg, err := policies.Parse([]byte(text), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	ec := emulator.Config{OtherAPIs: cfg.Routes.Allow}
	for _, a := range cfg.Apps {
		app := emulator.App{AppID: a.AppID, Secret: a.Secret.Value()}
		if a.Xpay != nil {
			app.OfferID, app.AppKey, app.SandboxAppKey = a.Xpay.OfferID, a.Xpay.AppKey.Value(), a.Xpay.SandboxAppKey.Value()
		}
		ec.Apps = append(ec.Apps, app)
	}
	emu, err := emulator.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(emuLn)
	t.Cleanup(func() { emu.Shutdown() })
	e := &testEnv{t: t, cfg: cfg, emu: emu, emuAddr: "http://" + emuLn.Addr().String(),
		client: &fasthttp.Client{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxConnsPerHost: 256}}
	e.gw, e.appURL, e.adminURL = e.startGateway(cfg)
	return e
}

// startGateway starts another wxgate with cfg and returns it with its listener URLs.
func (e *testEnv) startGateway(cfg *policies.Config) (*proxy.Gateway, string, string) {
	e.t.Helper()
	gw, err := proxy.NewGateway(cfg, proxy.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	ls, err := proxy.Listen(cfg.Server)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := proxy.NewServer(gw)
	srv.Start(ls)
	e.t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			e.t.Errorf("gateway shutdown: %v", err)
		}
	})
	return gw, "http://" + ls.App.Addr().String(), "http://" + ls.Admin.Addr().String()
}

// configWith parses testdata/gateway.toml pointed at this env's emulator, with edit applied.
func (e *testEnv) configWith(edit func(string) string) *policies.Config {
	e.t.Helper()
	raw, err := os.ReadFile("testdata/gateway.toml")
	if err != nil {
		e.t.Fatal(err)
	}
	text := edit(strings.Replace(string(raw), "UPSTREAM", e.emuAddr, 1))
	cfg, err := policies.Parse([]byte(text), "testdata")
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
