package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/policies"
)

// Helper endpoints on the app listener.
const (
	PathXpayPaymentParams = "/wxgate/xpay/payment-params"
	PathSessionKeys       = "/wxgate/session-keys"
)

// serveHelper routes /wxgate/* requests.
func (g *generation) serveHelper(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case PathXpayPaymentParams:
		g.serveXpayPaymentParams(ctx)
	case PathSessionKeys:
		g.serveSessionKeys(ctx)
	case PathV3PaymentParams:
		g.serveV3PaymentParams(ctx)
	case PathV2PaymentParams:
		g.serveV2PaymentParams(ctx)
	case PathV2EntrustWebURL:
		g.serveV2EntrustWebURL(ctx)
	case PathV3Encrypt:
		g.serveV3Encrypt(ctx)
	case PathV3Decrypt:
		g.serveV3Decrypt(ctx)
	default:
		g.fail(ctx, 0, newError(fasthttp.StatusNotFound, CodeUnknownRoute,
			fmt.Sprintf("no wxgate helper at %s; helpers are %s, %s, %s, %s, %s and %s", truncate(ctx.Path(), 80), PathXpayPaymentParams, PathV3PaymentParams, PathV2PaymentParams, PathSessionKeys, PathV3Encrypt, PathV3Decrypt)))
	}
}

// paymentParamsRequest is the body of POST /wxgate/xpay/payment-params.
type paymentParamsRequest struct {
	OpenID   string          `json:"openid"`
	Mode     string          `json:"mode"`
	SignData json.RawMessage `json:"signData"`
}

// PaymentParams is the answer of POST /wxgate/xpay/payment-params: the fields to hand to
// wx.requestVirtualPayment as they are.
type PaymentParams struct {
	SignData  string `json:"signData"`
	PaySig    string `json:"paySig"`
	Signature string `json:"signature"`
	Mode      string `json:"mode"`
}

