package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// AppHandler serves the app listener: routed WeChat paths and the /wxgate/* helpers. Anything
// else is 404: wxgate is never an open proxy.
func (g *Gateway) AppHandler(ctx *fasthttp.RequestCtx) {
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

// AdminHandler serves /healthz, /readyz and /metrics.
func (g *Gateway) AdminHandler(ctx *fasthttp.RequestCtx) {
	if aerr := originFormError(ctx); aerr != nil {
		writeError(ctx, aerr)
		return
	}
	switch string(ctx.Path()) {
	case "/healthz":
		if why := g.unhealthy.Load(); why != nil {
			writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "failing", "reason": *why})
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
	case "/readyz":
		g.serveReady(ctx)
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		g.writeMetrics(ctx)
	default:
		if g.cfg.Server.Pprof && bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
			pprofhandler.PprofHandler(ctx)
			return
		}
		writeError(ctx, newError(fasthttp.StatusNotFound, CodeUnknownRoute, "admin endpoints are /healthz, /readyz and /metrics"))
	}
}

// readyCacheFor is how long a /readyz verdict is reused: a probe every second must not make
// wxgate ask WeChat for a token every second for an app whose token fetch fails.
const readyCacheFor = 3 * time.Second

// readyVerdict is a /readyz answer and when it was computed.
type readyVerdict struct {
	at     time.Time
	status int
	body   []byte
}

// serveReady answers 200 when every app's access_token can be had and every merchant in
// certificates mode has its platform certificates, else 503 naming what is missing (never a token,
// key or secret). The verdict is reused for readyCacheFor.
func (g *Gateway) serveReady(ctx *fasthttp.RequestCtx) {
	g.readyMu.Lock()
	v := g.ready
	if v == nil || g.clock().Sub(v.at) >= readyCacheFor {
		v = g.checkReady()
		g.ready = v
	}
	g.readyMu.Unlock()
	ctx.SetStatusCode(v.status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(v.body)
}

// checkReady computes a /readyz verdict.
func (g *Gateway) checkReady() *readyVerdict {
	problems := map[string]string{}
	for name, a := range g.apps {
		if _, err := a.tokens.Get(); err != nil {
			problems[name] = err.Error()
		}
	}
	for name, m := range g.merchants {
		if len(m.keys.Status().Serials) == 0 && m.aead != nil && m.publicKeyID == "" {
			if err := m.keys.Refresh(); err != nil {
				problems["merchant "+name] = "platform certificates: " + err.Error()
			}
		}
	}
	v := &readyVerdict{at: g.clock(), status: fasthttp.StatusOK}
	if len(problems) == 0 {
		v.body, _ = json.Marshal(map[string]string{"status": "ready"})
		return v
	}
	v.status = fasthttp.StatusServiceUnavailable
	v.body, _ = json.Marshal(map[string]any{"status": "not ready", "apps": problems})
	return v
}

// serverError returns the handler of fasthttp's own failures on a listener whose body limit is
// the config key limitKey: a body too large or a malformed request is answered as JSON, and a
// connection that sent nothing before the read timeout is closed without an answer.
func serverError(limitKey string) func(*fasthttp.RequestCtx, error) {
	return func(ctx *fasthttp.RequestCtx, err error) {
		if _, nothingRead := err.(*net.OpError); nothingRead {
			// fasthttp passes the raw read error only when not one byte of a request came:
			// whatever it writes now fails at once, and the connection is closed.
			_ = ctx.Conn().SetWriteDeadline(time.Unix(1, 0))
			return
		}
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge) && limitKey != "":
			writeError(ctx, newError(fasthttp.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the request body exceeds "+limitKey))
		default:
			writeError(ctx, newError(fasthttp.StatusBadRequest, CodeBadRequest, "malformed HTTP request"))
		}
	}
}
