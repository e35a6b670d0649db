package credentials

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestStableTokenClientAgainstFakeWeChat(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	cases := []struct {
		name     string
		appID    string
		secret   string
		force    bool
		wantCode int // 0: success
	}{
		{name: "normal", appID: testAppID, secret: testSecret},
		{name: "force", appID: testAppID, secret: testSecret, force: true},
		{name: "wrong appid", appID: "wxffffffffffffffff", secret: testSecret, wantCode: 40013},
		{name: "wrong secret", appID: testAppID, secret: "wrong-" + testSecret, wantCode: 40125},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cli := w.client(c.secret)
			cli.AppID = c.appID
			tok, ttl, err := cli.Fetch(c.force)
			if c.wantCode == 0 {
				if err != nil || tok == "" || ttl != 7200*time.Second {
					t.Fatalf("Fetch = %q, %v, %v", tok, ttl, err)
				}
				return
			}
			var we *WeChatError
			if !errors.As(err, &we) || we.Code != c.wantCode {
				t.Fatalf("err = %v, want WeChatError %d", err, c.wantCode)
			}
			if !strings.Contains(err.Error(), c.appID) {
				t.Errorf("error lacks the app id for context: %v", err)
			}
			assertNoSecrets(t, err.Error(), c.secret, w.issuedTokens())
		})
	}
	if n, f := w.counts(); n != 1 || f != 1 {
		t.Errorf("server saw normal=%d force=%d", n, f)
	}
}

// rawServer answers every request with a fixed status and body.
func rawServer(t *testing.T, status int, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(status)
		ctx.SetBodyString(body)
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
	})
	return "http://" + ln.Addr().String()
}

func TestStableTokenClientBadAnswers(t *testing.T) {
	const tok = "LEAKY_TOKEN_abcdef"
	cases := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"http error", 502, `{"access_token":"` + tok + `","expires_in":7200}`, "HTTP status 502"},
		{"not json", 200, `<html>` + tok + `</html>`, "is not JSON"},
		{"wrong type", 200, `{"access_token":"` + tok + `","expires_in":"7200"}`, `field "expires_in" has JSON type string`},
		{"missing token", 200, `{"expires_in":7200}`, "no access_token"},
		{"zero expires_in", 200, `{"access_token":"` + tok + `","expires_in":0}`, "invalid expires_in 0"},
		{"negative expires_in", 200, `{"access_token":"` + tok + `","expires_in":-5}`, "invalid expires_in -5"},
		{"errcode with token", 200, `{"errcode":45009,"errmsg":"reach max api daily quota limit","access_token":"` + tok + `"}`, "wechat errcode 45009"},
		{"long errmsg", 200, `{"errcode":-1,"errmsg":"` + strings.Repeat("x", 1000) + `"}`, "xxx…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cli := &StableTokenClient{Client: &fasthttp.Client{}, BaseURL: rawServer(t, c.status, c.body) + "/",
				AppID: testAppID, Secret: testSecret}
			got, ttl, err := cli.Fetch(false)
			if err == nil || got != "" || ttl != 0 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Fetch = %q, %v, %v; want error containing %q", got, ttl, err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "credentials: stable_token for app "+testAppID) {
				t.Errorf("error lacks context: %v", err)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			assertNoSecrets(t, err.Error(), testSecret, []string{tok})
		})
	}
}

