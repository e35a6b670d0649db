package proxy

import (
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/wxgate/wxgate/policies"
)

// benchGateway is a Gateway for in-process benchmarks: the test config with upstreams no
// request reaches.
func benchGateway(tb testing.TB) *Gateway {
	tb.Helper()
	raw, err := os.ReadFile("testdata/gateway.toml")
	if err != nil {
		tb.Fatal(err)
	}
	text := strings.NewReplacer("MCHUPSTREAM", "https://127.0.0.1:1", "UPSTREAM", "http://127.0.0.1:1",
		"CAFILE", "client_cert.pem", "RECEIVER", "http://127.0.0.1:1/events").Replace(string(raw))
	cfg, err := policies.Parse([]byte(text), "testdata")
	if err != nil {
		tb.Fatal(err)
	}
	g, err := NewGateway(cfg, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// xpayCall is a currency_pay call as an app sends it to wxgate, for a user with a stored
// session_key.
func xpayCall(tb testing.TB) (*generation, *appState, policies.Route, *fasthttp.RequestCtx) {
	tb.Helper()
	g := benchGateway(tb).current()
	a := g.apps["shop"]
	if err := g.store.PutSession(storeCtx, a.appID, "o-bench-user", "c2Vzc2lvbi1rZXktMDEyMzQ1Ng=="); err != nil {
		tb.Fatal(err)
	}
	r, ok := g.routes.Lookup([]byte("/xpay/currency_pay"))
	if !ok || !r.UserSignature {
		tb.Fatalf("route %+v", r)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI("/xpay/currency_pay?appname=shop")
	ctx.Request.SetBodyString(`{"openid":"o-bench-user","env":0,"user_ip":"127.0.0.1","amount":10,"order_id":"bench-0001","payitem":"coins","remark":"bench"}`)
	return g, a, r, ctx
}

// TestSignXpayAllocatesNothing: the signatures, the session_key and the JSON members all stay
// on the stack or in pooled state.
func TestSignXpayAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items); CI also runs without -race")
	}
	g, a, r, ctx := xpayCall(t)
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	n := testing.AllocsPerRun(200, func() {
		req.Reset()
		if aerr := g.signXpay(req, ctx, a, r); aerr != nil {
			t.Fatal(aerr.Message)
		}
	})
	if n != 0 {
		t.Errorf("signXpay: %.1f allocations per call, want 0", n)
	}
	if q := req.URI().QueryArgs(); !q.Has(argSignature) || !q.Has(argPaySig) {
		t.Fatalf("signed request %s lacks a signature", req.URI())
	}
}

// BenchmarkSignXpay is wxgate's own work on a currency_pay call before it is sent: the body's
// JSON check, env and openid, pay_sig, the session_key lookup, the user signature and the
// upstream request with its query arguments. The rest of the path is the HTTP hop the bare
// proxy pays too (bench/).
func BenchmarkSignXpay(b *testing.B) {
	g, a, r, ctx := xpayCall(b)
	req := fasthttp.AcquireRequest()
	b.ReportAllocs()
	b.SetBytes(int64(len(ctx.PostBody())))
	for b.Loop() {
		req.Reset()
		if aerr := g.signXpay(req, ctx, a, r); aerr != nil {
			b.Fatal(aerr.Message)
		}
	}
}
