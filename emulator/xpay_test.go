package emulator

import (
	"strings"
	"testing"
)

func TestXpayVerification(t *testing.T) {
	h := newHarness(t)
	alice, aliceKey := h.login(appA, "alice")
	balanceBody := `{"openid":"` + alice + `","env":0,"user_ip":"127.0.0.1"}`
	sandboxBody := `{"openid":"` + alice + `","env":1,"user_ip":"127.0.0.1"}`
	bob := h.emu.OpenID(appA.AppID, "bob") // never logged in
	bobBody := `{"openid":"` + bob + `","env":0,"user_ip":"127.0.0.1"}`

	stale := h.stableToken(appA, false).str("access_token")
	h.clock.Advance(forceRefreshGap)
	h.tokens[appA.AppID] = h.stableToken(appA, true).str("access_token") // stale is now replaced

	const uri = "/xpay/query_user_balance"
	goodSig := paySigHex(appA.AppKey, uri, balanceBody)
	tests := []struct {
		name    string
		body    string
		opts    []xopt
		want    int64
		msgHas  string
		wantKey string // a field a successful answer must carry
	}{
		{name: "ok", body: balanceBody, want: 0, wantKey: "balance"},
		{name: "ok sandbox with sandbox key", body: sandboxBody, want: 0, wantKey: "balance"},
		{name: "GET", body: balanceBody, opts: []xopt{withMethod("GET")}, want: 43002},
		{name: "missing token", body: balanceBody, opts: []xopt{withToken("")}, want: 41001},
		{name: "malformed token", body: balanceBody, opts: []xopt{withToken("not-a-token")}, want: 40014},
		{name: "stale token", body: balanceBody, opts: []xopt{withToken(stale)}, want: 40001},
		{name: "body not JSON", body: `openid=x`, want: 47001},
		{name: "body is an array", body: `[1]`, want: 47001},
		{name: "body is null", body: `null`, want: 47001},
		{name: "env 2", body: `{"openid":"` + alice + `","env":2}`, want: 268490002},
		{name: "env as string", body: `{"openid":"` + alice + `","env":"0"}`, want: 268490002},
		{name: "missing pay_sig", body: balanceBody, opts: []xopt{withPaySig("")}, want: 268490003, msgHas: "pay_sig"},
		{name: "wrong pay_sig", body: balanceBody, opts: []xopt{withPaySig(strings.Repeat("0", 64))}, want: 268490003, msgHas: "pay_sig"},
		{name: "upper-case pay_sig", body: balanceBody, opts: []xopt{withPaySig(strings.ToUpper(goodSig))}, want: 268490003, msgHas: "pay_sig"},
		{name: "sandbox key for env 0", body: balanceBody, opts: []xopt{withKey(appA.SandboxAppKey)}, want: 268490003, msgHas: "pay_sig"},
		{name: "production key for env 1", body: sandboxBody, opts: []xopt{withKey(appA.AppKey)}, want: 268490003, msgHas: "pay_sig"},
		{name: "pay_sig over another uri", body: balanceBody, opts: []xopt{withPaySig(paySigHex(appA.AppKey, "xpay/query_user_balance", balanceBody))}, want: 268490003, msgHas: "pay_sig"},
		{name: "pay_sig over re-serialised body", body: balanceBody, opts: []xopt{withPaySig(paySigHex(appA.AppKey, uri, strings.ReplaceAll(balanceBody, ",", ", ")))}, want: 268490003, msgHas: "pay_sig"},
		{name: "no session", body: bobBody, want: 268490009},
		{name: "missing signature", body: balanceBody, opts: []xopt{withSignature("")}, want: 268490003, msgHas: "用户态签名"},
		{name: "wrong signature", body: balanceBody, opts: []xopt{withSignature(userSigHex("AAAAAAAAAAAAAAAAAAAAAA==", balanceBody))}, want: 268490003, msgHas: "用户态签名"},
		{name: "upper-case signature", body: balanceBody, opts: []xopt{withSignature(strings.ToUpper(userSigHex(aliceKey, balanceBody)))}, want: 268490003, msgHas: "用户态签名"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := h.xpay(uri, tt.body, tt.opts...)
			expectErr(t, m, tt.want)
			if tt.msgHas != "" && !strings.Contains(m.str("errmsg"), tt.msgHas) {
				t.Errorf("errmsg %q does not mention %q", m.str("errmsg"), tt.msgHas)
			}
			if tt.wantKey != "" {
				if _, ok := m[tt.wantKey]; !ok {
					t.Errorf("answer %v lacks %q", m, tt.wantKey)
				}
			}
		})
	}

	// A new login replaces the session key: signatures with the old one fail.
	h.login(appA, "alice")
	m := h.xpay(uri, balanceBody, withSignature(userSigHex(aliceKey, balanceBody)))
	expectErr(t, m, 268490003)

	// Expired tokens.
	h.emu.ExpireTokens(appA.AppID)
	expectErr(t, h.xpay(uri, balanceBody), 42001)
}

