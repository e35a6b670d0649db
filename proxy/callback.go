package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"

	"github.com/valyala/fasthttp"
)

// Callback routes on the callback listener.
const (
	callbackV3Prefix   = "/callbacks/wechatpay/"
	callbackV2Prefix   = "/callbacks/wechatpay-v2/"
	callbackPushPrefix = "/callbacks/message/"
)

// CallbackHandler serves the WeChat-facing callback listener: every notification is verified,
// decrypted and forwarded to the app, and WeChat is acknowledged only once the app accepted it.
// Nothing else is served there. Like AppHandler, a callback is served to its end by the config
// current when it arrived.
func (g *Gateway) CallbackHandler(ctx *fasthttp.RequestCtx) { g.current().serveCallback(ctx) }

// serveCallback is CallbackHandler with the generation loaded.
func (g *generation) serveCallback(ctx *fasthttp.RequestCtx) {
	if aerr := originFormError(ctx); aerr != nil {
		writeError(ctx, aerr)
		return
	}
	if aerr := g.readCallbackBody(ctx); aerr != nil {
		writeError(ctx, aerr)
		ctx.SetConnectionClose() // what is left of the body is not read
		return
	}
	path := ctx.Path()
	switch {
	case bytes.HasPrefix(path, []byte(callbackV3Prefix)):
		g.serveV3Callback(ctx, path[len(callbackV3Prefix):])
	case bytes.HasPrefix(path, []byte(callbackV2Prefix)):
		g.serveV2Callback(ctx, path[len(callbackV2Prefix):])
	case bytes.HasPrefix(path, []byte(callbackPushPrefix)):
		g.servePushCallback(ctx, path[len(callbackPushPrefix):])
	default:
		writeError(ctx, newError(fasthttp.StatusNotFound, CodeUnknownRoute,
			"the callback listener serves /callbacks/wechatpay/{merchant}, /callbacks/wechatpay-v2/{merchant} and /callbacks/message/{app}"))
	}
}

// countCallback counts what became of a callback, by source.
func (g *Gateway) countCallback(source callbackSource, outcome callbackOutcome) {
	g.metrics.callbacks[source][outcome].Add(1)
}

// digestID is a stable event id for notifications without one: a digest of what WeChat
// authenticated, identical across WeChat's retries of the same message.
func digestID(prefix string, parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}
