package proxy

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

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
		if g.current().cfg.Server.Pprof && bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
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
	gen := g.current()
	for name, a := range gen.apps {
		if _, err := a.tokens.Get(); err != nil {
			problems[name] = err.Error()
		}
	}
	for name, m := range gen.merchants {
		if len(m.keys.Status().Serials) == 0 && m.aead != nil && m.publicKeyID == "" {
			if err := m.keys.Refresh(); err != nil {
				problems["merchant "+name] = "platform certificates: " + err.Error()
			}
		}
	}
	// The store is reported, but does not fail readiness: with Redis down every instance would
	// leave the load balancer at once, although the calls that need no state keep working.
	st := map[string]any{"kind": g.store.Stats().Kind, "up": true}
	if err := g.store.Check(storeCtx); err != nil {
		st["up"], st["error"] = false, err.Error()
	}
	v := &readyVerdict{at: g.clock(), status: fasthttp.StatusOK}
	if len(problems) == 0 {
		status := "ready"
		if st["up"] == false {
			status = "degraded: calls that need a user's session_key and callbacks fail until the store is back"
		}
		v.body, _ = json.Marshal(map[string]any{"status": status, "store": st})
		return v
	}
	v.status = fasthttp.StatusServiceUnavailable
	v.body, _ = json.Marshal(map[string]any{"status": "not ready", "apps": problems, "store": st})
	return v
}
