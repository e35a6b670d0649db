package proxy

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// Helper endpoints for wx.requestPayment.
const (
	PathV3PaymentParams = "/wxgate/v3/payment-params"
	PathV2PaymentParams = "/wxgate/v2/payment-params"
)

// RequestPaymentParams is the object to hand to wx.requestPayment as it is.
type RequestPaymentParams struct {
	AppID     string `json:"appId,omitempty"` // returned by the v2 helper, where it is signed by name
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// paymentParamsIn is the body of both payment-params helpers.
type paymentParamsIn struct {
	PrepayID string `json:"prepay_id"`
	AppID    string `json:"appid"`
	SignType string `json:"sign_type"`
	// Partner (service-provider) orders: the client pays in sub_appid when the order gave one,
	// else in sp_appid (docs/partner.md); either replaces appid.
	SpAppID  string `json:"sp_appid"`
	SubAppID string `json:"sub_appid"`
}

var prepayIDPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// readPaymentParamsIn decodes and checks the helper body; appid defaults to the merchant's.
func readPaymentParamsIn(ctx *fasthttp.RequestCtx, m *merchantState) (paymentParamsIn, *apiError) {
	var in paymentParamsIn
	if !ctx.IsPost() {
		return in, newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, `takes POST {"prepay_id", "appid"}`)
	}
	if jsonscan.Object(ctx.PostBody()) != nil || json.Unmarshal(ctx.PostBody(), &in) != nil {
		return in, newError(fasthttp.StatusBadRequest, CodeBodyNotJSON, `the body must be a JSON object {"prepay_id": string, "appid": string (optional)}`)
	}
	if !prepayIDPattern.MatchString(in.PrepayID) {
		return in, newError(fasthttp.StatusBadRequest, CodeBadRequest, `"prepay_id" is required: the prepay_id the order call returned`)
	}
	switch {
	case in.SubAppID != "":
		in.AppID = in.SubAppID
	case in.SpAppID != "":
		in.AppID = in.SpAppID
	case in.AppID == "":
		in.AppID = m.appID
	}
	if !policies.IsAppID(in.AppID) {
		return in, newError(fasthttp.StatusBadRequest, CodeBadRequest,
			fmt.Sprintf(`"appid" is required (the mini program that placed the order): merchant %q has no appid in the config`, m.name))
	}
	return in, nil
}

// serveV3PaymentParams returns the APIv3 wx.requestPayment object: paySign is SHA256withRSA over
// appId\ntimeStamp\nnonceStr\npackage\n with the merchant key.
func (g *generation) serveV3PaymentParams(ctx *fasthttp.RequestCtx) {
	m, aerr := g.merchant(ctx)
	var in paymentParamsIn
	if aerr == nil {
		in, aerr = readPaymentParamsIn(ctx, m)
	}
	if aerr != nil {
		g.fail(ctx, routeV3, aerr)
		return
	}
	out := RequestPaymentParams{
		TimeStamp: unixString(g.clock().Unix()),
		NonceStr:  string(appendNonce(nil)),
		Package:   "prepay_id=" + in.PrepayID,
		SignType:  "RSA",
	}
	msg := signer.AppendPaySignMessage(nil, in.AppID, out.TimeStamp, out.NonceStr, out.Package)
	sig, aerr := g.rsaSign(m, nil, msg)
	if aerr != nil {
		g.fail(ctx, routeV3, aerr)
		return
	}
	out.PaySign = string(sig)
	writeJSON(ctx, fasthttp.StatusOK, out)
	g.observe(ctx, routeV3, fasthttp.StatusOK)
}

// serveV2PaymentParams returns the APIv2 wx.requestPayment object: paySign is the APIv2 sign over
// appId, nonceStr, package, signType and timeStamp.
func (g *generation) serveV2PaymentParams(ctx *fasthttp.RequestCtx) {
	m, aerr := g.merchant(ctx)
	var in paymentParamsIn
	if aerr == nil {
		in, aerr = readPaymentParamsIn(ctx, m)
	}
	if aerr == nil && m.v2 == nil {
		aerr = newError(fasthttp.StatusBadRequest, CodeV2NotConfigured, fmt.Sprintf("merchant %q has no apiv2_key", m.name))
	}
	if aerr == nil && in.SignType == "" {
		in.SignType = signer.V2SignMD5
	}
	if aerr == nil && in.SignType != signer.V2SignMD5 && in.SignType != signer.V2SignHMACSHA256 {
		aerr = newError(fasthttp.StatusBadRequest, CodeBadRequest, `"sign_type" must be "MD5" (default) or "HMAC-SHA256", the one used for unifiedorder`)
	}
	if aerr != nil {
		g.fail(ctx, routeV2, aerr)
		return
	}
	out := RequestPaymentParams{
		AppID:     in.AppID,
		TimeStamp: unixString(g.clock().Unix()),
		NonceStr:  string(appendNonce(nil)),
		Package:   "prepay_id=" + in.PrepayID,
		SignType:  in.SignType,
	}
	params := []signer.Param{
		{Key: "appId", Value: out.AppID}, {Key: "timeStamp", Value: out.TimeStamp}, {Key: "nonceStr", Value: out.NonceStr},
		{Key: "package", Value: out.Package}, {Key: "signType", Value: out.SignType},
	}
	sign, err := m.v2.AppendSign(nil, out.SignType, params)
	if err != nil {
		g.fail(ctx, routeV2, newError(fasthttp.StatusInternalServerError, CodeInternal, "APIv2 signing failed: "+err.Error()))
		return
	}
	out.PaySign = string(sign)
	writeJSON(ctx, fasthttp.StatusOK, out)
	g.observe(ctx, routeV2, fasthttp.StatusOK)
}
