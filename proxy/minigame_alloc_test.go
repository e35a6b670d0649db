package proxy

import (
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// miniGameCall is a /wxa/game/pay call as a mini game sends it to wxgate, for a user with a
// stored session_key.
func miniGameCall(t testing.TB) (*generation, *appState, policies.Route, *fasthttp.RequestCtx) {
	t.Helper()
	raw, err := os.ReadFile("testdata/gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("MCHUPSTREAM", "https://127.0.0.1:1", "UPSTREAM", "http://127.0.0.1:1",
		"CAFILE", "client_cert.pem", "RECEIVER", "http://127.0.0.1:1/events").Replace(string(raw)) + `
[[app]]
name = "game"
kind = "minigame"
appid = "wx00000000000000d4"
secret = "game-app-secret-5e21"
[app.xpay]
offer_id = "1450000004"
app_key = "game-prod-appkey-7b2c"
`
	cfg, err := policies.Parse([]byte(text), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := NewGateway(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := gw.current()
	a := g.apps["game"]
	if err := g.store.PutSession(storeCtx, a.appID, "o-game-user", "c2Vzc2lvbi1rZXktMDEyMzQ1Ng=="); err != nil {
		t.Fatal(err)
	}
	r, ok := g.routes.Lookup([]byte("/wxa/game/pay"))
	if !ok || !r.MiniGame {
		t.Fatalf("route %+v", r)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI("/wxa/game/pay?sig_method=md5")
	ctx.Request.SetBodyString(`{"openid":"o-game-user","offer_id":"1450000004","ts":1714528800,"zone_id":"1","env":0,"user_ip":"127.0.0.1","amount":10,"bill_no":"bench-0001"}`)
	return g, a, r, ctx
}

// TestSignMiniGameAllocatesNothing: a /wxa/game/pay call signs like an /xpay/ one (pay_sig,
// signature) plus sig_method, still without an allocation.
func TestSignMiniGameAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items); CI also runs without -race")
	}
	g, a, r, ctx := miniGameCall(t)
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	n := testing.AllocsPerRun(200, func() {
		req.Reset()
		if aerr := g.signXpay(req, ctx, a, r); aerr != nil {
			t.Fatal(aerr.Message)
		}
	})
	if n != 0 {
		t.Errorf("signXpay on /wxa/game/pay: %.1f allocations per call, want 0", n)
	}
	q := req.URI().QueryArgs()
	if !q.Has(argSignature) || !q.Has(argPaySig) || string(q.Peek(argSigMethod)) != policies.MiniGameSigMethod {
		t.Fatalf("signed request %s lacks a signature or sig_method", req.URI())
	}
}

// BenchmarkSignMiniGame is BenchmarkSignXpay for a /wxa/game/pay call.
func BenchmarkSignMiniGame(b *testing.B) {
	g, a, r, ctx := miniGameCall(b)
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	b.ReportAllocs()
	b.SetBytes(int64(len(ctx.PostBody())))
	for b.Loop() {
		req.Reset()
		if aerr := g.signXpay(req, ctx, a, r); aerr != nil {
			b.Fatal(aerr.Message)
		}
	}
}
