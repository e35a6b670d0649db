package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/policies"
)

// serveCode2Session forwards /sns/jscode2session with the app's appid and secret, and stores the
// session_key WeChat returns for the openid, so later xpay calls and payment params can be signed.
func (g *generation) serveCode2Session(ctx *fasthttp.RequestCtx, a *appState) {
	kind := policies.RouteCode2Session
	if !ctx.IsGet() {
		g.fail(ctx, kind, newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, policies.Code2SessionPath+" takes GET ?js_code=CODE"))
		return
	}
	if len(ctx.QueryArgs().Peek("js_code")) == 0 {
		g.fail(ctx, kind, newError(fasthttp.StatusBadRequest, CodeBadRequest, "js_code is required: the code wx.login returned to the mini program"))
		return
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	g.prepare(req, ctx, policies.Code2SessionPath)
	req.Header.SetMethod(fasthttp.MethodGet)
	q := req.URI().QueryArgs()
	q.Set("appid", a.appID)
	q.Set("secret", a.secret)
	q.Set("grant_type", "authorization_code")
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if aerr := g.weixin.do(req, resp); aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	if body := resp.Body(); resp.StatusCode() == fasthttp.StatusOK && jsonscan.Object(body) == nil {
		openidRaw, okO := jsonscan.TopField(body, "openid")
		keyRaw, okK := jsonscan.TopField(body, "session_key")
		if okO && okK {
			openid, ok1 := jsonscan.StringValue(openidRaw)
			key, ok2 := jsonscan.StringValue(keyRaw)
			if ok1 && ok2 && openid != "" && key != "" {
				// The code is spent: WeChat's answer goes to the app even when the store fails,
				// flagged, so that the app can hand the key over later (POST /wxgate/session-keys).
				if err := g.store.PutSession(storeCtx, a.appID, openid, key); err != nil {
					g.rate.warn("store-login", "a login's session_key could not be stored", "err", err)
					ctx.Response.Header.Set(HeaderSessionStored, "false")
				} else {
					g.metrics.sessionsCaptured.Add(1)
				}
			}
		}
	}
	relay(ctx, resp)
	g.metrics.observe(kind, resp.StatusCode())
}

// HeaderSessionStored is "false" on a jscode2session answer whose session_key wxgate could not
// store (its store was unavailable); the app may hand it over later with POST /wxgate/session-keys.
const HeaderSessionStored = "X-Wxgate-Session-Stored"
