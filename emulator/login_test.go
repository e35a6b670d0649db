package emulator

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"testing"
)

var openIDPattern = regexp.MustCompile(`^o[A-Za-z0-9_-]{27}$`)

func TestLogin(t *testing.T) {
	h := newHarness(t)
	m := h.getJSON("GET", loginURL(appA, "test:alice"), nil)
	if len(m) != 2 {
		t.Errorf("login answer has keys %v, want only session_key and openid", m)
	}
	openid, key := m.str("openid"), m.str("session_key")
	if !openIDPattern.MatchString(openid) {
		t.Errorf("openid %q is not 28 characters starting with o", openid)
	}
	if openid != h.emu.OpenID(appA.AppID, "alice") {
		t.Errorf("openid %q != OpenID(alice) %q", openid, h.emu.OpenID(appA.AppID, "alice"))
	}
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 || len(key) != 24 {
		t.Errorf("session_key %q is not 16 bytes in standard base64", key)
	}
	if got, ok := h.emu.SessionKey(appA.AppID, openid); !ok || got != key {
		t.Errorf("SessionKey = %q, %v; want %q", got, ok, key)
	}

	// The code is single use; a new code for the same user replaces the session key.
	expectErr(t, h.getJSON("GET", loginURL(appA, "test:alice"), nil), 40029)
	m2 := h.getJSON("GET", loginURL(appA, "test:alice:again"), nil)
	if m2.str("openid") != openid || m2.str("session_key") == key {
		t.Errorf("second login = %v, want the same openid and a new session_key", m2)
	}
	if got, _ := h.emu.SessionKey(appA.AppID, openid); got != m2.str("session_key") {
		t.Errorf("SessionKey after second login = %q, want the new key", got)
	}

	// The openid depends on the app and the user.
	if h.emu.OpenID(appV.AppID, "alice") == openid || h.emu.OpenID(appA.AppID, "bob") == openid {
		t.Error("openids collide across apps or users")
	}
	if _, ok := h.emu.SessionKey(appA.AppID, h.emu.OpenID(appA.AppID, "bob")); ok {
		t.Error("SessionKey for a user who never logged in")
	}
}

func TestLoginErrors(t *testing.T) {
	h := newHarness(t)
	q := func(appid, secret, code, grant string) string {
		v := url.Values{"appid": {appid}, "secret": {secret}, "js_code": {code}, "grant_type": {grant}}
		return "/sns/jscode2session?" + v.Encode()
	}
	tests := []struct {
		name string
		uri  string
		want int64
	}{
		{"not a test code", q(appA.AppID, appA.Secret, "081abcDEF", "authorization_code"), 40029},
		{"empty user", q(appA.AppID, appA.Secret, "test:", "authorization_code"), 40029},
		{"missing code", q(appA.AppID, appA.Secret, "", "authorization_code"), 41008},
		{"wrong grant_type", q(appA.AppID, appA.Secret, "test:x", "client_credential"), 40002},
		{"unknown appid", q("wxnope", appA.Secret, "test:x", "authorization_code"), 40013},
		{"wrong secret", q(appA.AppID, "bad", "test:x", "authorization_code"), 40125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectErr(t, h.getJSON("GET", tt.uri, nil), tt.want) })
	}
	// A failed attempt does not burn the code.
	if m := h.getJSON("GET", loginURL(appA, "test:x"), nil); m.str("openid") == "" {
		t.Fatalf("login with a code used only in failed attempts: %v", m)
	}
}
