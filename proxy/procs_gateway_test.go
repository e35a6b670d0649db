package proxy

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// procsGateway serves the test config (apps and merchants) on loopback with a governor that
// raises GOMAXPROCS by two. Its upstreams are unreachable, so a request fails after wxgate's own
// steps; what it told the governor is all these tests look at.
func procsGateway(t *testing.T) (g *Gateway, appURL, callbackURL string) {
	t.Helper()
	var raw []byte
	for _, f := range []string{"testdata/gateway.toml", "testdata/merchants.toml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	text := strings.NewReplacer("MCHUPSTREAM", "https://127.0.0.1:1", "UPSTREAM", "http://127.0.0.1:1",
		"CAFILE", "client_cert.pem", "RECEIVER", "http://127.0.0.1:1/events",
		"PUBKEYFILE", "stand_in_pub.pem", "PUBKEYID", "PUB_KEY_ID_0000000000000000000000000000000001").Replace(string(raw))
	cfg, err := policies.Parse([]byte(text), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	base := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(base) })
	g, err = NewGateway(cfg, Options{SigningProcs: base + 2})
	if err != nil {
		t.Fatal(err)
	}
	if g.workers.procs == nil {
		t.Fatal("no governor")
	}
	ls, err := Listen(cfg.Server)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(g)
	srv.Start(ls)
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return g, "http://" + ls.App.Addr().String(), "http://" + ls.Callback.Addr().String()
}

// TestRequestsBesideSigningRaiseProcs: while a signature runs, a request that signs nothing with
// RSA (xpay, a helper, a callback) or a JSAPI order refused 503 raises GOMAXPROCS; a JSAPI order
// or v3 payment parameters, which sign, do not; with nothing signing no request raises it.
func TestRequestsBesideSigningRaiseProcs(t *testing.T) {
	const xpayBody = `{"openid":"o-user","env":0,"user_ip":"127.0.0.1","amount":10,"order_id":"procs-0001","payitem":"coins"}`
	const orderBody = `{"appid":"wx00000000000000a1","mchid":"1900000001","description":"coins","out_trade_no":"procs-0001","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"openid":"o-user"}}`
	cases := []struct {
		name       string
		signing    bool // a signature is counted running when the request comes
		slotsFull  bool // every signing slot is taken and the queue too long to join
		callback   bool // sent to the callback listener
		path, body string
		wantStatus int
		wantSigned uint64 // RSA signatures the request made
		wantRaised bool
	}{
		{name: "xpay beside a signature", signing: true, path: "/xpay/currency_pay", body: xpayBody, wantStatus: fasthttp.StatusConflict, wantRaised: true},
		{name: "xpay with nothing signing", path: "/xpay/currency_pay", body: xpayBody, wantStatus: fasthttp.StatusConflict},
		{name: "xpay payment params beside a signature", signing: true, path: PathXpayPaymentParams, body: `{}`, wantStatus: fasthttp.StatusBadRequest, wantRaised: true},
		{name: "unknown path beside a signature", signing: true, path: "/nowhere", body: `{}`, wantStatus: fasthttp.StatusNotFound, wantRaised: true},
		{name: "callback beside a signature", signing: true, callback: true, path: "/callbacks/wechatpay/pk", body: `{}`, wantStatus: fasthttp.StatusUnauthorized, wantRaised: true},
		{name: "callback with nothing signing", callback: true, path: "/callbacks/wechatpay/pk", body: `{}`, wantStatus: fasthttp.StatusUnauthorized},
		{name: "JSAPI order beside a signature (signed, then WeChat unreachable)", signing: true, path: "/v3/pay/transactions/jsapi", body: orderBody, wantStatus: fasthttp.StatusBadGateway, wantSigned: 1},
		{name: "v3 payment params beside a signature", signing: true, path: PathV3PaymentParams, body: `{"prepay_id":"wx201410272009395522657a690389285100"}`, wantStatus: fasthttp.StatusOK, wantSigned: 1},
		{name: "JSAPI order refused beside signatures", signing: true, slotsFull: true, path: "/v3/pay/transactions/jsapi", body: orderBody, wantStatus: fasthttp.StatusServiceUnavailable, wantRaised: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, appURL, callbackURL := procsGateway(t)
			p := g.workers.procs
			if c.signing {
				p.begin()
				defer p.end()
			}
			if c.slotsFull {
				for range cap(g.signing.slots) {
					if aerr := g.signing.acquire(); aerr != nil {
						t.Fatal(aerr)
					}
				}
				g.signing.cost.Store(int64(time.Hour)) // the queue estimate is over the bound at once
			}
			url := appURL + c.path
			if c.callback {
				url = callbackURL + c.path
			}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.Set(HeaderMerchant, "pk")
			req.Header.SetContentType("application/json")
			req.SetBodyString(c.body)
			if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), c.wantStatus, resp.Body())
			}
			if n, _ := g.workers.signingCPU(); n != c.wantSigned {
				t.Fatalf("%d RSA signatures, want %d", n, c.wantSigned)
			}
			want := p.base
			if c.wantRaised {
				want = p.raised
			}
			if got := runtime.GOMAXPROCS(0); got != want {
				t.Fatalf("GOMAXPROCS %d after the request (status %d), want %d", got, resp.StatusCode(), want)
			}
		})
	}
}
