package policies

import (
	"sort"
	"strings"
)

// APIv2 route families beyond /pay/ and /secapi/ (docs/protocol/wechatpay.md §7.4 to §7.8).
const (
	PayV2TransfersPrefix = "/mmpaymkttransfers/"
	PayV2PapayPrefix     = "/papay/"
	PayV2SandboxPrefix   = "/sandboxnew/"
	// PayV2SandboxSignKeyPath is where the sandbox key is fetched; wxgate calls it itself.
	PayV2SandboxSignKeyPath = "/sandboxnew/pay/getsignkey"
)

// APIv2 sign types a route may require.
const (
	V2SignMD5        = "MD5"
	V2SignHMACSHA256 = "HMAC-SHA256"
)

// V2Route is what wxgate does to one APIv2 path: which certificate, sign type and field names the
// request takes and whether WeChat signs the answer.
type V2Route struct {
	Path string
	// ClientCert: the call needs the merchant's client certificate.
	ClientCert bool
	// SignType, when set, is the only sign type WeChat accepts on the path: wxgate fills it when
	// the app leaves sign_type out and refuses another.
	SignType string
	// Unsigned: WeChat documents the answer as unsigned (a file, or XML without sign). wxgate
	// passes it on with X-Wxgate-Unsigned: true instead of verifying it.
	Unsigned bool
	// AppIDField and MchIDField name the appid and merchant id fields ("appid"/"mch_id" on most
	// paths); AppIDField "" means the path takes no appid.
	AppIDField, MchIDField string
	// NoNonce: the path takes no nonce_str (the papay contract queries), so none is filled.
	NoNonce bool
	// Sandbox: a /sandboxnew/ path, signed with the sandbox key fetched by getsignkey.
	Sandbox bool
}

// v2Known are the APIv2 paths with rules of their own; other /pay/ and /secapi/ paths take the
// defaults (appid, mch_id, nonce_str, any sign type, signed answer; /secapi/ with the client
// certificate).
var v2Known = []V2Route{
	{Path: "/pay/downloadbill", Unsigned: true},
	{Path: "/pay/downloadfundflow", ClientCert: true, SignType: V2SignHMACSHA256, Unsigned: true},
	{Path: "/mmpaymkttransfers/promotion/transfers", ClientCert: true, Unsigned: true, AppIDField: "mch_appid", MchIDField: "mchid"},
	{Path: "/mmpaymkttransfers/gettransferinfo", ClientCert: true, Unsigned: true},
	{Path: "/mmpaymkttransfers/sendredpack", ClientCert: true, Unsigned: true, AppIDField: "wxappid"},
	{Path: "/mmpaymkttransfers/sendgroupredpack", ClientCert: true, Unsigned: true, AppIDField: "wxappid"},
	{Path: "/mmpaymkttransfers/sendminiprogramhb", ClientCert: true, Unsigned: true, AppIDField: "wxappid"},
	{Path: "/mmpaymkttransfers/gethbinfo", ClientCert: true, Unsigned: true},
	{Path: "/papay/querycontract", NoNonce: true},
	{Path: "/papay/deletecontract", NoNonce: true, SignType: V2SignMD5},
}

var v2Table = func() map[string]*V2Route {
	m := make(map[string]*V2Route, 2*len(v2Known))
	for i := range v2Known {
		r := v2Known[i]
		if r.AppIDField == "" {
			r.AppIDField = "appid"
		}
		if r.MchIDField == "" {
			r.MchIDField = "mch_id"
		}
		m[r.Path] = &r
		if strings.HasPrefix(r.Path, PayV2Prefix) || strings.HasPrefix(r.Path, PayV2SecurePrefix) {
			s := r
			s.Path, s.Sandbox = PayV2SandboxPrefix+r.Path[1:], true
			m[s.Path] = &s
		}
	}
	return m
}()

// Default APIv2 routes of paths without rules of their own.
var (
	v2DefaultPay        = &V2Route{Path: PayV2Prefix, AppIDField: "appid", MchIDField: "mch_id"}
	v2DefaultSecapi     = &V2Route{Path: PayV2SecurePrefix, ClientCert: true, AppIDField: "appid", MchIDField: "mch_id"}
	v2DefaultSandbox    = &V2Route{Path: PayV2SandboxPrefix + "pay/", AppIDField: "appid", MchIDField: "mch_id", Sandbox: true}
	v2DefaultSandboxSec = &V2Route{Path: PayV2SandboxPrefix + "secapi/", ClientCert: true, AppIDField: "appid", MchIDField: "mch_id", Sandbox: true}
)

// lookupV2 returns the APIv2 route of path, or nil when path is not an APIv2 path wxgate routes.
// Under /mmpaymkttransfers/ and /papay/ only the listed paths are routed: their rules differ
// from path to path, and guessing them wrong would sign with the wrong fields or certificate.
func lookupV2(path []byte) *V2Route {
	if r, ok := v2Table[string(path)]; ok { // the map lookup does not allocate
		return r
	}
	switch {
	case hasPrefix(path, PayV2Prefix):
		return v2DefaultPay
	case hasPrefix(path, PayV2SecurePrefix):
		return v2DefaultSecapi
	case hasPrefix(path, PayV2SandboxPrefix+"pay/"):
		return v2DefaultSandbox
	case hasPrefix(path, PayV2SandboxPrefix+"secapi/"):
		return v2DefaultSandboxSec
	}
	return nil
}

// V2Routes lists the APIv2 paths with rules of their own, sandbox twins included, sorted by path.
func V2Routes() []V2Route {
	out := make([]V2Route, 0, len(v2Table))
	for _, r := range v2Table {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
