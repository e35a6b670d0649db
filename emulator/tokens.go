package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"
)

// Token rules, as documented for getStableAccessToken.
const (
	stableRenewWindow  = 5 * time.Minute  // normal mode issues a new token this close to expiry
	forceRefreshGap    = 30 * time.Second // force_refresh is ignored more often than this
	forceRefreshPerDay = 20               // force refreshes allowed per (Beijing) day
	tokenBytes         = 102              // random bytes per token: 136 base64url characters
	tokenLen           = 136              // length of every token string the emulator issues
	maxTokensPerApp    = 256              // issued tokens remembered per app; older ones read as 40001
)

// beijing is the time zone WeChat's daily quotas reset in.
var beijing = time.FixedZone("CST", 8*3600)

// tokenFamily tells the two isolated access_token families apart.
type tokenFamily int

const (
	familyStable  tokenFamily = iota // /cgi-bin/stable_token
	familyClassic                    // /cgi-bin/token
)

// token is one issued access_token.
type token struct {
	value     string
	app       *appState
	family    tokenFamily
	expiresAt time.Time
	revoked   bool // superseded or invalidated: answers 40001
}

// tokenState is an app's token bookkeeping, guarded by Emulator.mu.
type tokenState struct {
	stable, classic *token   // the latest token of each family
	issued          []*token // every remembered token, oldest first
	lastForce       time.Time
	forceDay        string
	forceCount      int
	fetches         int
}

// usable reports whether t may still be handed out at now.
func (t *token) usable(now time.Time) bool {
	return t != nil && !t.revoked && now.Before(t.expiresAt)
}

// issueToken creates a token for a, remembering at most maxTokensPerApp. Callers hold e.mu.
func (e *Emulator) issueToken(a *appState, fam tokenFamily, now time.Time) *token {
	buf := make([]byte, tokenBytes)
	rand.Read(buf) // never fails (crypto/rand contract since Go 1.24)
	t := &token{
		value:     base64.RawURLEncoding.EncodeToString(buf),
		app:       a,
		family:    fam,
		expiresAt: now.Add(e.ttl),
	}
	e.tokens[t.value] = t
	a.issued = append(a.issued, t)
	if len(a.issued) > maxTokensPerApp {
		delete(e.tokens, a.issued[0].value)
		a.issued[0] = nil
		a.issued = a.issued[1:]
	}
	return t
}

// revokeFamily marks every token of a's family fam as superseded. Callers hold e.mu.
func (a *appState) revokeFamily(fam tokenFamily) {
	for _, t := range a.issued {
		if t.family == fam {
			t.revoked = true
		}
	}
}

// stableToken implements getStableAccessToken's issuing rules. Callers hold e.mu.
func (e *Emulator) stableToken(a *appState, force bool, now time.Time) (*token, *apiError) {
	cur := a.stable
	if force {
		if cur.usable(now) && !a.lastForce.IsZero() && now.Sub(a.lastForce) < forceRefreshGap {
			return cur, nil // "否则不会刷新": too soon after the last force refresh
		}
		day := now.In(beijing).Format("20060102")
		if a.forceDay != day {
			a.forceDay, a.forceCount = day, 0
		}
		if a.forceCount >= forceRefreshPerDay {
			return nil, errDailyQuota
		}
		a.forceCount++
		a.lastForce = now
		a.revokeFamily(familyStable)
		a.stable = e.issueToken(a, familyStable, now)
		return a.stable, nil
	}
	if !cur.usable(now) || cur.expiresAt.Sub(now) <= stableRenewWindow {
		// The previous token, if still valid, keeps working until its own expiry.
		a.stable = e.issueToken(a, familyStable, now)
	}
	return a.stable, nil
}

// classicToken implements getAccessToken: every call replaces the family's previous token.
// Callers hold e.mu.
func (e *Emulator) classicToken(a *appState, now time.Time) *token {
	a.revokeFamily(familyClassic)
	a.classic = e.issueToken(a, familyClassic, now)
	return a.classic
}

