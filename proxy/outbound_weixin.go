package proxy

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/credentials"
	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/policies"
)

// Query parameters wxgate owns on api.weixin.qq.com calls: any the app sends are replaced.
var (
	argAccessToken = "access_token"
	argPaySig      = "pay_sig"
	argSignature   = "signature"
)

// serveWeChat handles a request on a routed api.weixin.qq.com path.
func (g *generation) serveWeChat(ctx *fasthttp.RequestCtx, r policies.Route) {
	switch r.Kind {
	case policies.RoutePayV3:
		g.serveV3(ctx)
		return
	case policies.RoutePayV2:
		g.serveV2(ctx, r.V2)
		return
	}
	a, aerr := g.appFor(ctx)
	if aerr != nil {
		g.fail(ctx, r.Kind, aerr)
		return
	}
	switch r.Kind {
	case policies.RouteXpay:
		g.serveXpay(ctx, a, r)
	case policies.RouteCode2Session:
		g.serveCode2Session(ctx, a)
	default:
		g.serveWithToken(ctx, a, r)
	}
}

// xpayMembers are the body members signXpay reads: the env selects the AppKey, the openid the
// session_key.
var xpayMembers = [...]string{"env", "openid"}

// serveXpay signs a virtual-payment server API call and sends it (signXpay, sendWithToken).
func (g *generation) serveXpay(ctx *fasthttp.RequestCtx, a *appState, r policies.Route) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if aerr := g.signXpay(req, ctx, a, r); aerr != nil {
		g.fail(ctx, r.Kind, aerr)
		return
	}
	g.sendWithToken(ctx, a, r, req)
}

// signXpay fills req with the app's virtual-payment call for WeChat: pay_sig with the AppKey of
// the body's env and, where the API needs it, the user signature with the session_key of the
// body's openid (the access_token is added when sending).
func (g *generation) signXpay(req *fasthttp.Request, ctx *fasthttp.RequestCtx, a *appState, r policies.Route) *apiError {
	if !ctx.IsPost() {
		return newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Path+" takes POST with a JSON body")
	}
	if aerr := a.checkRouteKind(r); aerr != nil {
		return aerr
	}
	body := ctx.PostBody()
	if err := jsonscan.Object(body); err != nil {
		return newError(fasthttp.StatusBadRequest, CodeBodyNotJSON, r.Path+" needs a JSON object body, as WeChat documents it; the body sent is not one")
	}
	var members [2][]byte // one pass over the body for both members signing needs
	jsonscan.TopFields(body, xpayMembers[:], members[:])
	envRaw, openidRaw := members[0], members[1]
	if envRaw == nil {
		return newError(fasthttp.StatusBadRequest, CodeMissingEnv, `the body has no "env"; add "env":0 (production) or "env":1 (sandbox): it selects the AppKey pay_sig is made with`)
	}
	env, ok := jsonscan.SmallInt(envRaw)
	if !ok {
		return newError(fasthttp.StatusBadRequest, CodeBadEnv, `"env" must be the number 0 (production) or 1 (sandbox)`)
	}
	key, aerr := a.xpayKey(env)
	if aerr != nil {
		return aerr
	}

	var sigs [2][64]byte
	paySig := key.AppendPaySig(sigs[0][:0], r.Path, body)
	var userSig []byte
	if r.UserSignature {
		openid, plain := jsonscan.PlainString(openidRaw)
		if openidRaw == nil || !plain || len(openid) == 0 {
			return newError(fasthttp.StatusBadRequest, CodeMissingOpenID, r.Path+` needs the user's "openid" in the body: its session_key makes the user signature`)
		}
		keyBuf := sessionKeyBufs.Get().(*[64]byte)
		defer sessionKeyBufs.Put(keyBuf)
		start := time.Now()
		sk, found, err := g.store.AppendSession(storeCtx, keyBuf[:0], a.appID, openid)
		g.metrics.store(storeGetSession, start, err)
		if err != nil {
			return errStoreUnavailable
		}
		if !found {
			return newError(fasthttp.StatusConflict, CodeSessionKeyMissing,
				fmt.Sprintf("no session_key is stored for openid %q of app %q; log the user in through wxgate (GET /sns/jscode2session) or hand wxgate the key with POST /wxgate/session-keys", truncate(openid, 64), a.name))
		}
		userSig = signUser(sigs[1][:0], sk, body)
	}

	g.prepare(req, ctx, r.Path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	q := req.URI().QueryArgs()
	q.SetBytesV(argPaySig, paySig)
	if userSig != nil {
		q.SetBytesV(argSignature, userSig)
	}
	if r.MiniGame {
		q.Set(argSigMethod, policies.MiniGameSigMethod)
	}
	return nil
}

