package proxy_test

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// signatureErrors are the WeChat errcodes that mean wxgate's credentials or signatures were wrong.
var signatureErrors = map[int]bool{268490003: true, 268490009: true, 40001: true, 40014: true, 42001: true, 41001: true, 40066: true, 47001: true}

// TestEveryXpayRouteSigned sends a plausible body to every routed xpay API and checks that the
// emulator, which verifies like WeChat, accepted the access_token, pay_sig and signature.
func TestEveryXpayRouteSigned(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("alice")
	e.emu.Credit(e.cfg.Apps[0].AppID, 0, openid, 1000)
	routes := policies.NewRouteTable(nil).All()
	var n int
	for _, r := range routes {
		if r.Kind != policies.RouteXpay || r.MiniGame {
			continue // the mini-game routes are for a mini game: TestMiniGameServerAPIs calls each
		}
		n++
		t.Run(r.Path, func(t *testing.T) {
			body := fmt.Sprintf(`{"openid":%q,"env":0,"user_ip":"127.0.0.1","amount":1,"order_id":"ord%08d","pay_order_id":"ord%08d","begin_ds":20250101,"end_ds":20250102,"withdraw_no":"wd%08d"}`, openid, n, n, n)
			a := e.do("POST", r.Path, []byte(body))
			if a.Status != 200 {
				t.Fatalf("status %d: %s", a.Status, a.Body)
			}
			if code := a.errcode(t); signatureErrors[code] {
				t.Fatalf("WeChat rejected wxgate's signing: %s", a.Body)
			}
			if got := e.emu.Calls(r.Path); got != 1 {
				t.Fatalf("emulator saw %d calls on %s, want 1", got, r.Path)
			}
		})
	}
	if n < 15 {
		t.Fatalf("only %d xpay routes", n)
	}
}

// TestCorePayFlow walks balance, present, pay and refund, asserting WeChat's state.
func TestCorePayFlow(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("bob")
	appID := e.cfg.Apps[0].AppID
	e.emu.Credit(appID, 0, openid, 100)
	steps := []struct {
		path, body string
		errcode    int
		balance    int64
	}{
		{"/xpay/query_user_balance", `{"openid":"O","env":0,"user_ip":"127.0.0.1"}`, 0, 100},
		{"/xpay/present_currency", `{"openid":"O","env":0,"order_id":"present-0001","amount":20}`, 0, 120},
		{"/xpay/present_currency", `{"openid":"O","env":0,"order_id":"present-0001","amount":20}`, 268490004, 120},
		{"/xpay/currency_pay", `{"openid":"O","env":0,"user_ip":"127.0.0.1","amount":50,"order_id":"pay-000001","payitem":"[]","remark":""}`, 0, 70},
		{"/xpay/currency_pay", `{"openid":"O","env":0,"user_ip":"127.0.0.1","amount":500,"order_id":"pay-000002","payitem":"[]","remark":""}`, 268490006, 70},
		{"/xpay/cancel_currency_pay", `{"openid":"O","env":0,"user_ip":"127.0.0.1","pay_order_id":"pay-000001","order_id":"refund-0001","amount":50}`, 0, 120},
	}
	for _, s := range steps {
		a := e.do("POST", s.path, []byte(strings.ReplaceAll(s.body, `"O"`, `"`+openid+`"`)))
		if got := a.errcode(t); a.Status != 200 || got != s.errcode {
			t.Fatalf("%s: status %d errcode %d, want 200 %d: %s", s.path, a.Status, got, s.errcode, a.Body)
		}
		if b := e.emu.Balance(appID, 0, openid).Balance; b != s.balance {
			t.Fatalf("after %s balance %d, want %d", s.path, b, s.balance)
		}
	}
}

// TestExactBytesSigned sends bodies whose bytes a re-serializer would change; WeChat accepts them
// only if wxgate signed and sent them byte for byte.
func TestExactBytesSigned(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("carol")
	bodies := []string{
		`{"openid": "O", "user_ip": "127.0.0.1", "env": 0}`,
		"{\n  \"user_ip\":\"127.0.0.1\",\n  \"env\":0,\n  \"openid\":\"O\"\n}\n",
		`{"env":0,"openid":"O","user_ip":"127.0.0.1","note":"\u4e2d\u6587 <&> \/"}`,
		`{"env":0.0e0,"openid":"O","user_ip":"127.0.0.1"}`,
	}
	for i, b := range bodies {
		body := strings.ReplaceAll(b, `"O"`, `"`+openid+`"`)
		a := e.do("POST", "/xpay/query_user_balance", []byte(body))
		if i == 3 {
			// env written as 0.0e0 is not the integer 0 wxgate needs to pick a key.
			if a.Status != 400 || a.wxgateError(t) != proxy.CodeBadEnv {
				t.Fatalf("body %d: want 400 %s, got %d %s", i, proxy.CodeBadEnv, a.Status, a.Body)
			}
			continue
		}
		if a.Status != 200 || a.errcode(t) != 0 {
			t.Fatalf("body %d: %d %s", i, a.Status, a.Body)
		}
	}
}

