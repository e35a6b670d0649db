package proxy

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// headerV2Unsigned marks an answer WeChat Pay does not sign, passed on unverified (the APIv3
// downloads use the same header).
const headerV2Unsigned = "X-Wxgate-Unsigned"

// serveV2 signs a legacy APIv2 XML call per its route r (policies/routes_v2.go): it fills the
// appid and merchant id fields and nonce_str when absent, signs per sign_type (MD5 by default, or
// HMAC-SHA256; some paths take only one) with the APIv2 key or, under /sandboxnew/, the sandbox
// key, sends the call with the merchant's client certificate where WeChat requires it, and
// verifies the sign of the answer unless WeChat documents it unsigned.
func (g *generation) serveV2(ctx *fasthttp.RequestCtx, r *policies.V2Route) {
	const kind = routeV2
	if bytes.Equal(ctx.Path(), []byte(policies.PayV2SandboxSignKeyPath)) {
		g.fail(ctx, kind, newError(fasthttp.StatusBadRequest, CodeBadRequest,
			"wxgate fetches the sandbox key with getsignkey itself and signs every /sandboxnew/ call with it; call the /sandboxnew/ APIs directly"))
		return
	}
	m, aerr := g.merchant(ctx)
	if aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	if m.v2 == nil {
		g.fail(ctx, kind, newError(fasthttp.StatusBadRequest, CodeV2NotConfigured,
			fmt.Sprintf("merchant %q has no apiv2_key; add it to call the legacy APIv2", m.name)))
		return
	}
	if !ctx.IsPost() {
		g.fail(ctx, kind, newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, "APIv2 takes POST with an XML body"))
		return
	}
	up := g.mch
	if r.ClientCert {
		if m.secapi == nil {
			g.fail(ctx, kind, newError(fasthttp.StatusBadRequest, CodeClientCertMissing,
				fmt.Sprintf("%s needs the merchant's client certificate; set client_cert_file and client_key_file for merchant %q", truncate(ctx.Path(), 60), m.name)))
			return
		}
		up = m.secapi
	}
	params, err := signer.ParseXML(ctx.PostBody())
	if err != nil {
		g.fail(ctx, kind, newError(fasthttp.StatusBadRequest, CodeBodyNotXML, "the body must be the flat <xml>...</xml> APIv2 document: "+err.Error()))
		return
	}
	params, aerr = m.completeV2(params, r)
	if aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	signType, _ := signer.ParamValue(params, "sign_type")
	key := m.v2
	if r.Sandbox {
		if key, aerr = g.sandboxKey(m); aerr != nil {
			g.fail(ctx, kind, aerr)
			return
		}
	}
	sign, err := key.AppendSign(nil, signType, params)
	if err != nil {
		g.fail(ctx, kind, newError(fasthttp.StatusBadRequest, CodeBadRequest, `sign_type must be "MD5" or "HMAC-SHA256": `+err.Error()))
		return
	}
	params = append(params, signer.Param{Key: "sign", Value: string(sign)})

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.URI().DisablePathNormalizing = true
	req.SetRequestURI(up.base + string(ctx.Request.Header.RequestURI()))
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("text/xml; charset=utf-8")
	req.Header.SetUserAgent("wxgate")
	req.SetBodyRaw(signer.AppendXML(nil, params))
	api := payAPI(ctx.Path())
	if aerr := g.do(up, api, req, resp); aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	unsigned, err := checkV2Answer(key, r, signType, resp.Body())
	if err != nil {
		g.answerRefused(ctx, up, api, m, nil, err)
		g.fail(ctx, kind, newError(fasthttp.StatusBadGateway, CodeResponseSignature,
			fmt.Sprintf("WeChat Pay's APIv2 answer failed verification and was not passed on: %v; query the order before acting on it", err)))
		return
	}
	if r.Sandbox && sandboxKeyRefused(resp.Body()) {
		m.sandbox.drop(key) // WeChat may have changed it: fetch it again for the next call
	}
	relay(ctx, resp)
	if unsigned {
		ctx.Response.Header.Set(headerV2Unsigned, "true")
	}
	g.observe(ctx, kind, resp.StatusCode())
}

// v2MchIDFields are the names APIv2 paths give the merchant id.
var v2MchIDFields = [...]string{"mch_id", "mchid"}

