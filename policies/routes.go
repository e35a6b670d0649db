package policies

import "sort"

// RouteKind says what wxgate does to a request on a WeChat path.
type RouteKind int

const (
	// RouteXpay is a virtual-payment server API: access_token and pay_sig, plus the user signature
	// where UserSignature is set.
	RouteXpay RouteKind = iota + 1
	// RouteCode2Session is /sns/jscode2session: appid and secret injected, session_key captured.
	RouteCode2Session
	// RouteAccessToken is an allowlisted api.weixin.qq.com path: access_token injected.
	RouteAccessToken
	// RoutePayV3 is a WeChat Pay APIv3 path (/v3/...): Authorization signed with the merchant key,
	// answer verified.
	RoutePayV3
	// RoutePayV2 is a legacy APIv2 path (/pay/..., /secapi/..., /mmpaymkttransfers/...,
	// /papay/..., /sandboxnew/...): XML sign added, answer sign verified unless WeChat documents
	// it unsigned; ClientCert marks the paths sent with the merchant's client certificate.
	RoutePayV2
)

// RouteKindCount is the number of route kinds (for per-kind counters).
const RouteKindCount = int(RoutePayV2) + 1

// String names the kind for summaries and metrics.
func (k RouteKind) String() string {
	switch k {
	case RouteXpay:
		return "xpay"
	case RouteCode2Session:
		return "code2session"
	case RouteAccessToken:
		return "access_token"
	case RoutePayV3:
		return "wechatpay_v3"
	case RoutePayV2:
		return "wechatpay_v2"
	}
	return "unknown"
}

// Route is what applies to one WeChat path.
type Route struct {
	Path string
	Kind RouteKind
	// UserSignature marks the xpay APIs that also need the user-state signature, made with the
	// session_key of the body's openid.
	UserSignature bool
	// ClientCert marks APIv2 paths that need the merchant's client certificate (/secapi/ and
	// others, see V2).
	ClientCert bool
	// V2 is the APIv2 route of a RoutePayV2 path (routes_v2.go).
	V2 *V2Route
	// MiniGame marks the mini-game virtual-payment APIs (/wxa/game/...): sig_method=hmac_sha256
	// is added to the query, and only apps of kind "minigame" may call them.
	MiniGame bool
}

// Path prefixes of the WeChat Pay (api.mch.weixin.qq.com) routes.
const (
	PayV3Prefix       = "/v3/"
	PayV2Prefix       = "/pay/"
	PayV2SecurePrefix = "/secapi/"
)

// xpayUserSigned are the xpay APIs that need pay_sig and the user signature
// (docs/protocol/xpay.md §2.3).
var xpayUserSigned = []string{
	"/xpay/query_user_balance",
	"/xpay/currency_pay",
	"/xpay/cancel_currency_pay",
}

// xpayPaySigned are the other xpay APIs; every one gets pay_sig, as the official page's URLs and
// all surveyed SDKs do, where the newer per-API pages leave it out (docs/protocol/xpay.md §2.3).
var xpayPaySigned = []string{
	"/xpay/query_order",
	"/xpay/notify_provide_goods",
	"/xpay/present_currency",
	"/xpay/download_bill",
	"/xpay/refund_order",
	"/xpay/create_withdraw_order",
	"/xpay/query_withdraw_order",
	"/xpay/start_upload_goods",
	"/xpay/query_upload_goods",
	"/xpay/start_publish_goods",
	"/xpay/query_publish_goods",
	"/xpay/query_biz_balance",
	"/xpay/start_download_order",
	"/xpay/query_download_order",
	"/xpay/query_transfer_account",
	"/xpay/query_adver_funds",
	"/xpay/create_funds_bill",
	"/xpay/bind_transfer_accout",
	"/xpay/query_funds_bill",
	"/xpay/query_recover_bill",
	"/xpay/download_adverfunds_order",
	"/xpay/get_complaint_list",
	"/xpay/get_complaint_detail",
	"/xpay/get_negotiation_history",
	"/xpay/response_complaint",
	"/xpay/complete_complaint",
	"/xpay/upload_vp_file",
	"/xpay/get_upload_file_sign",
	"/xpay/query_subscribe_contract",
	"/xpay/send_subscribe_pre_payment",
	"/xpay/submit_subscribe_pay_order",
	"/xpay/cancel_subscribe_contract",
	"/xpay/download_ios_settlement_bill",
}

// Code2SessionPath is the login API whose session_key wxgate captures.
const Code2SessionPath = "/sns/jscode2session"

// DefaultAllowlist is the built-in list of api.weixin.qq.com paths that wxgate forwards with an
// access_token and nothing else: the mini-program server APIs a payment backend commonly needs.
// [routes] allow extends it.
var DefaultAllowlist = []string{
	"/wxa/business/getuserphonenumber",
	"/wxa/getpaidunionid",
	"/wxa/msg_sec_check",
	"/wxa/media_check_async",
	"/wxa/getwxacodeunlimit",
	"/wxa/getwxacode",
	"/wxa/generatescheme",
	"/wxa/generate_urllink",
	"/wxa/generate_shorturl",
	"/wxa/sec/order/upload_shipping_info",
	"/wxa/sec/order/get_order",
	"/wxa/sec/order/is_trade_managed",
	"/cgi-bin/message/subscribe/send",
	"/cgi-bin/message/custom/send",
	"/cgi-bin/openapi/quota/get",
	"/cgi-bin/openapi/rid/get",
}

var signedRoutes = func() map[string]Route {
	m := map[string]Route{Code2SessionPath: {Path: Code2SessionPath, Kind: RouteCode2Session}}
	for _, p := range xpayUserSigned {
		m[p] = Route{Path: p, Kind: RouteXpay, UserSignature: true}
	}
	for _, p := range xpayPaySigned {
		m[p] = Route{Path: p, Kind: RouteXpay}
	}
	addMinigameRoutes(m)
	return m
}()

func lookupSigned(path string) (Route, bool) {
	r, ok := signedRoutes[path]
	return r, ok
}

// RouteTable maps api.weixin.qq.com paths to routes. It is built once and read-only.
type RouteTable struct {
	routes map[string]Route
}

// NewRouteTable builds the table: every xpay API, jscode2session, the built-in allowlist and the
// config's extra allowed paths.
func NewRouteTable(extra []string) *RouteTable {
	t := &RouteTable{routes: make(map[string]Route, len(signedRoutes)+len(DefaultAllowlist)+len(extra))}
	for _, list := range [][]string{DefaultAllowlist, extra} {
		for _, p := range list {
			t.routes[p] = Route{Path: p, Kind: RouteAccessToken}
		}
	}
	for p, r := range signedRoutes {
		t.routes[p] = r
	}
	return t
}

// Lookup returns the route for a request path (no query).
func (t *RouteTable) Lookup(path []byte) (Route, bool) {
	if r, ok := t.routes[string(path)]; ok { // the map lookup does not allocate
		return r, true
	}
	switch {
	case hasPrefix(path, PayV3Prefix):
		return Route{Path: PayV3Prefix, Kind: RoutePayV3}, true
	}
	if v2 := lookupV2(path); v2 != nil {
		return Route{Path: v2.Path, Kind: RoutePayV2, ClientCert: v2.ClientCert, V2: v2}, true
	}
	return Route{}, false
}

func hasPrefix(path []byte, prefix string) bool {
	return len(path) > len(prefix) && string(path[:len(prefix)]) == prefix
}

// All returns every route sorted by path, for summaries.
func (t *RouteTable) All() []Route {
	out := make([]Route, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
