package emulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/valyala/fasthttp"
)

// jsonContentType is the Content-Type WeChat's API answers carry.
const jsonContentType = "application/json; encoding=utf-8"

// apiError is a WeChat errcode with its message (without the trailing rid).
type apiError struct {
	code int
	msg  string
}

// newErr returns an apiError with a formatted message.
func newErr(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// Platform-wide errors (access_token, login, routing).
var (
	errSystemBusy      = &apiError{-1, "system error"}
	errBadCredential   = &apiError{40001, "invalid credential, access_token is invalid or not latest"}
	errBadGrantType    = &apiError{40002, "invalid grant_type"}
	errBadAppID        = &apiError{40013, "invalid appid"}
	errBadToken        = &apiError{40014, "invalid access_token"}
	errBadCode         = &apiError{40029, "invalid code"}
	errInvalidURL      = &apiError{40066, "invalid url"}
	errBadSecret       = &apiError{40125, "invalid appsecret"}
	errTokenMissing    = &apiError{41001, "access_token missing"}
	errAppIDMissing    = &apiError{41002, "appid missing"}
	errSecretMissing   = &apiError{41004, "appsecret missing"}
	errCodeMissing     = &apiError{41008, "missing code"}
	errTokenExpired    = &apiError{42001, "access_token expired"}
	errRequirePost     = &apiError{43002, "require POST method"}
	errDailyQuota      = &apiError{45009, "reach max api daily quota limit"}
	errDataFormat      = &apiError{47001, "data format error"}
	errPaySig          = &apiError{268490003, "支付签名(pay_sig)校验失败"}
	errUserSig         = &apiError{268490003, "用户态签名(signature)校验失败"}
	errNoSession       = &apiError{268490009, "用户session_key不存在或已过期，请重新登录"}
	errNotFound        = &apiError{268490002, "数据不存在"}
	errBothOrderIDs    = &apiError{268490002, "数据不存在: order_id与wx_order_id二选一，不要同时传"}
	errNoOrderID       = &apiError{268490002, "order_id与wx_order_id必须传一个"}
	errDuplicate       = &apiError{268490004, "重复操作"}
	errFullyRefunded   = &apiError{268490005, "订单已经通过cancel_currency_pay接口退款，不支持再退款"}
	errInsufficient    = &apiError{268490006, "代币的退款/支付操作金额不足"}
	errGenerating      = &apiError{268490011, "数据生成中，请稍后调用本接口获取"}
	errTaskRunning     = &apiError{268490012, "批量任务运行中，请等待完成后才能再次运行"}
	errLeftFeeMismatch = &apiError{268490016, "退款的left_fee字段与实际不符，请通过query_order接口查询确认"}
)

// result is the errcode/errmsg pair every WeChat answer starts with. Endpoint answers embed it.
type result struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// base gives writeAnswer access to the embedded result.
func (r *result) base() *result { return r }

// answer is a successful xpay answer: a struct embedding result plus the endpoint's fields.
type answer interface{ base() *result }

// rid returns a request id like WeChat's: three dash-separated 8-digit hex groups, the first
// derived from the time.
func rid(now time.Time) string {
	return fmt.Sprintf("%08x-%08x-%08x", uint32(now.Unix()), rand.Uint32(), rand.Uint32())
}

// withRID appends WeChat's " rid: ..." suffix to msg.
func withRID(msg string, now time.Time) string { return msg + " rid: " + rid(now) }

// writeError answers HTTP 200 with {"errcode","errmsg"}, as WeChat does for every API error.
func writeError(ctx *fasthttp.RequestCtx, now time.Time, ae *apiError) {
	writeJSON(ctx, fasthttp.StatusOK, &result{ErrCode: ae.code, ErrMsg: withRID(ae.msg, now)})
}

// writeAnswer answers HTTP 200 with a successful xpay answer (errcode 0, errmsg "ok rid: ...").
func writeAnswer(ctx *fasthttp.RequestCtx, now time.Time, a answer) {
	r := a.base()
	r.ErrCode, r.ErrMsg = 0, withRID("ok", now)
	writeJSON(ctx, fasthttp.StatusOK, a)
}

// writeJSON answers with v encoded as JSON.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every answer type is a plain struct of strings and numbers; this cannot happen.
		ctx.Error(fmt.Sprintf("emulator: encode answer: %v", err), fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType(jsonContentType)
	ctx.SetBody(b)
}
