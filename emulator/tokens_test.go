package emulator

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{100,}$`)

// tokenWorks reports the errcode an xpay call with tok gets (0 when the token is accepted).
func (h *harness) tokenWorks(tok string) int64 {
	h.t.Helper()
	return h.xpay("/xpay/query_biz_balance", `{"env":0}`, withToken(tok)).code()
}

func TestStableTokenErrors(t *testing.T) {
	h := newHarness(t)
	body := func(grant, appid, secret string) []byte {
		return []byte(`{"grant_type":"` + grant + `","appid":"` + appid + `","secret":"` + secret + `","force_refresh":false}`)
	}
	tests := []struct {
		name   string
		method string
		body   []byte
		want   int64
	}{
		{"GET", "GET", nil, 43002},
		{"not JSON", "POST", []byte(`grant_type=client_credential`), 47001},
		{"JSON array", "POST", []byte(`[]`), 47001},
		{"force_refresh not bool", "POST", []byte(`{"grant_type":"client_credential","appid":"` + appA.AppID + `","secret":"secret-a","force_refresh":"yes"}`), 47001},
		{"bad grant_type", "POST", body("authorization_code", appA.AppID, appA.Secret), 40002},
		{"missing appid", "POST", body("client_credential", "", appA.Secret), 41002},
		{"unknown appid", "POST", body("client_credential", "wx_unknown", appA.Secret), 40013},
		{"missing secret", "POST", body("client_credential", appA.AppID, ""), 41004},
		{"wrong secret", "POST", body("client_credential", appA.AppID, "nope"), 40125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectErr(t, h.getJSON(tt.method, "/cgi-bin/stable_token", tt.body), tt.want)
		})
	}
	if n := h.emu.TokenFetches(appA.AppID); n != 0 {
		t.Errorf("TokenFetches after errors = %d, want 0", n)
	}
}

func TestStableTokenNormalMode(t *testing.T) {
	h := newHarness(t)
	first := h.stableToken(appA, false)
	tok := first.str("access_token")
	if !tokenPattern.MatchString(tok) {
		t.Fatalf("token %q does not look like a WeChat token", tok)
	}
	if _, has := first["errcode"]; has {
		t.Errorf("success answer carries errcode: %v", first)
	}
	if first.num("expires_in") != 7200 {
		t.Errorf("expires_in = %d, want 7200", first.num("expires_in"))
	}

	h.clock.Advance(1000 * time.Second)
	again := h.stableToken(appA, false)
	if again.str("access_token") != tok || again.num("expires_in") != 6200 {
		t.Fatalf("normal mode within validity = %v, want the same token with 6200 s left", again)
	}

	// Inside the last five minutes a new token is issued; the old one works until its expiry.
	h.clock.Advance(6200*time.Second - 5*time.Minute)
	renewed := h.stableToken(appA, false)
	newTok := renewed.str("access_token")
	if newTok == tok || renewed.num("expires_in") != 7200 {
		t.Fatalf("renewal = %v, want a new token with 7200 s", renewed)
	}
	if c := h.tokenWorks(tok); c != 0 {
		t.Fatalf("old token during handover: errcode %d, want 0", c)
	}
	h.clock.Advance(5 * time.Minute)
	if c := h.tokenWorks(tok); c != 42001 {
		t.Fatalf("old token after its expiry: errcode %d, want 42001", c)
	}
	if c := h.tokenWorks(newTok); c != 0 {
		t.Fatalf("new token: errcode %d", c)
	}
	if n := h.emu.TokenFetches(appA.AppID); n != 3 {
		t.Errorf("TokenFetches = %d, want 3", n)
	}
}

func TestStableTokenForceRefresh(t *testing.T) {
	h := newHarness(t)
	tok0 := h.stableToken(appA, false).str("access_token")

	tok1 := h.stableToken(appA, true).str("access_token")
	if tok1 == tok0 {
		t.Fatal("force_refresh returned the same token")
	}
	if c := h.tokenWorks(tok0); c != 40001 {
		t.Errorf("token replaced by force_refresh: errcode %d, want 40001", c)
	}

	// Within 30 s of the last force refresh the current token is returned unchanged.
	h.clock.Advance(29 * time.Second)
	if got := h.stableToken(appA, true).str("access_token"); got != tok1 {
		t.Fatalf("force_refresh within 30 s issued a new token")
	}
	if c := h.tokenWorks(tok1); c != 0 {
		t.Fatalf("token after ignored force_refresh: errcode %d", c)
	}
	h.clock.Advance(time.Second)
	tok2 := h.stableToken(appA, true).str("access_token")
	if tok2 == tok1 {
		t.Fatal("force_refresh 30 s later did not issue a new token")
	}

	// 20 force refreshes per day, then 45009 until the next (Beijing) day.
	for i := 3; i <= forceRefreshPerDay; i++ {
		h.clock.Advance(forceRefreshGap)
		if m := h.stableToken(appA, true); m.str("access_token") == "" {
			t.Fatalf("force refresh %d: %v", i, m)
		}
	}
	h.clock.Advance(forceRefreshGap)
	expectErr(t, h.stableToken(appA, true), 45009)
	if m := h.stableToken(appA, false); m.str("access_token") == "" {
		t.Fatalf("normal mode after the force quota: %v", m)
	}
	h.clock.Advance(14 * time.Hour) // past midnight in Beijing
	if m := h.stableToken(appA, true); m.str("access_token") == "" {
		t.Fatalf("force refresh on the next day: %v", m)
	}
}

func TestClassicToken(t *testing.T) {
	h := newHarness(t)
	get := func(q url.Values) obj { return h.getJSON("GET", "/cgi-bin/token?"+q.Encode(), nil) }
	good := url.Values{"grant_type": {"client_credential"}, "appid": {appA.AppID}, "secret": {appA.Secret}}

	stable := h.token(appA)
	t1 := get(good)
	if !tokenPattern.MatchString(t1.str("access_token")) || t1.num("expires_in") != 7200 {
		t.Fatalf("cgi-bin/token = %v", t1)
	}
	t2 := get(good)
	if c := h.tokenWorks(t1.str("access_token")); c != 40001 {
		t.Errorf("previous classic token: errcode %d, want 40001", c)
	}
	if c := h.tokenWorks(t2.str("access_token")); c != 0 {
		t.Errorf("latest classic token: errcode %d", c)
	}
	if c := h.tokenWorks(stable); c != 0 {
		t.Errorf("stable token after classic fetches: errcode %d (the families are isolated)", c)
	}

	tests := []struct {
		name string
		q    url.Values
		want int64
	}{
		{"bad grant_type", url.Values{"grant_type": {"x"}, "appid": {appA.AppID}, "secret": {appA.Secret}}, 40002},
		{"missing appid", url.Values{"grant_type": {"client_credential"}, "secret": {appA.Secret}}, 41002},
		{"unknown appid", url.Values{"grant_type": {"client_credential"}, "appid": {"wxnope"}, "secret": {"s"}}, 40013},
		{"missing secret", url.Values{"grant_type": {"client_credential"}, "appid": {appA.AppID}}, 41004},
		{"wrong secret", url.Values{"grant_type": {"client_credential"}, "appid": {appA.AppID}, "secret": {"bad"}}, 40125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectErr(t, get(tt.q), tt.want) })
	}
	if n := h.emu.TokenFetches(appA.AppID); n != 3 {
		t.Errorf("TokenFetches = %d, want 3 (1 stable + 2 classic)", n)
	}
}

func TestTokenChecks(t *testing.T) {
	h := newHarness(t)
	good := h.token(appA)
	tests := []struct {
		name  string
		token string
		want  int64
	}{
		{"missing", "", 41001},
		{"malformed: short", "abc", 40014},
		{"malformed: bad character", strings.Repeat("a", tokenLen-1) + "!", 40014},
		{"well-formed but never issued", strings.Repeat("A", tokenLen), 40001},
		{"valid", good, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == 0 {
				if c := h.tokenWorks(tt.token); c != 0 {
					t.Fatalf("errcode %d", c)
				}
				return
			}
			expectErr(t, h.xpay("/xpay/query_biz_balance", `{"env":0}`, withToken(tt.token)), tt.want)
		})
	}
}

func TestInvalidateAndExpireTokens(t *testing.T) {
	h := newHarness(t)
	stable := h.token(appA)
	classic := h.getJSON("GET", "/cgi-bin/token?grant_type=client_credential&appid="+appA.AppID+"&secret="+appA.Secret, nil).str("access_token")
	otherApp := h.token(appV)

	h.emu.InvalidateTokens(appA.AppID)
	for _, tok := range []string{stable, classic} {
		if c := h.tokenWorks(tok); c != 40001 {
			t.Errorf("invalidated token: errcode %d, want 40001", c)
		}
	}
	if c := h.xpay("/xpay/query_biz_balance", `{"env":0}`, withApp(appV), withToken(otherApp)).code(); c != 0 {
		t.Errorf("other app's token after InvalidateTokens: errcode %d", c)
	}
	fresh := h.stableToken(appA, false).str("access_token")
	if fresh == stable || h.tokenWorks(fresh) != 0 {
		t.Fatalf("stable_token after InvalidateTokens did not issue a working new token")
	}

	h.emu.ExpireTokens(appA.AppID)
	if c := h.tokenWorks(fresh); c != 42001 {
		t.Errorf("expired token: errcode %d, want 42001", c)
	}
	next := h.stableToken(appA, false)
	if next.str("access_token") == fresh || next.num("expires_in") != 7200 {
		t.Fatalf("stable_token after ExpireTokens = %v, want a new token", next)
	}
	// Unknown apps are ignored.
	h.emu.InvalidateTokens("wxnope")
	h.emu.ExpireTokens("wxnope")
}
