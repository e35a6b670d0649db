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
	ok := t.matches(&ctx.Request.Header)
	ctx.Request.Header.Del(fasthttp.HeaderAuthorization)
	return ok
}

// matches reports whether h carries "Authorization: Bearer <token>" with the right token, and
// leaves the header in place.
func (t *appToken) matches(h *fasthttp.RequestHeader) bool {
	v := h.Peek(fasthttp.HeaderAuthorization)
	if len(v) <= len("Bearer ") || !bytes.EqualFold(v[:len("Bearer ")], []byte("Bearer ")) {
		return false
	}
	sum := sha256.Sum256(bytes.TrimSpace(v[len("Bearer "):]))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}

// unauthenticatedBodyLimit is the body limit of a request on the app listener whose headers lack
// the right app_token: fasthttp allocates a body's announced Content-Length before any handler
// runs, so without it a caller without the token could make wxgate allocate max_body_bytes
// (max_upload_bytes on the upload routes) per connection by announcing bodies it never sends.
// Past it the request is answered 401 by appServerError; within it, by the handler.
const unauthenticatedBodyLimit = 1

// appRequestConfig is the app listener's HeaderReceived, called once a request's headers are
// read and before its body is: a request without the right app_token may carry no body to speak
// of (unauthenticatedBodyLimit); the upload routes get max_upload_bytes (upload).
func (g *Gateway) appRequestConfig(upload func(*fasthttp.RequestHeader) fasthttp.RequestConfig) func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		if t := g.current().appToken; t != nil && !t.matches(h) {
			return fasthttp.RequestConfig{MaxRequestBodySize: unauthenticatedBodyLimit}
		}
		return upload(h)
	}
}

// refuseUnauthorized answers 401 with the challenge RFC 6750 asks for, and closes the
// connection: a caller without the token keeps no keep-alive connection (one of max_conns) open
// by sending a request now and then.
func (g *Gateway) refuseUnauthorized(ctx *fasthttp.RequestCtx) {
	g.fail(ctx, 0, errUnauthorized)
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="wxgate"`)
	ctx.SetConnectionClose()
}