// serveXpayPaymentParams signs the client parameters of wx.requestVirtualPayment.
func (g *generation) serveXpayPaymentParams(ctx *fasthttp.RequestCtx) {
	fail := func(status int, code, msg string) { g.fail(ctx, policies.RouteXpay, newError(status, code, msg)) }
	if !ctx.IsPost() {
		fail(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, PathXpayPaymentParams+" takes POST")
		return
	}
	a, aerr := g.appFor(ctx)
	if aerr != nil {
		g.fail(ctx, policies.RouteXpay, aerr)
		return
	}
	var in paymentParamsRequest
	if err := jsonscan.Object(ctx.PostBody()); err != nil {
		fail(fasthttp.StatusBadRequest, CodeBodyNotJSON, `the body must be a JSON object {"openid","mode","signData"}`)
		return
	}
	if err := json.Unmarshal(ctx.PostBody(), &in); err != nil {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, "the body does not match {openid: string, mode: string, signData: object or string}: "+err.Error())
		return
	}
	if a.minigame || isMiniGameMode(in.Mode) { // helper_minigame.go
		g.serveMiniGamePaymentParams(ctx, a, &in)
		return
	}
	if in.OpenID == "" {
		fail(fasthttp.StatusBadRequest, CodeMissingOpenID, `"openid" is required: its session_key makes the signature`)
		return
	}
	if in.Mode != "short_series_goods" && in.Mode != "short_series_coin" {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, `"mode" must be "short_series_goods" (buy an item) or "short_series_coin" (buy coins)`)
		return
	}
	signData, err := buildSignData(in.SignData, a.offerID)
	if err != nil {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	env := int64(0)
	if raw, ok := jsonscan.TopField(signData, "env"); ok {
		var isInt bool
		if env, isInt = jsonscan.SmallInt(raw); !isInt {
			fail(fasthttp.StatusBadRequest, CodeBadEnv, `signData "env" must be the number 0 (production) or 1 (sandbox)`)
			return
		}
	}
	key, aerr := a.xpayKey(env)
	if aerr != nil {
		g.fail(ctx, policies.RouteXpay, aerr)
		return
	}
	var keyBuf [64]byte
	sk, aerr := g.helperSessionKey(keyBuf[:0], a, in.OpenID)
	if aerr != nil {
		g.fail(ctx, policies.RouteXpay, aerr)
		return
	}
	out := PaymentParams{
		SignData:  string(signData),
		PaySig:    string(key.AppendClientPaySig(nil, signData)),
		Signature: string(signUser(nil, sk, signData)),
		Mode:      in.Mode,
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
	g.observe(ctx, policies.RouteXpay, fasthttp.StatusOK)
}

// buildSignData returns the exact signData text to sign and hand to the client. A string is used
// byte for byte; an object is serialized once (members sorted by name, values kept as written),
// with offerId added from the config when absent.
func buildSignData(raw json.RawMessage, offerID string) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf(`"signData" is required: the object (or its JSON text) that wx.requestVirtualPayment receives`)
	}
	if raw[0] == '"' {
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, fmt.Errorf(`"signData" string is not valid JSON text: %v`, err)
		}
		if jsonscan.Object([]byte(text)) != nil {
			return nil, fmt.Errorf(`"signData" given as a string must hold a JSON object`)
		}
		return []byte(text), nil
	}
	var members map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &members) != nil {
		return nil, fmt.Errorf(`"signData" must be a JSON object or a string holding one`)
	}
	if _, ok := members["offerId"]; !ok {
		if offerID == "" {
			return nil, fmt.Errorf(`"signData" has no offerId and the app has no xpay.offer_id in the config; add one of them`)
		}
		members["offerId"], _ = json.Marshal(offerID)
	}
	names := make([]string, 0, len(members))
	for k := range members {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		if err := json.Compact(&b, members[k]); err != nil {
			return nil, fmt.Errorf(`"signData".%s: %v`, k, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// sessionKeyRequest is the body of POST /wxgate/session-keys.
type sessionKeyRequest struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
}

// serveSessionKeys stores a session_key obtained elsewhere (an app that logs users in itself).
func (g *generation) serveSessionKeys(ctx *fasthttp.RequestCtx) {
	fail := func(status int, code, msg string) { g.fail(ctx, 0, newError(status, code, msg)) }
	if !ctx.IsPost() {
		fail(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, PathSessionKeys+` takes POST {"openid","session_key"}`)
		return
	}
	a, aerr := g.appFor(ctx)
	if aerr != nil {
		g.fail(ctx, 0, aerr)
		return
	}
	var in sessionKeyRequest
	if jsonscan.Object(ctx.PostBody()) != nil || json.Unmarshal(ctx.PostBody(), &in) != nil {
		fail(fasthttp.StatusBadRequest, CodeBodyNotJSON, `the body must be a JSON object {"openid": string, "session_key": string}`)
		return
	}
	if in.OpenID == "" || len(in.OpenID) > 128 {
		fail(fasthttp.StatusBadRequest, CodeMissingOpenID, `"openid" is required (at most 128 characters)`)
		return
	}
	if k, err := base64.StdEncoding.DecodeString(in.SessionKey); err != nil || len(k) == 0 || len(in.SessionKey) > 64 {
		fail(fasthttp.StatusBadRequest, CodeBadRequest, `"session_key" must be the base64 text code2Session returned (24 characters)`)
		return
	}
	start := time.Now()
	err := g.store.PutSession(storeCtx, a.appID, in.OpenID, in.SessionKey)
	g.metrics.store(storePutSession, start, err)
	if err != nil {
		g.fail(ctx, 0, errStoreUnavailable)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"stored": true, "app": a.name, "openid": in.OpenID})
	g.observe(ctx, 0, fasthttp.StatusOK)
}

// helperSessionKey appends the stored session_key of the user openID of app a to dst, for a
// payment-params helper: 503 wxgate.store_unavailable when the store does not answer, 409
// wxgate.session_key_missing when the user never logged in through wxgate.
func (g *generation) helperSessionKey(dst []byte, a *appState, openID string) ([]byte, *apiError) {
	start := time.Now()
	sk, found, err := g.store.AppendSession(storeCtx, dst, a.appID, []byte(openID))
	g.metrics.store(storeGetSession, start, err)
	if err != nil {
		return nil, errStoreUnavailable
	}
	if !found {
		return nil, newError(fasthttp.StatusConflict, CodeSessionKeyMissing,
			fmt.Sprintf("no session_key is stored for openid %q of app %q; log the user in through wxgate (GET /sns/jscode2session) or hand wxgate the key with POST /wxgate/session-keys", truncate([]byte(openID), 64), a.name))
	}
	return sk, nil
}