// completeV2 drops any sign the app sent, fills the route's appid and merchant id fields and
// nonce_str when absent (not on the paths that take none), and enforces the route's sign type;
// a merchant id of another merchant is refused.
func (m *merchantState) completeV2(params []signer.Param, r *policies.V2Route) ([]signer.Param, *apiError) {
	out := params[:0]
	has := map[string]bool{}
	for _, p := range params {
		if p.Key == "sign" {
			continue
		}
		if (p.Key == v2MchIDFields[0] || p.Key == v2MchIDFields[1]) && p.Value != m.mchID {
			return nil, newError(fasthttp.StatusBadRequest, CodeBadRequest,
				fmt.Sprintf("%s %q is not merchant %q's (%s); leave it out and wxgate fills it", p.Key, truncate([]byte(p.Value), 20), m.name, m.mchID))
		}
		if misnamed := (p.Key == "appid" || p.Key == "mch_appid" || p.Key == "wxappid") && p.Key != r.AppIDField ||
			(p.Key == v2MchIDFields[0] || p.Key == v2MchIDFields[1]) && p.Key != r.MchIDField; misnamed {
			return nil, newError(fasthttp.StatusBadRequest, CodeBadRequest,
				fmt.Sprintf("%s names its fields %s and %s, not %s; leave them out and wxgate fills them", r.Path, r.AppIDField, r.MchIDField, p.Key))
		}
		if p.Key == "sign_type" && r.SignType != "" && p.Value != r.SignType {
			return nil, newError(fasthttp.StatusBadRequest, CodeBadRequest,
				fmt.Sprintf("%s takes sign_type %s only; leave sign_type out and wxgate uses it", r.Path, r.SignType))
		}
		has[p.Key] = p.Value != ""
		out = append(out, p)
	}
	if !has[r.AppIDField] && m.appID != "" {
		out = append(out, signer.Param{Key: r.AppIDField, Value: m.appID})
	}
	if !has[r.MchIDField] {
		out = append(out, signer.Param{Key: r.MchIDField, Value: m.mchID})
	}
	if !has["nonce_str"] && !r.NoNonce {
		out = append(out, signer.Param{Key: "nonce_str", Value: string(appendNonce(nil))})
	}
	if !has["sign_type"] && r.SignType == signer.V2SignHMACSHA256 {
		out = append(out, signer.Param{Key: "sign_type", Value: r.SignType})
	}
	return out, nil
}

// errV2NoSign is the refusal of an answer without sign on a path whose answers WeChat signs.
var errV2NoSign = errors.New("it carries no sign, and WeChat Pay signs every answer on this path but communication failures (return_code FAIL with return_msg only)")

// checkV2Answer decides what happens to an APIv2 answer. On a path whose answers WeChat documents
// as unsigned (r.Unsigned) it passes, unverified (unsigned true). Elsewhere the answer must be
// flat XML; a return_code FAIL document without sign passes unverified too (WeChat sends sign
// only with return_code SUCCESS) when it holds nothing but the failure (v2FailFields); any other
// answer must carry a sign that verifies with key.
func checkV2Answer(key *signer.V2Key, r *policies.V2Route, signType string, body []byte) (unsigned bool, err error) {
	if r.Unsigned {
		return true, nil
	}
	trimmed := bytes.TrimSpace(body)
	if !bytes.HasPrefix(trimmed, []byte("<xml")) && !bytes.HasPrefix(trimmed, []byte("<?xml")) {
		return false, errors.New("it is not an XML document")
	}
	params, err := signer.ParseXML(body)
	if err != nil {
		return false, fmt.Errorf("its XML does not parse: %v", err)
	}
	if _, signed := signer.ParamValue(params, "sign"); !signed {
		if rc, _ := signer.ParamValue(params, "return_code"); rc == "FAIL" && onlyFailFields(params) {
			return true, nil
		}
		return false, errV2NoSign
	}
	if err := key.Verify(v2SignTypeOf(params, signType), params); err != nil {
		return false, fmt.Errorf("its sign does not verify: %w", err)
	}
	return false, nil
}

// v2FailFields are the fields an unsigned return_code FAIL document may hold: the failure and
// its description, nothing a client could take for a business result.
var v2FailFields = [...]string{"return_code", "return_msg", "error_code", "retcode", "retmsg"}

// onlyFailFields reports whether params hold nothing but v2FailFields.
func onlyFailFields(params []signer.Param) bool {
	for _, p := range params {
		found := false
		for _, f := range v2FailFields {
			found = found || p.Key == f
		}
		if !found {
			return false
		}
	}
	return true
}

// v2SignTypeOf is the sign type a signed APIv2 message from WeChat was made with: its own
// sign_type; else what its sign's length tells (64 hex digits HMAC-SHA256, 32 MD5; WeChat has been
// seen answering MD5 to HMAC-SHA256 requests, and both use the same key); else fallback.
func v2SignTypeOf(params []signer.Param, fallback string) string {
	if st, _ := signer.ParamValue(params, "sign_type"); st != "" {
		return st
	}
	switch sign, _ := signer.ParamValue(params, "sign"); len(sign) {
	case 64:
		return signer.V2SignHMACSHA256
	case 32:
		return signer.V2SignMD5
	}
	return fallback
}

// isV2Family reports whether path is under an APIv2 family whose paths wxgate routes one by one.
func isV2Family(path []byte) bool {
	for _, p := range [...]string{policies.PayV2TransfersPrefix, policies.PayV2PapayPrefix, policies.PayV2SandboxPrefix} {
		if bytes.HasPrefix(path, []byte(p)) {
			return true
		}
	}
	return false
}
