package emulator

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// v3ContentType is the Content-Type of APIv3 JSON answers.
const v3ContentType = "application/json; charset=utf-8"

// v3Error is an APIv3 error answer: an HTTP status and {"code","message","detail"}.
type v3Error struct {
	status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// v3Err returns an APIv3 error with a formatted message.
func v3Err(status int, code, format string, args ...any) *v3Error {
	return &v3Error{status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// fieldDetail is the detail of a PARAM_ERROR: which input failed.
type fieldDetail struct {
	Field    string `json:"field"`
	Location string `json:"location"`
}

// v3ParamErr is 400 PARAM_ERROR for one input, worded like WeChat Pay's validation messages:
// location is "body", "query" or "path", field a JSON path such as "amount/total".
func v3ParamErr(location, field, rule string) *v3Error {
	return &v3Error{
		status:  fasthttp.StatusBadRequest,
		Code:    "PARAM_ERROR",
		Message: fmt.Sprintf("输入源“/%s/%s”映射到值字段“%s”%s", location, field, field, rule),
		Detail:  &fieldDetail{Field: "/" + field, Location: location},
	}
}

// Validation rules named in PARAM_ERROR messages.
const (
	ruleRequired = "必填性规则校验失败，此字段为必填项"
	ruleFormat   = "格式规则校验失败"
	ruleRange    = "取值范围规则校验失败"
	ruleType     = "类型校验失败"
)

// errV3System is what an injected "system_busy" fault answers on APIv3.
var errV3System = &v3Error{status: fasthttp.StatusInternalServerError, Code: "SYSTEM_ERROR", Message: "系统错误"}

// marshalV3 encodes an answer like WeChat Pay: compact JSON without HTML escaping.
func marshalV3(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("emulator: encode APIv3 answer: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeV3JSON answers status with v as JSON, signed for merchant m (nil when unknown).
func (e *Emulator) writeV3JSON(ctx *fasthttp.RequestCtx, m *merchantState, status int, v any) {
	body, err := marshalV3(v)
	if err != nil {
		// Every answer is a plain struct of strings and numbers; this cannot happen.
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	e.writeV3(ctx, m, status, body)
}

// writeV3Error answers an APIv3 error, signed for merchant m (nil when unknown).
func (e *Emulator) writeV3Error(ctx *fasthttp.RequestCtx, m *merchantState, ve *v3Error) {
	e.writeV3JSON(ctx, m, ve.status, ve)
}

// writeV3 answers status with body (JSON, or empty for 204) and signs it as WeChat Pay does:
// Wechatpay-Timestamp, Wechatpay-Nonce, Wechatpay-Signature over "ts\nnonce\nbody\n",
// Wechatpay-Serial naming the key (answerSigner), plus Request-ID. A pending SendSignTest
// replaces the signature with a probe.
func (e *Emulator) writeV3(ctx *fasthttp.RequestCtx, m *merchantState, status int, body []byte) {
	tamper := e.mch.keys.takeTamper(false)
	now := e.now()
	if tamper == TamperStaleTimestamp {
		now = now.Add(-staleBy) // a correct signature over an old timestamp: a replay
	}
	s, serial := e.answerSigner(m, ctx.Request.Header.Peek("Wechatpay-Serial"), now)
	switch tamper {
	case TamperForeignKey:
		s = foreignSigner() // a real serial, a key WeChat Pay never published
	case TamperUnknownSerial:
		s, serial = foreignSigner(), unknownSerial
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := randomHex(16)
	var sig string
	if tamper == TamperSignTest {
		sig = probeSignature()
	} else {
		b, err := s.AppendSign(nil, signer.AppendResponseMessage(nil, ts, nonce, body))
		if err != nil {
			ctx.Error(fmt.Sprintf("emulator: sign answer: %v", err), fasthttp.StatusInternalServerError)
			return
		}
		sig = string(b)
	}
	if tamper == TamperBody {
		body = tamperedBody(body) // changed after signing, as a man in the middle would
	}
	h := &ctx.Response.Header
	h.DisableNormalizing() // keep WeChat Pay's spelling, e.g. Request-ID
	if tamper != TamperUnsigned {
		h.Set("Wechatpay-Timestamp", ts)
		h.Set("Wechatpay-Nonce", nonce)
		h.Set("Wechatpay-Signature", sig)
		h.Set("Wechatpay-Serial", serial)
		h.Set("Wechatpay-Signature-Type", signer.AuthScheme)
	}
	h.Set("Request-ID", strings.ToUpper(randomHex(22)))
	ctx.SetStatusCode(status)
	if len(body) > 0 {
		h.Set("Content-Type", v3ContentType)
		ctx.SetBody(body)
	}
}

// randomHex returns n random bytes as lower-case hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand contract since Go 1.24)
	return hex.EncodeToString(b)
}
