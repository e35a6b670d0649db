package proxy

import (
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// TestSignV3AllocatesOnlyRSA: signing an APIv3 request (message, signature on a worker,
// Authorization, URI) allocates nothing beyond the two allocations crypto/rsa makes itself
// (BenchmarkStdlibRSASignFloor in signer).
func TestSignV3AllocatesOnlyRSA(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items); CI also runs without -race")
	}
	g := merchantGateway(t)
	t.Cleanup(g.Close)
	m := g.current().merchants["pk"]
	body := []byte(`{"appid":"wx00000000000000a1","mchid":"1900000001","description":"d","out_trade_no":"o1","notify_url":"https://127.0.0.1/n","amount":{"total":1},"payer":{"openid":"o"}}`)
	uri := []byte("/v3/pay/transactions/jsapi")
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	sign := func() {
		req.Reset()
		if aerr := g.signV3(g.current().mch, m, req, fasthttp.MethodPost, uri, body); aerr != nil {
			t.Fatal(aerr.Message)
		}
	}
	sign() // start the workers, warm the pools
	if n := testing.AllocsPerRun(50, sign); n > 2 {
		t.Errorf("signV3: %.1f allocations per call, want at most crypto/rsa's 2", n)
	}
	if auth := string(req.Header.Peek(fasthttp.HeaderAuthorization)); !strings.Contains(auth, `mchid="1900000001"`) || !strings.Contains(auth, `signature="`) {
		t.Errorf("Authorization %s", auth)
	}
	if got := req.URI().String(); got != "https://127.0.0.1:1/v3/pay/transactions/jsapi" {
		t.Errorf("URI %s", got)
	}
}

// merchantGateway is a gateway for testdata/gateway.toml and merchants.toml with nothing to
// reach upstream.
func merchantGateway(t *testing.T) *Gateway {
	t.Helper()
	var text strings.Builder
	for _, f := range []string{"testdata/gateway.toml", "testdata/merchants.toml"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(raw)
	}
	cfg, err := policies.Parse([]byte(strings.NewReplacer("MCHUPSTREAM", "https://127.0.0.1:1", "UPSTREAM", "http://127.0.0.1:1",
		"CAFILE", "client_cert.pem", "RECEIVER", "http://127.0.0.1:1/events", "PUBKEYFILE", "stand_in_pub.pem",
		"PUBKEYID", "PUB_KEY_ID_0000000000000000000000000000000000").Replace(text.String())), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGateway(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}