// TestXpayOfficialVector checks the emulator against the official pay_sig example (xpay.md
// §2.4.1): AppKey "12345", the documented body with its spaces, and the documented pay_sig.
// The pay_sig is accepted, so the request proceeds to the user-signature step (no session).
func TestXpayOfficialVector(t *testing.T) {
	h := newHarness(t)
	const body = `{"openid": "xxx", "user_ip": "127.0.0.1", "env": 0}`
	const sig = "c37809f27c6d7fd1837ad2500a04512b66b34fd793a39a385fade56dca89a4b5"
	expectErr(t, h.xpay("/xpay/query_user_balance", body, withApp(appV), withPaySig(sig)), 268490009)
	expectErr(t, h.xpay("/xpay/query_user_balance", body, withApp(appV), withPaySig(strings.ToUpper(sig))), 268490003)
}

// TestXpayEveryRoute sends a signed minimal body to every known URI: each one is routed (no
// 40066) and its pay_sig verified; the admin endpoints answer errcode 0 with their lists.
func TestXpayEveryRoute(t *testing.T) {
	h := newHarness(t)
	for uri, route := range xpayRoutes {
		t.Run(uri, func(t *testing.T) {
			m := h.xpay(uri, `{"env":0}`)
			if c := m.code(); c == 40066 || c == 268490003 || c == 47001 {
				t.Fatalf("errcode %d: %s", c, m.str("errmsg"))
			}
			if route.userSig && m.code() != 268490009 {
				t.Errorf("user-signed route without openid: errcode %d, want 268490009", m.code())
			}
			expectErr(t, h.xpay(uri, `{"env":0}`, withPaySig(strings.Repeat("ab", 32))), 268490003)
		})
	}
	emptyLists := map[string]string{
		"/xpay/query_transfer_account":  "acct_list",
		"/xpay/query_adver_funds":       "adver_funds_list",
		"/xpay/query_funds_bill":        "bill_list",
		"/xpay/query_recover_bill":      "bill_list",
		"/xpay/get_complaint_list":      "complaints",
		"/xpay/get_negotiation_history": "history",
	}
	for uri, key := range emptyLists {
		m := h.xpay(uri, `{"env":0}`)
		expectErr(t, m, 0)
		if l, ok := m[key].([]any); !ok || len(l) != 0 {
			t.Errorf("%s: %q = %v, want an empty list", uri, key, m[key])
		}
	}
	for _, uri := range []string{"/xpay/create_funds_bill", "/xpay/upload_vp_file", "/xpay/download_adverfunds_order"} {
		m := h.xpay(uri, `{"env":1}`)
		expectErr(t, m, 0)
		if m.str("bill_id")+m.str("file_id")+m.str("url") == "" {
			t.Errorf("%s: answer %v carries no id or url", uri, m)
		}
	}
	if s := h.xpay("/xpay/query_subscribe_contract", `{"env":0}`).str("authorization_state"); s != "UNBINDUSER" {
		t.Errorf("query_subscribe_contract state = %q", s)
	}
}
