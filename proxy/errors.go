package proxy

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
	"github.com/wxgate/wxgate/policies"
)

// Error codes wxgate answers with. They are stable: apps may switch on them.
const (
	CodeUnknownRoute          = "wxgate.unknown_route"
	CodeMethodNotAllowed      = "wxgate.method_not_allowed"
	CodeUnknownApp            = "wxgate.unknown_app"
	CodeXpayNotConfigured     = "wxgate.xpay_not_configured"
	CodeBodyNotJSON           = "wxgate.body_not_json"
	CodeMissingEnv            = "wxgate.missing_env"
	CodeBadEnv                = "wxgate.bad_env"
	CodeSandboxKeyMissing     = "wxgate.sandbox_key_missing"
	CodeMissingOpenID         = "wxgate.missing_openid"
	CodeSessionKeyMissing     = "wxgate.session_key_missing"
	CodeBadRequest            = "wxgate.bad_request"
	CodeTokenUnavailable      = "wxgate.token_unavailable"
	CodeUpstreamUnreach       = "wxgate.upstream_unreachable"
	CodeUpstreamTimeout       = "wxgate.upstream_timeout"
	CodeUpstreamBusy          = "wxgate.upstream_busy"
	CodeUpstreamTooLarge      = "wxgate.upstream_response_too_large"
	CodeBodyTooLarge          = "wxgate.body_too_large"
	CodeInternal              = "wxgate.internal"
	CodeUnknownMerchant       = "wxgate.unknown_merchant"
	CodeMerchantNotConfigured = "wxgate.merchant_not_configured"
	CodeV2NotConfigured       = "wxgate.apiv2_not_configured"
	CodeClientCertMissing     = "wxgate.client_cert_missing"
	CodeBodyNotXML            = "wxgate.body_not_xml"
	CodeOverloaded            = "wxgate.overloaded"
	CodeResponseSignature     = "wxgate.response_signature_invalid"
	CodeBillHashMismatch      = "wxgate.bill_hash_mismatch"
	CodeStoreUnavailable      = "wxgate.store_unavailable"
	CodeUnauthorized          = "wxgate.unauthorized"
	CodeSandboxKeyUnavailable = "wxgate.sandbox_key_unavailable"
	// CodeUploadInvalid is a media upload whose multipart body wxgate cannot sign: not
	// multipart/form-data, malformed, or without its meta or file part (docs/media.md).
	CodeUploadInvalid = "wxgate.upload_invalid"
	// CodeUploadSha256Mismatch is a media upload whose meta sha256 is not the file part's.
	CodeUploadSha256Mismatch = "wxgate.upload_sha256_mismatch"
)

// apiError is one of wxgate's own failures: an HTTP status, a stable code and a message that says
// what happened and what to do. It never carries a secret.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// errorBody is the JSON shape of every wxgate error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// RequestID is the request's X-Request-Id (absent for a request fasthttp refused
		// before wxgate's handler saw it).
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

// writeError is the one place a wxgate failure becomes an HTTP answer.
func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	var b errorBody
	b.Error.Code = e.Code
	b.Error.Message = e.Message
	b.Error.RequestID = requestID(ctx)
	out, _ := json.Marshal(b)
	ctx.Response.Reset()
	ctx.SetStatusCode(e.Status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.Response.Header.Set("X-Wxgate-Error", e.Code)
	ctx.SetBody(out)
}

// writeJSON answers 200 with v encoded as JSON.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, newError(fasthttp.StatusInternalServerError, CodeInternal, "could not encode the answer"))
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(out)
}

// fail answers with a wxgate error and counts it.
func (g *Gateway) fail(ctx *fasthttp.RequestCtx, kind policies.RouteKind, e *apiError) {
	writeError(ctx, e)
	g.observe(ctx, kind, e.Status)
	g.metrics.errorCount(e.Code)
}

// errStoreUnavailable is the answer when the session store cannot be read or written: the call
// needs state that only the store has (a user's session_key), and it is down or too slow.
var errStoreUnavailable = newError(fasthttp.StatusServiceUnavailable, CodeStoreUnavailable,
	"wxgate's store (disk or Redis) did not answer; calls that need a user's session_key fail until it is back, others keep working")
