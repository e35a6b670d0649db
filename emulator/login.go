package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/valyala/fasthttp"
)

// testCodePrefix starts every login code the emulator accepts: "test:<user>[:<nonce>]".
const testCodePrefix = "test:"

// loginState is an app's login bookkeeping, guarded by Emulator.mu.
type loginState struct {
	usedCodes map[string]struct{} // login codes already exchanged (codes are single use)
	sessions  map[string]string   // openid -> current session_key
}

func newLoginState() loginState {
	return loginState{usedCodes: make(map[string]struct{}), sessions: make(map[string]string)}
}

// loginAnswer is code2Session's success answer (no errcode, like WeChat).
type loginAnswer struct {
	SessionKey string `json:"session_key"`
	OpenID     string `json:"openid"`
}

// serveLogin answers GET /sns/jscode2session.
func (e *Emulator) serveLogin(ctx *fasthttp.RequestCtx) {
	now := e.now()
	q := ctx.QueryArgs()
	a, aerr := e.authenticateApp(string(q.Peek("grant_type")), "authorization_code", q.Peek("appid"), q.Peek("secret"))
	if aerr != nil {
		writeError(ctx, now, aerr)
		return
	}
	code := string(q.Peek("js_code"))
	if code == "" {
		writeError(ctx, now, errCodeMissing)
		return
	}
	user, ok := parseTestCode(code)
	if !ok {
		writeError(ctx, now, errBadCode)
		return
	}
	openid := openIDFor(a.cfg.AppID, user)
	key := newSessionKey()
	e.mu.Lock()
	_, used := a.usedCodes[code]
	if !used {
		a.usedCodes[code] = struct{}{}
		a.sessions[openid] = key // the new key replaces the previous one
	}
	e.mu.Unlock()
	if used {
		writeError(ctx, now, errBadCode)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, &loginAnswer{SessionKey: key, OpenID: openid})
}

// parseTestCode returns the user of a "test:<user>" or "test:<user>:<nonce>" code.
func parseTestCode(code string) (string, bool) {
	rest, ok := strings.CutPrefix(code, testCodePrefix)
	if !ok {
		return "", false
	}
	user, _, _ := strings.Cut(rest, ":")
	return user, user != ""
}

// openIDFor derives a stable 28-character openid ("o" + 27 of [A-Za-z0-9_-]) from app and user.
func openIDFor(appID, user string) string {
	sum := sha256.Sum256([]byte("wxgate-emulator-openid\x00" + appID + "\x00" + user))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// newSessionKey returns a fresh session_key: 16 random bytes in standard base64 (24 chars).
func newSessionKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand contract since Go 1.24)
	return base64.StdEncoding.EncodeToString(b[:])
}

// OpenID returns the openid that the login code "test:<user>" yields for the app. It is a pure
// function of appID and user and works for unknown apps too.
func (e *Emulator) OpenID(appID, user string) string {
	return openIDFor(appID, user)
}

// SessionKey returns the current session_key of openid in the app, if the user has logged in.
func (e *Emulator) SessionKey(appID, openid string) (string, bool) {
	a := e.apps[appID]
	if a == nil {
		return "", false
	}
	return e.sessionKey(a, openid)
}

// sessionKey returns openid's current session_key under e.mu.
func (e *Emulator) sessionKey(a *appState, openid string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := a.sessions[openid]
	return k, ok
}
