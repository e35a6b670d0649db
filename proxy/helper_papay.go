package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/signer"
)

// PathV2EntrustWebURL is the helper that signs the contract page URL of APIv2 contract payments
// (GET /papay/entrustweb, opened by the user's browser, never called by a server).
const PathV2EntrustWebURL = "/wxgate/v2/papay/entrustweb-url"

// entrustRequired are the fields the app must give the entrustweb helper.
var entrustRequired = [...]string{"plan_id", "contract_code", "request_serial", "contract_display_account", "notify_url"}

// entrustFilled are the fields wxgate fills (and refuses from the app).
var entrustFilled = [...]string{"appid", "mch_id", "version", "timestamp", "sign"}

// EntrustWebURL is the answer of the entrustweb helper: the signed page URL and its parameters.
type EntrustWebURL struct {
	URL    string            `json:"url"`
	Params map[string]string `json:"params"`
}

// serveV2EntrustWebURL answers POST /wxgate/v2/papay/entrustweb-url with a JSON object of string
// or integer fields (plan_id, contract_code, request_serial, contract_display_account,
// notify_url, optionally return_web, outerid...): wxgate adds appid, mch_id, version 1.0 and
// timestamp, signs them with MD5 and the APIv2 key (the page takes MD5 only) and returns the
// https://api.mch.weixin.qq.com/papay/entrustweb URL with every value URL-encoded.
func (g *generation) serveV2EntrustWebURL(ctx *fasthttp.RequestCtx) {
	m, aerr := g.merchant(ctx)
	if aerr == nil && m.v2 == nil {
		aerr = newError(fasthttp.StatusBadRequest, CodeV2NotConfigured, fmt.Sprintf("merchant %q has no apiv2_key", m.name))
	}
	if aerr == nil && !ctx.IsPost() {
		aerr = newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, PathV2EntrustWebURL+" takes POST with a JSON object")
	}
	var fields map[string]any
	if aerr == nil {
		dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
		dec.UseNumber()
		if jsonscan.Object(ctx.PostBody()) != nil || dec.Decode(&fields) != nil {
			aerr = newError(fasthttp.StatusBadRequest, CodeBodyNotJSON, `the body must be a JSON object of the entrustweb fields, e.g. {"plan_id": 12535, "contract_code": "...", "request_serial": 1000, "contract_display_account": "...", "notify_url": "https://..."}`)
		}
	}
	params := make([]signer.Param, 0, len(fields)+4)
	for k, v := range fields {
		if aerr != nil {
			break
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		default:
			aerr = newError(fasthttp.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q must be a string or a number", truncate([]byte(k), 40)))
			continue
		}
		if k == "sign_type" {
			aerr = newError(fasthttp.StatusBadRequest, CodeBadRequest, "leave sign_type out: entrustweb is signed with MD5 only")
		}
		for _, f := range entrustFilled {
			if k == f {
				aerr = newError(fasthttp.StatusBadRequest, CodeBadRequest, fmt.Sprintf("leave %q out: wxgate fills appid, mch_id, version, timestamp and sign", f))
			}
		}
		params = append(params, signer.Param{Key: k, Value: s})
	}
	for _, k := range entrustRequired {
		if _, ok := fields[k]; !ok && aerr == nil {
			aerr = newError(fasthttp.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q is required (entrustweb takes plan_id, contract_code, request_serial, contract_display_account and notify_url)", k))
		}
	}
	if aerr != nil {
		g.fail(ctx, routeV2, aerr)
		return
	}
	params = append(params, signer.Param{Key: "appid", Value: m.appID}, signer.Param{Key: "mch_id", Value: m.mchID},
		signer.Param{Key: "version", Value: "1.0"}, signer.Param{Key: "timestamp", Value: unixString(g.clock().Unix())})
	sign, err := m.v2.AppendSign(nil, signer.V2SignMD5, params)
	if err != nil {
		g.fail(ctx, routeV2, newError(fasthttp.StatusInternalServerError, CodeInternal, "APIv2 signing failed: "+err.Error()))
		return
	}
	params = append(params, signer.Param{Key: "sign", Value: string(sign)})
	out := EntrustWebURL{Params: make(map[string]string, len(params))}
	q := url.Values{}
	for _, p := range params {
		out.Params[p.Key] = p.Value
		q.Set(p.Key, p.Value)
	}
	out.URL = g.mch.base + "/papay/entrustweb?" + q.Encode() // Encode sorts by key
	writeJSON(ctx, fasthttp.StatusOK, out)
	g.observe(ctx, routeV2, fasthttp.StatusOK)
}