func TestStableTokenClientTransportErrors(t *testing.T) {
	if _, _, err := (&StableTokenClient{AppID: testAppID}).Fetch(false); err == nil {
		t.Fatal("missing secret accepted")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	cli := &StableTokenClient{BaseURL: "http://" + addr, AppID: testAppID, Secret: testSecret, Timeout: 2 * time.Second}
	_, _, err = cli.Fetch(true)
	if err == nil || !strings.Contains(err.Error(), "stable_token for app") {
		t.Fatalf("err = %v", err)
	}
	assertNoSecrets(t, err.Error(), testSecret, nil)
}

// TestTokenErrorsNeverLeakSecrets drives every failure path of Tokens with a secret that
// WeChat echoes back and with issued tokens around, and checks no error text leaks them.
func TestTokenErrorsNeverLeakSecrets(t *testing.T) {
	clk := newFakeClock()
	w := newFakeWeChat(t, clk)
	var texts []string

	bad := NewTokens(w.client("wrong-"+testSecret).Fetch, TokenOptions{Clock: clk.Now, FetchesPerMinute: fastFetches})
	if _, err := bad.Get(); err != nil {
		texts = append(texts, err.Error(), bad.Status().LastError)
	}
	if _, err := bad.Stale("ACCESS_TOKEN_X"); err != nil {
		texts = append(texts, err.Error())
	}

	tk := newTestTokens(w, clk, TokenOptions{})
	for range 2 { // the second round hits the force interval
		cur, err := tk.Get()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Stale(cur); err != nil {
			texts = append(texts, err.Error(), tk.Status().LastError)
		}
	}
	w.setFailNext(1)
	clk.Advance(3 * time.Hour)
	if _, err := tk.Get(); err != nil {
		texts = append(texts, err.Error())
	}
	if len(texts) < 5 {
		t.Fatalf("only %d error texts collected: %q", len(texts), texts)
	}
	for _, s := range texts {
		assertNoSecrets(t, s, testSecret, w.issuedTokens())
		assertNoSecrets(t, s, "wrong-"+testSecret, nil)
	}
}

func assertNoSecrets(t *testing.T, text, secret string, tokens []string) {
	t.Helper()
	if strings.Contains(text, secret) {
		t.Errorf("error text contains the secret: %q", text)
	}
	for _, tok := range tokens {
		if strings.Contains(text, tok) {
			t.Errorf("error text contains a token: %q", text)
		}
	}
}

// TestStableTokenClientBounds answers at each limit parse and scrub apply, and one past it.
func TestStableTokenClientBounds(t *testing.T) {
	const maxExpiresIn = math.MaxInt64 / int64(time.Second) // the largest that fits a Duration
	long := strings.Repeat("x", maxErrMsg)
	cases := []struct {
		name    string
		body    string
		wantTTL time.Duration // > 0: the answer is accepted with this ttl
		wantErr string        // else the error contains this
		wantMsg string        // and, when set, is a WeChatError with this Msg
	}{
		{name: "one second", body: `{"access_token":"T","expires_in":1}`, wantTTL: time.Second},
		{name: "largest expires_in", body: fmt.Sprintf(`{"access_token":"T","expires_in":%d}`, maxExpiresIn),
			wantTTL: time.Duration(maxExpiresIn) * time.Second},
		{name: "expires_in one past the largest", body: fmt.Sprintf(`{"access_token":"T","expires_in":%d}`, maxExpiresIn+1),
			wantErr: fmt.Sprintf("invalid expires_in %d", maxExpiresIn+1)},
		{name: "errmsg of maxErrMsg bytes is kept whole", body: `{"errcode":-1,"errmsg":"` + long + `"}`,
			wantErr: "wechat errcode -1", wantMsg: long},
		{name: "errmsg one byte longer is cut", body: `{"errcode":-1,"errmsg":"` + long + `y"}`,
			wantErr: "wechat errcode -1", wantMsg: long + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cli := &StableTokenClient{Client: &fasthttp.Client{}, BaseURL: rawServer(t, 200, c.body),
				AppID: testAppID, Secret: testSecret}
			tok, ttl, err := cli.Fetch(false)
			if c.wantTTL > 0 {
				if err != nil || tok != "T" || ttl != c.wantTTL {
					t.Fatalf("Fetch = %q, %v, %v; want T, %v", tok, ttl, err, c.wantTTL)
				}
				return
			}
			if err == nil || tok != "" || ttl != 0 || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Fetch = %q, %v, %v; want error containing %q", tok, ttl, err, c.wantErr)
			}
			if c.wantMsg != "" {
				var we *WeChatError
				if !errors.As(err, &we) || we.Msg != c.wantMsg {
					t.Fatalf("err = %v, want a WeChatError with a %d-byte Msg", err, len(c.wantMsg))
				}
			}
		})
	}
}