// TestAppSentCredentialsReplaced checks that access_token, pay_sig and signature sent by the app
// are replaced, and other query arguments kept.
func TestAppSentCredentialsReplaced(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("dan")
	body := []byte(`{"openid":"` + openid + `","env":0,"user_ip":"127.0.0.1"}`)
	a := e.do("POST", "/xpay/query_user_balance?access_token=forged&pay_sig=00&trace=t-1&signature=11&lang=zh_CN", body)
	if a.Status != 200 || a.errcode(t) != 0 {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	x, ok := e.emu.LastExchange("/xpay/query_user_balance")
	if !ok {
		t.Fatal("WeChat saw no request")
	}
	q, err := url.ParseQuery(x.Query)
	if err != nil {
		t.Fatal(err)
	}
	for arg, forged := range map[string]string{"access_token": "forged", "pay_sig": "00", "signature": "11"} {
		if vs := q[arg]; len(vs) != 1 || vs[0] == forged || vs[0] == "" {
			t.Errorf("WeChat got %s=%v, want exactly one value of wxgate's own", arg, vs)
		}
	}
	for arg, want := range map[string]string{"trace": "t-1", "lang": "zh_CN"} {
		if got := q[arg]; len(got) != 1 || got[0] != want {
			t.Errorf("the app's %s did not reach WeChat unchanged: %v", arg, got)
		}
	}
	if !bytes.Equal(x.Body, body) {
		t.Errorf("WeChat got body %s, want the app's %s", x.Body, body)
	}
}

// TestSandboxEnvUsesSandboxKey checks that env 1 is signed with the sandbox AppKey (the emulator
// verifies with the key of the body's env) and keeps a separate balance.
func TestSandboxEnvUsesSandboxKey(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("erin")
	appID := e.cfg.Apps[0].AppID
	e.emu.Credit(appID, 1, openid, 7)
	a := e.do("POST", "/xpay/query_user_balance", []byte(`{"openid":"`+openid+`","env":1,"user_ip":"127.0.0.1"}`))
	if a.Status != 200 || a.errcode(t) != 0 || a.json(t)["balance"].(float64) != 7 {
		t.Fatalf("sandbox balance: %d %s", a.Status, a.Body)
	}
}

// TestAppSelection routes by X-Wxgate-App: each app's own AppKey and session store.
func TestAppSelection(t *testing.T) {
	e := startEnv(t, nil)
	shop := e.login("frank")
	drama := e.login("frank", proxy.HeaderApp, "drama")
	if shop == drama {
		t.Fatal("two apps gave the same openid")
	}
	body := []byte(`{"openid":"` + drama + `","env":0,"user_ip":"127.0.0.1"}`)
	if a := e.do("POST", "/xpay/query_user_balance", body, proxy.HeaderApp, "drama"); a.Status != 200 || a.errcode(t) != 0 {
		t.Fatalf("drama: %d %s", a.Status, a.Body)
	}
	// The same openid under the default app has no session: the user never logged in there.
	if a := e.do("POST", "/xpay/query_user_balance", body); a.Status != 409 || a.wxgateError(t) != proxy.CodeSessionKeyMissing {
		t.Fatalf("default app: %d %s", a.Status, a.Body)
	}
}

// TestBadInput is the matrix of app mistakes: each gets a 4xx JSON error with a stable code, and
// nothing reaches WeChat.
func TestBadInput(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("gina")
	big := `{"env":0,"openid":"` + openid + `","pad":"` + strings.Repeat("x", 70000) + `"}`
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     string
	}{
		{"not json", "POST", "/xpay/query_order", `env=0`, nil, 400, proxy.CodeBodyNotJSON},
		{"json array", "POST", "/xpay/query_order", `[{"env":0}]`, nil, 400, proxy.CodeBodyNotJSON},
		{"truncated json", "POST", "/xpay/query_order", `{"env":0`, nil, 400, proxy.CodeBodyNotJSON},
		{"empty body", "POST", "/xpay/query_order", ``, nil, 400, proxy.CodeBodyNotJSON},
		{"missing env", "POST", "/xpay/query_order", `{"order_id":"x"}`, nil, 400, proxy.CodeMissingEnv},
		{"env as string", "POST", "/xpay/query_order", `{"env":"0"}`, nil, 400, proxy.CodeBadEnv},
		{"env 2", "POST", "/xpay/query_order", `{"env":2}`, nil, 400, proxy.CodeBadEnv},
		{"env 1 without sandbox key", "POST", "/xpay/query_order", `{"env":1}`, []string{proxy.HeaderApp, "drama"}, 400, proxy.CodeSandboxKeyMissing},
		{"app without xpay", "POST", "/xpay/query_order", `{"env":0}`, []string{proxy.HeaderApp, "plain"}, 400, proxy.CodeXpayNotConfigured},
		{"unknown app", "POST", "/xpay/query_order", `{"env":0}`, []string{proxy.HeaderApp, "nope"}, 400, proxy.CodeUnknownApp},
		{"unknown path", "POST", "/xpay/not_an_api", `{"env":0}`, nil, 404, proxy.CodeUnknownRoute},
		{"token endpoint not routed", "POST", "/cgi-bin/stable_token", `{}`, nil, 404, proxy.CodeUnknownRoute},
		{"get on xpay", "GET", "/xpay/query_order", ``, nil, 405, proxy.CodeMethodNotAllowed},
		{"missing openid", "POST", "/xpay/currency_pay", `{"env":0,"amount":1}`, nil, 400, proxy.CodeMissingOpenID},
		{"openid not a string", "POST", "/xpay/currency_pay", `{"env":0,"openid":7}`, nil, 400, proxy.CodeMissingOpenID},
		{"no session key", "POST", "/xpay/currency_pay", `{"env":0,"openid":"o-never-logged-in"}`, nil, 409, proxy.CodeSessionKeyMissing},
		{"login without code", "GET", "/sns/jscode2session", ``, nil, 400, proxy.CodeBadRequest},
		{"body too large", "POST", "/xpay/query_order", big, nil, 413, proxy.CodeBodyTooLarge},
		{"unknown helper", "POST", "/wxgate/nope", `{}`, nil, 404, proxy.CodeUnknownRoute},
		{"params bad mode", "POST", proxy.PathXpayPaymentParams, `{"openid":"` + openid + `","mode":"x","signData":{}}`, nil, 400, proxy.CodeBadRequest},
		{"params no signData", "POST", proxy.PathXpayPaymentParams, `{"openid":"` + openid + `","mode":"short_series_coin"}`, nil, 400, proxy.CodeBadRequest},
		{"params signData array", "POST", proxy.PathXpayPaymentParams, `{"openid":"` + openid + `","mode":"short_series_coin","signData":[1]}`, nil, 400, proxy.CodeBadRequest},
		{"params no session", "POST", proxy.PathXpayPaymentParams, `{"openid":"o-unknown","mode":"short_series_coin","signData":{"env":0}}`, nil, 409, proxy.CodeSessionKeyMissing},
		{"session-keys bad key", "POST", proxy.PathSessionKeys, `{"openid":"o1","session_key":"not base64!"}`, nil, 400, proxy.CodeBadRequest},
		{"session-keys no openid", "POST", proxy.PathSessionKeys, `{"session_key":"9hAb/NEYUlkaMBEsmFgzig=="}`, nil, 400, proxy.CodeMissingOpenID},
	}
	before := totalCalls(e)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" || tt.method == "POST" {
				body = []byte(tt.body)
			}
			a := e.do(tt.method, tt.path, body, tt.headers...)
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.Status, tt.status, a.Body)
			}
			if got := a.wxgateError(t); got != tt.code {
				t.Fatalf("code %q, want %q: %s", got, tt.code, a.Body)
			}
			if a.Header["X-Wxgate-Error"] != tt.code {
				t.Fatalf("X-Wxgate-Error %q, want %q", a.Header["X-Wxgate-Error"], tt.code)
			}
		})
	}
	if after := totalCalls(e); after != before {
		t.Fatalf("bad requests reached WeChat: %d calls before, %d after", before, after)
	}
}

