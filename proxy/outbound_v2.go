package proxy

import (
	"bytes"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// serveV2 signs a legacy APIv2 XML call: it fills appid, mch_id and nonce_str when absent, signs
// per sign_type (MD5 by default, or HMAC-SHA256), sends /secapi/ calls with the merchant's client
// certificate, and verifies the sign of the answer when it has one.
func (g *generation) serveV2(ctx *fasthttp.RequestCtx, clientCert bool) {
	const kind = routeV2
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
	if clientCert {
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
	params, aerr = m.completeV2(params)
	if aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	signType, _ := signer.ParamValue(params, "sign_type")
	sign, err := m.v2.AppendSign(nil, signType, params)
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
	if aerr := up.do(req, resp); aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	if err := verifyV2Answer(m.v2, signType, resp.Body()); err != nil {
		g.metrics.signatureFailures.Add(1)
		g.fail(ctx, kind, newError(fasthttp.StatusBadGateway, CodeResponseSignature,
			fmt.Sprintf("WeChat Pay's APIv2 answer failed verification and was not passed on: %v; query the order before acting on it", err)))
		return
	}
	relay(ctx, resp)
	g.metrics.observe(kind, resp.StatusCode())
}

// completeV2 drops any sign the app sent and fills appid, mch_id and nonce_str when absent; an
// mch_id of another merchant is refused.
func (m *merchantState) completeV2(params []signer.Param) ([]signer.Param, *apiError) {
	out := params[:0]
	has := map[string]bool{}
	for _, p := range params {
		if p.Key == "sign" {
			continue
		}
		if p.Key == "mch_id" && p.Value != m.mchID {
			return nil, newError(fasthttp.StatusBadRequest, CodeBadRequest,
				fmt.Sprintf("mch_id %q is not merchant %q's (%s); leave it out and wxgate fills it", truncate([]byte(p.Value), 20), m.name, m.mchID))
		}
		has[p.Key] = p.Value != ""
		out = append(out, p)
	}
	if !has["appid"] && m.appID != "" {
		out = append(out, signer.Param{Key: "appid", Value: m.appID})
	}
	if !has["mch_id"] {
		out = append(out, signer.Param{Key: "mch_id", Value: m.mchID})
	}
	if !has["nonce_str"] {
		out = append(out, signer.Param{Key: "nonce_str", Value: string(appendNonce(nil))})
	}
	return out, nil
}

// verifyV2Answer verifies the sign of an APIv2 XML answer. Answers without a sign (return_code
// FAIL, refund notifications, bill files) pass; a present sign must verify.
func verifyV2Answer(key *signer.V2Key, signType string, body []byte) error {
	trimmed := bytes.TrimSpace(body)
	if !bytes.HasPrefix(trimmed, []byte("<xml")) && !bytes.HasPrefix(trimmed, []byte("<?xml")) {
		return nil // a bill file (CSV) is not signed
	}
	params, err := signer.ParseXML(body)
	if err != nil {
		return fmt.Errorf("its XML does not parse: %v", err)
	}
	if _, signed := signer.ParamValue(params, "sign"); !signed {
		if rc, _ := signer.ParamValue(params, "result_code"); rc != "" {
			return fmt.Errorf("it carries a business result but no sign")
		}
		return nil
	}
	if err := key.Verify(v2SignTypeOf(params, signType), params); err != nil {
		return fmt.Errorf("its sign does not verify: %w", err)
	}
	return nil
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
