package emulator

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// maxClockSkew is how far an Authorization timestamp may be from WeChat Pay's clock (inclusive).
const maxClockSkew = 300 * time.Second

// v3Call is one authenticated APIv3 request handed to an endpoint handler.
type v3Call struct {
	ctx   *fasthttp.RequestCtx
	m     *merchantState // the merchant of the Authorization
	body  []byte         // the exact request body
	param string         // the path parameter ({out_trade_no}, {transaction_id}, ...), if any
	now   time.Time
	// httpNotify accepts http:// notify_url values (Config.AllowHTTPNotifyURL).
	httpNotify bool
}

// v3Reply is a handler's successful answer: JSON (signed), or a file (unsigned, like the bill
// download).
type v3Reply struct {
	status   int
	json     any    // the JSON answer; nil with an empty body (204)
	file     []byte // a file answer, served as is and unsigned
	fileType string // the file's Content-Type
}

// v3Handler implements one APIv3 endpoint.
type v3Handler func(e *Emulator, c *v3Call) (*v3Reply, *v3Error)

// v3Route is one APIv3 endpoint: method, then the path as prefix + {param} + suffix (param
// false: the path is exactly prefix).
type v3Route struct {
	method         string
	prefix, suffix string
	param          bool
	handle         v3Handler
}

// v3Routes lists the APIv3 endpoints the emulator serves (wechatpay.md §4, §6).
var v3Routes = []v3Route{
	{method: "POST", prefix: "/v3/pay/transactions/jsapi", handle: (*Emulator).v3JSAPI},
	{method: "GET", prefix: "/v3/pay/transactions/out-trade-no/", param: true, handle: (*Emulator).v3QueryByOutTradeNo},
	{method: "POST", prefix: "/v3/pay/transactions/out-trade-no/", suffix: "/close", param: true, handle: (*Emulator).v3Close},
	{method: "GET", prefix: "/v3/pay/transactions/id/", param: true, handle: (*Emulator).v3QueryByTransactionID},
	{method: "POST", prefix: "/v3/refund/domestic/refunds", handle: (*Emulator).v3CreateRefund},
	{method: "GET", prefix: "/v3/refund/domestic/refunds/", param: true, handle: (*Emulator).v3QueryRefund},
	{method: "GET", prefix: "/v3/certificates", handle: (*Emulator).v3Certificates},
	{method: "GET", prefix: "/v3/bill/tradebill", handle: (*Emulator).v3TradeBill},
	{method: "GET", prefix: "/v3/billdownload/file", handle: (*Emulator).v3DownloadBill},
	// Media uploads and the complaint image download (mch_media.go).
	{method: "POST", prefix: "/v3/merchant/media/upload", handle: (*Emulator).v3UploadMedia},
	{method: "POST", prefix: "/v3/merchant/media/video_upload", handle: (*Emulator).v3UploadMedia},
	{method: "POST", prefix: "/v3/merchant-service/images/upload", handle: (*Emulator).v3UploadMedia},
	{method: "POST", prefix: "/v3/marketing/favor/media/image-upload", handle: (*Emulator).v3UploadMedia},
	{method: "GET", prefix: "/v3/merchant-service/images/", param: true, handle: (*Emulator).v3DownloadImage},
}

// match reports whether path is this route's path and returns the path parameter.
func (r *v3Route) match(path string) (string, bool) {
	if !r.param {
		return "", path == r.prefix
	}
	rest, ok := strings.CutPrefix(path, r.prefix)
	if !ok {
		return "", false
	}
	param, ok := strings.CutSuffix(rest, r.suffix)
	if !ok || param == "" || strings.Contains(param, "/") {
		return "", false
	}
	return param, true
}

// findV3Route finds the endpoint for method and path; wrong reports a known path used with
// another method.
func findV3Route(method, path string) (route *v3Route, param string, wrong bool) {
	for i := range v3Routes {
		r := &v3Routes[i]
		p, ok := r.match(path)
		if !ok {
			continue
		}
		if r.method == method {
			return r, p, false
		}
		wrong = true
	}
	return nil, "", wrong
}

// serveV3 answers one APIv3 request: Authorization first (like WeChat Pay's gateway), then the
// endpoint. Every answer but a bill file is signed.
func (e *Emulator) serveV3(ctx *fasthttp.RequestCtx, path string) {
	now := e.now()
	m, verr := e.authenticateV3(ctx, now)
	if verr != nil {
		e.writeV3Error(ctx, m, verr)
		return
	}
	route, param, wrong := findV3Route(string(ctx.Method()), path)
	if route == nil {
		if wrong {
			e.writeV3Error(ctx, m, v3Err(fasthttp.StatusMethodNotAllowed, "INVALID_REQUEST", "不支持的HTTP方法%s", ctx.Method()))
			return
		}
		e.writeV3Error(ctx, m, v3Err(fasthttp.StatusNotFound, "RESOURCE_NOT_EXISTS", "请求的资源不存在: %s", path))
		return
	}
	reply, verr := route.handle(e, &v3Call{ctx: ctx, m: m, body: ctx.PostBody(), param: param, now: now, httpNotify: e.allowHTTPNotify})
	switch {
	case verr != nil:
		e.writeV3Error(ctx, m, verr)
	case reply.file != nil:
		file := reply.file
		if e.mch.keys.takeTamper(true) == TamperBody {
			file = tamperedFile(file, reply.fileType)
		}
		ctx.SetStatusCode(reply.status)
		ctx.SetContentType(reply.fileType)
		ctx.SetBody(file)
	case reply.json == nil:
		e.writeV3(ctx, m, reply.status, nil)
	default:
		e.writeV3JSON(ctx, m, reply.status, reply.json)
	}
}

