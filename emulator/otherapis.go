package emulator

import (
	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// otherAPIs are the api.weixin.qq.com APIs, beyond xpay and login, that the emulator serves: the
// mini-program server APIs that need nothing but a valid access_token. It answers them with
// errcode 0 after checking the token exactly as for xpay.
var otherAPIs = func() map[string]bool {
	m := make(map[string]bool, len(policies.DefaultAllowlist))
	for _, p := range policies.DefaultAllowlist {
		m[p] = true
	}
	return m
}()

// isOtherAPI reports whether path is a token-only API the emulator serves (the built-in list or
// Config.OtherAPIs).
func (e *Emulator) isOtherAPI(path string) bool {
	return otherAPIs[path] || e.otherAPIs[path]
}

// serveOtherAPI answers a token-only API: GET or POST, access_token checked, errcode 0.
func (e *Emulator) serveOtherAPI(ctx *fasthttp.RequestCtx) {
	now := e.now()
	if !ctx.IsGet() && !ctx.IsPost() {
		writeError(ctx, now, errRequirePost)
		return
	}
	if _, aerr := e.checkToken(ctx.QueryArgs().Peek("access_token"), now); aerr != nil {
		writeError(ctx, now, aerr)
		return
	}
	writeAnswer(ctx, now, &result{})
}
