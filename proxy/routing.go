package proxy

import (
	"bytes"
	"fmt"

	"github.com/valyala/fasthttp"
)

// AppHandler serves the app listener: routed WeChat paths and the /wxgate/* helpers. Anything
// else is 404: wxgate is never an open proxy. The request is served to its end by the config
// current when it arrived, whatever a reload swaps in meanwhile.
func (g *Gateway) AppHandler(ctx *fasthttp.RequestCtx) {
	g.current().serveApp(ctx)
	g.finish(ctx, "app")
}

// serveApp is AppHandler with the generation loaded, before the answer gets its request id and
// access line.
func (g *generation) serveApp(ctx *fasthttp.RequestCtx) {
	if g.appToken != nil && !g.appToken.check(ctx) {
		g.refuseUnauthorized(ctx)
		return
	}
	if aerr := originFormError(ctx); aerr != nil {
		g.fail(ctx, 0, aerr)
		return
	}
	path := ctx.Path()
	if bytes.HasPrefix(path, []byte("/wxgate/")) {
		g.serveHelper(ctx)
		return
	}
	if r, ok := g.routes.Lookup(path); ok {
		g.serveWeChat(ctx, r)
		return
	}
	if isV2Family(path) {
		g.fail(ctx, 0, newError(fasthttp.StatusNotFound, CodeUnknownRoute,
			fmt.Sprintf("wxgate does not route %s; under /mmpaymkttransfers/, /papay/ and /sandboxnew/ it routes the APIv2 paths listed in docs/apiv2.md", truncate(path, 80))))
		return
	}
	g.fail(ctx, 0, newError(fasthttp.StatusNotFound, CodeUnknownRoute,
		fmt.Sprintf("wxgate does not route %s; it forwards the xpay APIs, /sns/jscode2session and the allowlisted WeChat APIs (add others under [routes] allow)", truncate(path, 80))))
}

// originFormError refuses a request target that is not a plain path: an absolute-form target
// (GET http://host/v3/...) or one with a #fragment would be signed as written but sent altered,
// and no client of wxgate needs either. nil when the target is a path.
func originFormError(ctx *fasthttp.RequestCtx) *apiError {
	target := ctx.Request.Header.RequestURI()
	switch {
	case len(target) == 0 || target[0] != '/':
		return newError(fasthttp.StatusBadRequest, CodeBadRequest, "the request target must be a path starting with / (absolute-form targets such as http://host/path are refused)")
	case bytes.IndexByte(target, '#') >= 0:
		return newError(fasthttp.StatusBadRequest, CodeBadRequest, "the request target must not contain a #fragment")
	}
	return nil
}
