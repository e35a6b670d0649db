package proxy

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/valyala/fasthttp"
)

// appToken checks the bearer token of [server] app_token on the app listener. Only the token's
// SHA-256 is kept; a presented token is hashed too and the digests compared in constant time, so
// neither the token's content nor its length shows in the timing.
type appToken struct{ sum [sha256.Size]byte }

// newAppToken returns the check of token, nil when token is "" (no token configured).
func newAppToken(token string) *appToken {
	if token == "" {
		return nil
	}
	return &appToken{sum: sha256.Sum256([]byte(token))}
}

// errUnauthorized is the answer to a request on the app listener without the right token. It
// names the header to send and never echoes what was sent.
var errUnauthorized = newError(fasthttp.StatusUnauthorized, CodeUnauthorized,
	"this app listener requires \"Authorization: Bearer <token>\" with the token of [server] app_token; it was missing or wrong")

// check reports whether ctx carries "Authorization: Bearer <token>" with the right token, and
// removes the header from the request either way: the app's token is wxgate's, never WeChat's,
// and nothing after this point may forward or log it.
func (t *appToken) check(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	ok := false
	if len(h) > len("Bearer ") && bytes.EqualFold(h[:len("Bearer ")], []byte("Bearer ")) {
		sum := sha256.Sum256(bytes.TrimSpace(h[len("Bearer "):]))
		ok = subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
	}
	ctx.Request.Header.Del(fasthttp.HeaderAuthorization)
	return ok
}

// refuseUnauthorized answers 401 with the challenge RFC 6750 asks for.
func (g *Gateway) refuseUnauthorized(ctx *fasthttp.RequestCtx) {
	g.fail(ctx, 0, errUnauthorized)
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="wxgate"`)
}
