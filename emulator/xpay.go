package emulator

import (
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// xpayCall is one authenticated xpay request handed to an endpoint handler. Handlers run with
// Emulator.mu held and must return answers that share no memory with the state.
type xpayCall struct {
	app  *appState
	env  int       // 0 production, 1 sandbox
	st   *envState // app.envs[env]
	body []byte    // the exact request body
	now  time.Time
	host string // the Host the request was sent to, for download URLs
	// notices collects the message pushes the call causes; they are sent after Emulator.mu is
	// released.
	notices *notices
}

// xpayHandler implements one endpoint's business logic.
type xpayHandler func(c *xpayCall) (answer, *apiError)

// xpayRoute says how one /xpay/ URI is verified and handled.
type xpayRoute struct {
	userSig bool // also requires the user-state signature (session_key of the body's openid)
	handle  xpayHandler
}

// xpayRoutes lists every /xpay/ URI the emulator knows (xpay.md §1.2). Every one requires pay_sig.
var xpayRoutes = map[string]xpayRoute{
	// coins (xpay_coins.go)
	"/xpay/query_user_balance":  {userSig: true, handle: queryUserBalance},
	"/xpay/currency_pay":        {userSig: true, handle: currencyPay},
	"/xpay/cancel_currency_pay": {userSig: true, handle: cancelCurrencyPay},
	"/xpay/present_currency":    {handle: presentCurrency},
	// cash orders (xpay_orders.go)
	"/xpay/query_order":          {handle: queryOrder},
	"/xpay/notify_provide_goods": {handle: notifyProvideGoods},
	"/xpay/refund_order":         {handle: refundOrder},
	// merchant (xpay_merchant.go)
	"/xpay/download_bill":         {handle: downloadBill},
	"/xpay/create_withdraw_order": {handle: createWithdrawOrder},
	"/xpay/query_withdraw_order":  {handle: queryWithdrawOrder},
	"/xpay/query_biz_balance":     {handle: queryBizBalance},
	"/xpay/start_download_order":  {handle: startDownloadOrder},
	"/xpay/query_download_order":  {handle: queryDownloadOrder},
	// goods (xpay_goods.go)
	"/xpay/start_upload_goods":  {handle: startUploadGoods},
	"/xpay/query_upload_goods":  {handle: queryUploadGoods},
	"/xpay/start_publish_goods": {handle: startPublishGoods},
	"/xpay/query_publish_goods": {handle: queryPublishGoods},
	// ad funds, complaints, subscriptions (xpay_misc.go): verified, answered empty
	"/xpay/query_transfer_account":       {handle: emptyAnswer(func() answer { return &acctListAnswer{AcctList: []struct{}{}} })},
	"/xpay/query_adver_funds":            {handle: emptyAnswer(func() answer { return &adverFundsAnswer{List: []struct{}{}} })},
	"/xpay/create_funds_bill":            {handle: createFundsBill},
	"/xpay/bind_transfer_accout":         {handle: emptyAnswer(func() answer { return &result{} })},
	"/xpay/query_funds_bill":             {handle: emptyAnswer(func() answer { return &billListAnswer{BillList: []struct{}{}} })},
	"/xpay/query_recover_bill":           {handle: emptyAnswer(func() answer { return &billListAnswer{BillList: []struct{}{}} })},
	"/xpay/download_adverfunds_order":    {handle: downloadAdverFundsOrder},
	"/xpay/get_complaint_list":           {handle: emptyAnswer(func() answer { return &complaintListAnswer{Complaints: []struct{}{}} })},
	"/xpay/get_complaint_detail":         {handle: emptyAnswer(func() answer { return &complaintDetailAnswer{} })},
	"/xpay/get_negotiation_history":      {handle: emptyAnswer(func() answer { return &negotiationAnswer{History: []struct{}{}} })},
	"/xpay/response_complaint":           {handle: emptyAnswer(func() answer { return &result{} })},
	"/xpay/complete_complaint":           {handle: emptyAnswer(func() answer { return &result{} })},
	"/xpay/upload_vp_file":               {handle: uploadVPFile},
	"/xpay/get_upload_file_sign":         {handle: emptyAnswer(func() answer { return &uploadFileSignAnswer{} })},
	"/xpay/query_subscribe_contract":     {handle: emptyAnswer(func() answer { return &contractAnswer{State: "UNBINDUSER"} })},
	"/xpay/send_subscribe_pre_payment":   {handle: emptyAnswer(func() answer { return &result{} })},
	"/xpay/submit_subscribe_pay_order":   {handle: emptyAnswer(func() answer { return &result{} })},
	"/xpay/cancel_subscribe_contract":    {handle: emptyAnswer(func() answer { return &result{} })},
	"/xpay/download_ios_settlement_bill": {handle: emptyAnswer(func() answer { return &result{} })},
}

// xpayHead holds the body fields the verification steps need before the endpoint runs.
type xpayHead struct {
	Env    json.RawMessage `json:"env"`
	OpenID json.RawMessage `json:"openid"`
}

// serveXpay answers one /xpay/ request.
func (e *Emulator) serveXpay(ctx *fasthttp.RequestCtx, path string) {
	now := e.now()
	route, ok := xpayRoutes[path]
	if !ok {
		writeError(ctx, now, errInvalidURL)
		return
	}
	ans, aerr := e.xpay(ctx, path, route, now)
	if aerr != nil {
		writeError(ctx, now, aerr)
		return
	}
	writeAnswer(ctx, now, ans)
}

// paymentApp makes the first checks of an xpay or mini-game payment request, in WeChat's order:
// POST, a live access_token, and an app of the API's kind (a mini game for /wxa/game/, a mini
// program for /xpay/; the other kind is not authorized). It returns the token's app.
func (e *Emulator) paymentApp(ctx *fasthttp.RequestCtx, now time.Time, miniGame bool) (*appState, *apiError) {
	if !ctx.IsPost() {
		return nil, errRequirePost
	}
	a, aerr := e.checkToken(ctx.QueryArgs().Peek("access_token"), now)
	if aerr != nil {
		return nil, aerr
	}
	if a.cfg.MiniGame != miniGame {
		return nil, errAPIUnauthorized
	}
	return a, nil
}

// xpay verifies a request in WeChat's order — method, access_token, body and env, pay_sig, user
// signature — and then runs the endpoint.
func (e *Emulator) xpay(ctx *fasthttp.RequestCtx, path string, route xpayRoute, now time.Time) (answer, *apiError) {
	a, aerr := e.paymentApp(ctx, now, false) // mini games pay through /wxa/game/ (game.go)
	if aerr != nil {
		return nil, aerr
	}
	q := ctx.QueryArgs()
	body := ctx.PostBody()
	var head xpayHead
	if !isJSONObject(body) || json.Unmarshal(body, &head) != nil {
		return nil, errDataFormat
	}
	env, ok := parseEnv(head.Env)
	if !ok {
		return nil, newErr(268490002, "env参数错误: 只能是0(正式环境)或1(沙箱环境)")
	}
	if k := a.keys[env]; k == nil || !k.VerifyPaySig(q.Peek("pay_sig"), path, body) {
		return nil, errPaySig
	}
	if route.userSig {
		var openid string
		_ = json.Unmarshal(head.OpenID, &openid) // a missing or non-string openid has no session
		key, ok := e.sessionKey(a, openid)
		if !ok {
			return nil, errNoSession
		}
		if !signer.VerifyUserSignature(q.Peek("signature"), key, body) {
			return nil, errUserSig
		}
	}
	var ns notices
	defer e.flush(&ns) // after the unlock below
	e.mu.Lock()
	defer e.mu.Unlock()
	return route.handle(&xpayCall{app: a, env: env, st: a.envs[env], body: body, now: now, host: string(ctx.Host()), notices: &ns})
}