// serveWithToken forwards an allowlisted API with the app's access_token.
func (g *generation) serveWithToken(ctx *fasthttp.RequestCtx, a *appState, r policies.Route) {
	if !ctx.IsGet() && !ctx.IsPost() {
		g.fail(ctx, r.Kind, newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Path+" takes GET or POST"))
		return
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	g.prepare(req, ctx, r.Path)
	req.Header.SetMethodBytes(ctx.Method())
	if ctx.IsPost() {
		if ct := ctx.Request.Header.ContentType(); len(ct) > 0 {
			req.Header.SetContentTypeBytes(ct)
		}
		req.SetBodyRaw(ctx.PostBody())
	}
	g.sendWithToken(ctx, a, r, req)
}

// prepare points req at WeChat with the app's query arguments, minus the ones wxgate owns.
func (g *generation) prepare(req *fasthttp.Request, ctx *fasthttp.RequestCtx, path string) {
	req.SetRequestURI(g.weixin.base)
	req.URI().SetPath(path)
	q := req.URI().QueryArgs()
	ctx.QueryArgs().CopyTo(q)
	q.Del(argAccessToken)
	q.Del(argPaySig)
	q.Del(argSignature)
	req.Header.SetUserAgent("wxgate")
}

// sendWithToken adds the access_token, sends, and when WeChat calls the token stale refreshes it and
// retries exactly once. WeChat's answer goes back unchanged.
func (g *generation) sendWithToken(ctx *fasthttp.RequestCtx, a *appState, r policies.Route, req *fasthttp.Request) {
	token, err := a.tokens.Get()
	if err != nil {
		g.fail(ctx, r.Kind, tokenError(a, err))
		return
	}
	// WeChat's answer is read straight into the app's response: no second copy of its body.
	resp := &ctx.Response
	for attempt := 0; ; attempt++ {
		req.URI().QueryArgs().Set(argAccessToken, token)
		if aerr := g.do(g.weixin, r.Path, req, resp); aerr != nil {
			g.fail(ctx, r.Kind, aerr) // writeError resets what was read
			return
		}
		code, isErr := errcodeOf(resp)
		if attempt > 0 || !isErr || !credentials.TokenRejected(int(code)) {
			break
		}
		g.metrics.staleRetries.Inc()
		fresh, err := a.tokens.Stale(token)
		if err != nil {
			g.fail(ctx, r.Kind, tokenError(a, err))
			return
		}
		token = fresh
		resp.Reset()
	}
	dropHopHeaders(&resp.Header)
	g.observe(ctx, r.Kind, resp.StatusCode())
}

// hopHeaders describe WeChat's connection rather than its answer's body; wxgate's server
// writes its own.
var hopHeaders = [...]string{fasthttp.HeaderConnection, "Keep-Alive", fasthttp.HeaderTransferEncoding, fasthttp.HeaderServer, fasthttp.HeaderDate}

// dropHopHeaders removes the hopHeaders from an upstream answer read into the app's response.
func dropHopHeaders(h *fasthttp.ResponseHeader) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// errcodeOf reads the top-level errcode of a WeChat JSON answer, if it has a non-zero one.
func errcodeOf(resp *fasthttp.Response) (int64, bool) {
	body := resp.Body()
	if resp.StatusCode() != fasthttp.StatusOK || len(body) > 8<<10 || !bytes.Contains(body, []byte(`"errcode"`)) {
		return 0, false
	}
	raw, ok := jsonscan.TopField(body, "errcode")
	if !ok {
		return 0, false
	}
	code, ok := jsonscan.SmallInt(raw)
	return code, ok && code != 0
}

// relay copies WeChat's answer to the app unchanged: status, headers that describe the body, body.
func relay(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) {
	ctx.Response.SetStatusCode(resp.StatusCode())
	for k, v := range resp.Header.All() {
		if string(k) == fasthttp.HeaderContentLength || slices.Contains(hopHeaders[:], string(k)) {
			continue // the length is the body's, set below
		}
		ctx.Response.Header.SetBytesKV(k, v)
	}
	ctx.Response.SetBody(resp.Body())
}

// tokenError is the answer when no access_token could be had; it never includes the secret.
func tokenError(a *appState, err error) *apiError {
	return newError(fasthttp.StatusBadGateway, CodeTokenUnavailable,
		fmt.Sprintf("could not obtain an access_token for app %q: %v; check the app's appid and secret and WeChat's IP allowlist", a.name, err))
}

// sessionKeyBufs lends the buffers a session_key is read into on the xpay path: a buffer handed
// to the store (an interface) escapes to the heap, and a pooled one costs no allocation.
var sessionKeyBufs = sync.Pool{New: func() any { return new([64]byte) }}
