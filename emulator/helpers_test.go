package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Test apps: appA is an ordinary app; appV uses the AppKey ("12345") and offerId ("123") of the
// official examples so that published vectors can be checked end to end.
var (
	appA = App{AppID: "wx00000000000000a1", Secret: "secret-a", OfferID: "1450000001", AppKey: "appkey-prod-a", SandboxAppKey: "appkey-sandbox-a"}
	appV = App{AppID: "wx00000000000000v1", Secret: "secret-v", OfferID: "123", AppKey: "12345", SandboxAppKey: "sandbox-12345"}
)

// startTime is the fake clock's start: 10:00 Beijing time.
var startTime = time.Date(2024, 5, 1, 10, 0, 0, 0, beijing)

// ridPattern is the tail WeChat puts on every errmsg.
var ridPattern = regexp.MustCompile(` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a running emulator on loopback with a real fasthttp client.
type harness struct {
	t      *testing.T
	emu    *Emulator
	clock  *fakeClock
	base   string
	client *fasthttp.Client
	tokens map[string]string // cached stable tokens per appid
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	clock := &fakeClock{t: startTime}
	emu, err := New(Config{Apps: []App{appA, appV}, Clock: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- emu.Serve(ln) }()
	h := &harness{
		t:     t,
		emu:   emu,
		clock: clock,
		base:  "http://" + ln.Addr().String(),
		client: &fasthttp.Client{
			ReadTimeout:     5 * time.Second,
			WriteTimeout:    5 * time.Second,
			MaxConnsPerHost: 64,
		},
		tokens: make(map[string]string),
	}
	t.Cleanup(func() {
		if err := emu.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			// ErrShutdown: this Serve began after Shutdown (the test was that quick).
			if err != nil && !errors.Is(err, ErrShutdown) {
				t.Errorf("Serve returned %v after Shutdown, want nil or ErrShutdown", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return h
}

// doErr sends one request and returns the status and body, or the transport error.
func (h *harness) doErr(method, uri string, body []byte) (int, []byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(h.base + uri)
	req.Header.SetMethod(method)
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	if err := h.client.DoTimeout(req, resp, 5*time.Second); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// do sends one request and fails the test on a transport error.
func (h *harness) do(method, uri string, body []byte) (int, []byte) {
	h.t.Helper()
	status, b, err := h.doErr(method, uri, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, uri, err)
	}
	return status, b
}

// obj is a decoded JSON answer.
type obj map[string]any

// decode parses a JSON object answer, keeping numbers exact.
func decode(t *testing.T, b []byte) obj {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m obj
	if err := d.Decode(&m); err != nil {
		t.Fatalf("answer %q is not a JSON object: %v", b, err)
	}
	return m
}

// num returns a numeric field (0 when absent).
func (m obj) num(key string) int64 {
	n, ok := m[key].(json.Number)
	if !ok {
		return 0
	}
	v, err := n.Int64()
	if err != nil {
		return -999999
	}
	return v
}

// str returns a string field ("" when absent).
func (m obj) str(key string) string {
	s, _ := m[key].(string)
	return s
}

// sub returns a nested object field.
func (m obj) sub(key string) obj {
	o, _ := m[key].(map[string]any)
	return obj(o)
}

// code returns errcode (0 when absent).
func (m obj) code() int64 { return m.num("errcode") }

// getJSON sends a request and decodes a JSON answer, which must come with HTTP 200.
func (h *harness) getJSON(method, uri string, body []byte) obj {
	h.t.Helper()
	status, b := h.do(method, uri, body)
	if status != fasthttp.StatusOK {
		h.t.Fatalf("%s %s: HTTP %d %s", method, uri, status, b)
	}
	return decode(h.t, b)
}

// expectErr checks an answer's errcode and that its errmsg carries a rid.
func expectErr(t *testing.T, m obj, code int64) {
	t.Helper()
	if m.code() != code {
		t.Fatalf("errcode = %d (%s), want %d", m.code(), m.str("errmsg"), code)
	}
	if !ridPattern.MatchString(m.str("errmsg")) {
		t.Errorf("errmsg %q does not end with a rid", m.str("errmsg"))
	}
}

// stableTokenBody is a stable_token request body.
func stableTokenBody(app App, force bool) []byte {
	b, _ := json.Marshal(stableTokenRequest{GrantType: "client_credential", AppID: app.AppID, Secret: app.Secret, ForceRefresh: force})
	return b
}

// stableToken calls stable_token and returns the answer.
func (h *harness) stableToken(app App, force bool) obj {
	h.t.Helper()
	return h.getJSON("POST", "/cgi-bin/stable_token", stableTokenBody(app, force))
}

// token returns a valid stable token for app, fetching it once per harness.
func (h *harness) token(app App) string {
	h.t.Helper()
	if tok, ok := h.tokens[app.AppID]; ok {
		return tok
	}
	m := h.stableToken(app, false)
	tok := m.str("access_token")
	if tok == "" {
		h.t.Fatalf("stable_token: %v", m)
	}
	h.tokens[app.AppID] = tok
	return tok
}

// loginURL is a jscode2session URL.
func loginURL(app App, code string) string {
	q := url.Values{"appid": {app.AppID}, "secret": {app.Secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	return "/sns/jscode2session?" + q.Encode()
}

// loginSeq makes every harness login code unique.
var loginSeq struct {
	sync.Mutex
	n int
}

// login logs user in with a fresh code and returns the openid and session_key.
func (h *harness) login(app App, user string) (string, string) {
	h.t.Helper()
	loginSeq.Lock()
	loginSeq.n++
	n := loginSeq.n
	loginSeq.Unlock()
	m := h.getJSON("GET", loginURL(app, "test:"+user+":"+strconv.Itoa(n)), nil)
	if m.str("openid") == "" || m.str("session_key") == "" {
		h.t.Fatalf("login: %v", m)
	}
	return m.str("openid"), m.str("session_key")
}

// xcall is one xpay request under construction; zero fields take defaults.
type xcall struct {
	app       App
	method    string
	token     *string // nil: a valid token; "" omits access_token
	key       string  // AppKey to sign with; default picked by the body's env
	paySig    *string // nil: computed
	signature *string // nil: computed from the openid's current session key, if any
}

// xopt adjusts an xcall.
type xopt func(*xcall)

func withApp(a App) xopt          { return func(c *xcall) { c.app = a } }
func withMethod(m string) xopt    { return func(c *xcall) { c.method = m } }
func withToken(tok string) xopt   { return func(c *xcall) { c.token = &tok } }
func withKey(k string) xopt       { return func(c *xcall) { c.key = k } }
func withPaySig(s string) xopt    { return func(c *xcall) { c.paySig = &s } }
func withSignature(s string) xopt { return func(c *xcall) { c.signature = &s } }

// paySigHex computes a server-API pay_sig with the signer package.
func paySigHex(key, uri, body string) string {
	return string(signer.NewXpayKey(key).AppendPaySig(nil, uri, []byte(body)))
}

// userSigHex computes a user-state signature with the signer package.
func userSigHex(sessionKey, body string) string {
	return string(signer.AppendUserSignature(nil, sessionKey, []byte(body)))
}

// xpayURL builds the signed request URI for an xpay call.
func (h *harness) xpayURL(uri, body string, opts ...xopt) (string, string) {
	h.t.Helper()
	c := xcall{app: appA, method: "POST"}
	for _, o := range opts {
		o(&c)
	}
	var head struct {
		Env    int    `json:"env"`
		OpenID string `json:"openid"`
	}
	_ = json.Unmarshal([]byte(body), &head)
	if c.key == "" {
		c.key = c.app.AppKey
		if head.Env == 1 {
			c.key = c.app.SandboxAppKey
		}
	}
	q := url.Values{}
	if c.token == nil {
		q.Set("access_token", h.token(c.app))
	} else if *c.token != "" {
		q.Set("access_token", *c.token)
	}
	if c.paySig == nil {
		q.Set("pay_sig", paySigHex(c.key, uri, body))
	} else if *c.paySig != "" {
		q.Set("pay_sig", *c.paySig)
	}
	if c.signature != nil {
		q.Set("signature", *c.signature)
	} else if sk, ok := h.emu.SessionKey(c.app.AppID, head.OpenID); ok {
		q.Set("signature", userSigHex(sk, body))
	}
	return c.method, uri + "?" + q.Encode()
}

// xpay sends a signed xpay request and decodes the answer.
func (h *harness) xpay(uri, body string, opts ...xopt) obj {
	h.t.Helper()
	method, u := h.xpayURL(uri, body, opts...)
	var b []byte
	if method == "POST" {
		b = []byte(body)
	}
	return h.getJSON(method, u, b)
}

// pay runs a client payment for openid and fails the test unless it succeeds.
func (h *harness) pay(app App, openid, mode, signData string) ClientPaymentResult {
	h.t.Helper()
	res := h.emu.RequestVirtualPayment(h.clientPayment(app, openid, mode, signData))
	if res.ErrCode != 0 {
		h.t.Fatalf("RequestVirtualPayment: %+v", res)
	}
	return res
}

// clientPayment signs signData like a backend would for wx.requestVirtualPayment.
func (h *harness) clientPayment(app App, openid, mode, signData string) ClientPayment {
	var head struct {
		Env int `json:"env"`
	}
	_ = json.Unmarshal([]byte(signData), &head)
	key := app.AppKey
	if head.Env == 1 {
		key = app.SandboxAppKey
	}
	sk, _ := h.emu.SessionKey(app.AppID, openid)
	return ClientPayment{
		AppID:     app.AppID,
		OpenID:    openid,
		Mode:      mode,
		SignData:  signData,
		PaySig:    string(signer.NewXpayKey(key).AppendClientPaySig(nil, []byte(signData))),
		Signature: userSigHex(sk, signData),
	}
}