// checkToken resolves an access_token presented to an API, in WeChat's order of complaints.
func (e *Emulator) checkToken(value []byte, now time.Time) (*appState, *apiError) {
	if len(value) == 0 {
		return nil, errTokenMissing
	}
	if !wellFormedToken(value) {
		return nil, errBadToken
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tokens[string(value)]
	switch {
	case t == nil || t.revoked:
		return nil, errBadCredential
	case !now.Before(t.expiresAt):
		return nil, errTokenExpired
	}
	return t.app, nil
}

// wellFormedToken reports whether v looks like a token this emulator could have issued.
func wellFormedToken(v []byte) bool {
	if len(v) != tokenLen {
		return false
	}
	for _, c := range v {
		if !isURLSafeChar(c) {
			return false
		}
	}
	return true
}

// isURLSafeChar reports whether c is in [A-Za-z0-9_-].
func isURLSafeChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// tokenAnswer is the success answer of both token endpoints (no errcode, like WeChat).
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// stableTokenRequest is the JSON body of /cgi-bin/stable_token.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// serveStableToken answers POST /cgi-bin/stable_token.
func (e *Emulator) serveStableToken(ctx *fasthttp.RequestCtx) {
	now := e.now()
	if !ctx.IsPost() {
		writeError(ctx, now, errRequirePost)
		return
	}
	var req stableTokenRequest
	if !isJSONObject(ctx.PostBody()) || json.Unmarshal(ctx.PostBody(), &req) != nil {
		writeError(ctx, now, errDataFormat)
		return
	}
	a, aerr := e.authenticateApp(req.GrantType, "client_credential", []byte(req.AppID), []byte(req.Secret))
	if aerr != nil {
		writeError(ctx, now, aerr)
		return
	}
	e.mu.Lock()
	t, aerr := e.stableToken(a, req.ForceRefresh, now)
	if aerr == nil {
		a.fetches++
	}
	e.mu.Unlock()
	if aerr != nil {
		writeError(ctx, now, aerr)
		return
	}
	writeTokenAnswer(ctx, t, now)
}

// serveClassicToken answers GET /cgi-bin/token.
func (e *Emulator) serveClassicToken(ctx *fasthttp.RequestCtx) {
	now := e.now()
	q := ctx.QueryArgs()
	a, aerr := e.authenticateApp(string(q.Peek("grant_type")), "client_credential", q.Peek("appid"), q.Peek("secret"))
	if aerr != nil {
		writeError(ctx, now, aerr)
		return
	}
	e.mu.Lock()
	t := e.classicToken(a, now)
	a.fetches++
	e.mu.Unlock()
	writeTokenAnswer(ctx, t, now)
}

// writeTokenAnswer answers with t and its remaining lifetime in whole seconds.
func writeTokenAnswer(ctx *fasthttp.RequestCtx, t *token, now time.Time) {
	writeJSON(ctx, fasthttp.StatusOK, &tokenAnswer{
		AccessToken: t.value,
		ExpiresIn:   int64(t.expiresAt.Sub(now) / time.Second),
	})
}

// authenticateApp checks grant_type, appid and secret, as the token and login endpoints do.
func (e *Emulator) authenticateApp(grantType, wantGrant string, appID, secret []byte) (*appState, *apiError) {
	if grantType != wantGrant {
		return nil, errBadGrantType
	}
	if len(appID) == 0 {
		return nil, errAppIDMissing
	}
	a := e.apps[string(appID)]
	if a == nil {
		return nil, errBadAppID
	}
	if len(secret) == 0 {
		return nil, errSecretMissing
	}
	if !a.secretMatches(secret) {
		return nil, errBadSecret
	}
	return a, nil
}

// InvalidateTokens makes every current access_token of the app (both families) answer 40001,
// as a force refresh by someone else would; the next stable_token call issues a new token.
// It does not count against the force-refresh limits.
func (e *Emulator) InvalidateTokens(appID string) {
	a := e.apps[appID]
	if a == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a.revokeFamily(familyStable)
	a.revokeFamily(familyClassic)
	a.stable, a.classic = nil, nil
}

// ExpireTokens makes every still-valid access_token of the app expire now, so it answers 42001;
// the next stable_token call issues a new token.
func (e *Emulator) ExpireTokens(appID string) {
	a := e.apps[appID]
	if a == nil {
		return
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range a.issued {
		if !t.revoked && t.expiresAt.After(now) {
			t.expiresAt = now
		}
	}
}