func totalCalls(e *testEnv) int {
	n := 0
	for _, r := range policies.NewRouteTable(nil).All() {
		n += e.emu.Calls(r.Path)
	}
	return n
}

// TestWeChatAnswerUnchanged: WeChat's answers, business errors and successes, reach the app with
// the status and body bytes WeChat sent.
func TestWeChatAnswerUnchanged(t *testing.T) {
	e := startEnv(t, nil)
	openid := e.login("hank")
	for _, body := range []string{
		`{"openid":"` + openid + `","env":0,"user_ip":"1.1.1.1","amount":5,"order_id":"short"}`, // an errcode answer
		`{"openid":"` + openid + `","env":0,"user_ip":"1.1.1.1"}`,                               // a success
	} {
		path := "/xpay/currency_pay"
		if !strings.Contains(body, "amount") {
			path = "/xpay/query_user_balance"
		}
		a := e.do("POST", path, []byte(body))
		x, ok := e.emu.LastExchange(path)
		if !ok {
			t.Fatal("WeChat saw no request")
		}
		if a.Status != x.Status || !bytes.Equal(a.Body, x.Answer) {
			t.Fatalf("WeChat answered %d %q, the app got %d %q", x.Status, x.Answer, a.Status, a.Body)
		}
	}
}

// TestStaleTokenNoRequestFails runs concurrent app requests while WeChat invalidates and expires
// the token several times: every request succeeds, each through at most one retry. A rotation
// happens between requests (never twice within one request, which a single retry cannot
// outlast and which WeChat does not do), so every request in flight meets a token gone stale.
func TestStaleTokenNoRequestFails(t *testing.T) {
	e := startEnv(t, nil)
	appID := e.cfg.Apps[0].AppID
	openid := e.login("ivy")
	body := []byte(`{"openid":"` + openid + `","env":0,"user_ip":"127.0.0.1"}`)
	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	var rotation sync.RWMutex // requests share it; a rotation takes it alone
	failures := make(chan string, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if w == 0 && i%10 == 5 {
					rotation.Lock()
					if i%20 == 5 {
						e.emu.InvalidateTokens(appID)
					} else {
						e.emu.ExpireTokens(appID)
					}
					rotation.Unlock()
				}
				rotation.RLock()
				a := e.do("POST", "/xpay/query_user_balance", body)
				rotation.RUnlock()
				if a.Status != 200 || a.errcode(t) != 0 {
					failures <- fmt.Sprintf("%d %s", a.Status, a.Body)
				}
			}
		}(w)
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error("request failed during token rotation:", f)
	}
	if e.emu.TokenFetches(appID) < 2 {
		t.Fatalf("token was never refreshed (%d fetches)", e.emu.TokenFetches(appID))
	}
}

