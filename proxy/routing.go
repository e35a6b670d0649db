package proxy

import (
	"bytes"
	"fmt"

	"github.com/valyala/fasthttp"
)

// AppHandler serves the app listener: routed WeChat paths and the /wxgate/* helpers. Anything
// else is 404: wxgate is never an open proxy. The request is served to its end by the config
// current when it arrived, whatever a reload swaps in meanwhile.
func (g *Gateway) AppHandler(ctx *fasthttp.RequestCtx) { g.current().serveApp(ctx) }

// serveApp is AppHandler with the generation loaded.
func (g *generation) serveApp(ctx *fasthttp.RequestCtx) {
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