// Authorization failures, worded like WeChat Pay's.
const (
	msgAuthFormat    = "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
	msgAuthMissing   = "Http头缺少Authorization"
	msgAuthMchID     = "Http头Authorization中的mchid不存在或无效"
	msgAuthSerial    = "商户证书序列号有误。请使用签名私钥匹配的证书序列号"
	msgAuthTimestamp = "Http头Authorization中的timestamp与发起请求的时间不得超过5分钟"
	msgAuthSignature = "错误的签名，验签失败"
)

// signDetail is the detail of a "sign not match" SIGN_ERROR: what WeChat Pay verified, so the
// caller can compare it with what it signed.
type signDetail struct {
	Detail          map[string]string `json:"detail"`
	Field           string            `json:"field"`
	Location        string            `json:"location"`
	SignInformation signInformation   `json:"sign_information"`
}

// signInformation describes the message WeChat Pay verified.
type signInformation struct {
	Method               string `json:"method"`
	SignMessageLength    int    `json:"sign_message_length"`
	TruncatedSignMessage string `json:"truncated_sign_message"`
	URL                  string `json:"url"`
}

// maxEchoedMessage bounds the signed message echoed in a SIGN_ERROR detail.
const maxEchoedMessage = 1024

// authenticateV3 verifies the Authorization header as WeChat Pay does: scheme and fields,
// known mchid, merchant certificate serial, timestamp within five minutes, then the signature
// over METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n with the exact request line URL and body (an
// upload's meta part, signedBody). It returns the merchant named by the header even when a
// later check fails, so the error answer is signed the way that merchant expects.
func (e *Emulator) authenticateV3(ctx *fasthttp.RequestCtx, now time.Time) (*merchantState, *v3Error) {
	header := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(header) == 0 {
		return nil, v3Err(fasthttp.StatusUnauthorized, "SIGN_ERROR", msgAuthMissing)
	}
	auth, err := signer.ParseAuthorization(string(header))
	if err != nil {
		return nil, v3Err(fasthttp.StatusUnauthorized, "SIGN_ERROR", msgAuthFormat)
	}
	m := e.merchant(auth.MchID)
	if m == nil {
		return nil, v3Err(fasthttp.StatusUnauthorized, "SIGN_ERROR", msgAuthMchID)
	}
	verifier := m.apiCertVerifier(auth.SerialNo)
	if verifier == nil {
		return m, v3Err(fasthttp.StatusUnauthorized, "SIGN_ERROR", msgAuthSerial)
	}
	ts, err := strconv.ParseInt(auth.Timestamp, 10, 64)
	if err != nil {
		return m, v3Err(fasthttp.StatusUnauthorized, "SIGN_ERROR", msgAuthFormat)
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return m, v3Err(fasthttp.StatusUnauthorized, "SIGN_ERROR", msgAuthTimestamp)
	}
	method := string(ctx.Method())
	url := canonicalURL(ctx.Request.Header.RequestURI())
	msg := signer.AppendRequestMessage(nil, method, url, auth.Timestamp, auth.NonceStr, signedBody(ctx))
	if err := verifier.Verify(msg, auth.Signature); err != nil {
		echo := msg
		if len(echo) > maxEchoedMessage {
			echo = echo[:maxEchoedMessage]
		}
		return m, &v3Error{
			status:  fasthttp.StatusUnauthorized,
			Code:    "SIGN_ERROR",
			Message: msgAuthSignature,
			Detail: &signDetail{
				Detail:   map[string]string{"issue": "sign not match"},
				Field:    "signature",
				Location: "authorization",
				SignInformation: signInformation{
					Method:               method,
					SignMessageLength:    len(msg),
					TruncatedSignMessage: string(echo),
					URL:                  url,
				},
			},
		}
	}
	return m, nil
}

// canonicalURL is the URL WeChat Pay verifies: the request-line target as sent, path and query,
// with the scheme and host removed if a client sent the absolute form.
func canonicalURL(requestURI []byte) string {
	u := string(requestURI)
	if i := strings.Index(u, "://"); i >= 0 && !strings.Contains(u[:i], "/") {
		rest := u[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return u
}

// merchantOfHeader returns the merchant an Authorization header names, without verifying it,
// for signing answers that precede verification (injected faults).
func (e *Emulator) merchantOfHeader(ctx *fasthttp.RequestCtx) *merchantState {
	auth, err := signer.ParseAuthorization(string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)))
	if err != nil {
		return nil
	}
	return e.merchant(auth.MchID)
}

// decodeV3 decodes a JSON object body into v; not an object, or a field of the wrong type, is
// 400 PARAM_ERROR.
func decodeV3(body []byte, v any) *v3Error {
	if !isJSONObject(body) {
		return v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "请求体不是有效的JSON对象")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return v3ParamErr("body", strings.ReplaceAll(te.Field, ".", "/"), ruleType)
	}
	return v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "请求体不是有效的JSON对象")
}

// checkMchID checks a mchid the request repeats (body or query) against the Authorization's.
func checkMchID(c *v3Call, location, got string) *v3Error {
	if got == "" {
		return v3ParamErr(location, "mchid", ruleRequired)
	}
	if got != c.m.cfg.MchID {
		return v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "请求中的mchid与Authorization中的mchid不一致")
	}
	return nil
}