// TestConcurrentUsers logs many users in concurrently and has each pay: every signature is made
// with that user's own latest session_key.
func TestConcurrentUsers(t *testing.T) {
	e := startEnv(t, nil)
	appID := e.cfg.Apps[0].AppID
	const users = 40
	var wg sync.WaitGroup
	errs := make(chan string, users*3)
	for u := 0; u < users; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			name := fmt.Sprintf("user%d", u)
			openid := e.login(name)
			e.emu.Credit(appID, 0, openid, 10)
			for i := 0; i < 3; i++ {
				if i == 1 {
					openid = e.login(name) // a new login replaces the session_key
				}
				body := fmt.Sprintf(`{"openid":%q,"env":0,"user_ip":"127.0.0.1","amount":1,"order_id":"u%03dorder%d","payitem":"[]","remark":""}`, openid, u, i)
				a := e.do("POST", "/xpay/currency_pay", []byte(body))
				if a.Status != 200 || a.errcode(t) != 0 {
					errs <- fmt.Sprintf("user %d pay %d: %d %s", u, i, a.Status, a.Body)
				}
			}
			if b := e.emu.Balance(appID, 0, openid).Balance; b != 7 {
				errs <- fmt.Sprintf("user %d balance %d, want 7", u, b)
			}
		}(u)
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
}

// TestAllowlistedRoute forwards an allowlisted API with the access_token and rejects others.
func TestAllowlistedRoute(t *testing.T) {
	e := startEnv(t, nil)
	for _, p := range []string{"/wxa/msg_sec_check", "/wxa/custom_allowed"} {
		a := e.do("POST", p, []byte(`{"content":"hello"}`))
		if a.Status != 200 || a.errcode(t) != 0 {
			t.Fatalf("%s: %d %s", p, a.Status, a.Body)
		}
	}
	if a := e.do("GET", "/cgi-bin/openapi/quota/get", nil); a.Status != 200 || signatureErrors[a.errcode(t)] {
		t.Fatalf("GET allowlisted: %d %s", a.Status, a.Body)
	}
}

// TestUpstreamFailures checks the answers when WeChat is down, slow, or failing.
func TestUpstreamFailures(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		e := startEnv(t, nil)
		e.emu.Shutdown()
		a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"x"}`))
		if a.Status != 502 || !strings.HasPrefix(a.wxgateError(t), "wxgate.") {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := startEnv(t, func(s string) string { return strings.Replace(s, `timeout = "2s"`, `timeout = "300ms"`, 1) })
		e.warmToken() // token fetched while WeChat is fast
		e.emu.SetFaults(emulator.Faults{FailNext: 1, Mode: emulator.FailHang, Latency: 2e9})
		a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"x"}`))
		if a.Status != 504 || a.wxgateError(t) != proxy.CodeUpstreamTimeout {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})
	t.Run("http 500 passes through", func(t *testing.T) {
		e := startEnv(t, nil)
		e.warmToken()
		e.emu.SetFaults(emulator.Faults{FailNext: 1, Mode: emulator.FailHTTP500})
		a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"x"}`))
		if a.Status != 500 {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})
	t.Run("connection closed", func(t *testing.T) {
		e := startEnv(t, nil)
		e.warmToken()
		e.emu.SetFaults(emulator.Faults{FailNext: 1, Mode: emulator.FailClose})
		a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"x"}`))
		if a.Status != 502 || a.wxgateError(t) != proxy.CodeUpstreamUnreach {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})
	t.Run("wrong app secret", func(t *testing.T) {
		e := startEnv(t, nil)
		// A gateway whose secret for shop differs from WeChat's: the error says so, without the secret.
		cfg := e.configWith(func(s string) string { return strings.Replace(s, "shop-app-secret-7f3a", "wrong-secret-value-1234", 1) })
		_, appURL, _ := e.startGateway(cfg)
		a := e.doURL("POST", appURL+"/xpay/query_order", []byte(`{"env":0,"order_id":"x"}`))
		if a.Status != 502 || a.wxgateError(t) != proxy.CodeTokenUnavailable {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
		if bytes.Contains(a.Body, []byte("wrong-secret-value-1234")) {
			t.Fatalf("secret leaked in the error: %s", a.Body)
		}
	})
}

// TestOneTokenFetchForManyRequests sends many first requests at once: they share one stable_token
// fetch.
func TestOneTokenFetchForManyRequests(t *testing.T) {
	e := startEnv(t, nil)
	appID := e.cfg.Apps[0].AppID
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"none-00001"}`)); a.Status != 200 || signatureErrors[a.errcode(t)] {
				t.Errorf("%d %s", a.Status, a.Body)
			}
		}()
	}
	wg.Wait()
	if n := e.emu.Calls("/cgi-bin/stable_token"); n != 1 {
		t.Fatalf("%d stable_token calls for 50 concurrent requests, want 1", n)
	}
	if n := e.emu.TokenFetches(appID); n != 1 {
		t.Fatalf("%d tokens issued, want 1", n)
	}
}

// TestStaleTokenRetriedOnce: when WeChat answers that the access_token is stale (it was revoked
// after wxgate cached it), wxgate fetches a fresh one and sends the call again, once: the app sees
// only the successful answer.
func TestStaleTokenRetriedOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale func(e *testEnv, appID string)
	}{
		{"revoked (40001)", func(e *testEnv, appID string) { e.emu.InvalidateTokens(appID) }},
		{"expired (42001)", func(e *testEnv, appID string) { e.emu.ExpireTokens(appID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, nil)
			appID := e.cfg.Apps[0].AppID
			e.warmToken()
			calls, fetches, retries := e.emu.Calls("/xpay/query_order"), e.emu.TokenFetches(appID), e.metric(t, "wxgate_stale_token_retries_total")
			tc.stale(e, appID)
			a := e.do("POST", "/xpay/query_order", []byte(`{"env":0,"order_id":"stale-000001"}`))
			if a.Status != 200 || signatureErrors[a.errcode(t)] || a.errcode(t) == 40001 || a.errcode(t) == 42001 {
				t.Fatalf("the call after the token went stale: %d %s", a.Status, a.Body)
			}
			if got := e.emu.Calls("/xpay/query_order") - calls; got != 2 {
				t.Errorf("WeChat saw the call %d times, want 2 (the stale one and the retry)", got)
			}
			if got := e.emu.TokenFetches(appID) - fetches; got != 1 {
				t.Errorf("%d token fetches, want 1", got)
			}
			if got := e.metric(t, "wxgate_stale_token_retries_total") - retries; got != 1 {
				t.Errorf("wxgate_stale_token_retries_total rose by %v, want 1", got)
			}
		})
	}
}
