package proxy

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/signer"
)

// serveV2Callback handles POST /callbacks/wechatpay-v2/{merchant}: payment notifications are
// verified by their sign (MD5 or HMAC-SHA256); refund notifications carry no sign and are
// authenticated by decrypting req_info (AES-256-ECB, key = md5 of the APIv2 key). Either way
// appid and mch_id must be the merchant's. WeChat gets the SUCCESS XML only once the app accepted
// the event.
func (g *generation) serveV2Callback(ctx *fasthttp.RequestCtx, name []byte) {
	call := &callbackCall{ctx: ctx, source: cbWeChatPayV2, name: truncate(name, 40)}
	reject := func(status int, msg string) {
		g.refused(call, msg)
		writeV2Answer(ctx, status, false, msg)
	}
	m, ok := g.merchants[string(name)]
	if !ok || m.v2 == nil {
		reject(fasthttp.StatusNotFound, "no merchant with an apiv2_key named "+truncate(name, 40))
		return
	}
	if !ctx.IsPost() {
		reject(fasthttp.StatusMethodNotAllowed, "notifications are POSTed")
		return
	}
	params, err := signer.ParseXML(ctx.PostBody())
	if err != nil {
		reject(fasthttp.StatusBadRequest, "not an APIv2 XML document")
		return
	}
	ev, err := m.decodeV2Notification(params)
	if err != nil {
		reject(fasthttp.StatusUnauthorized, err.Error())
		return
	}
	ev.App = m.appName
	// APIv2 has no timestamp or nonce: the event id alone stops replays.
	switch res, why := g.deliver(call, "", m.forwardURL, ev); res {
	case notDelivered:
		writeV2Answer(ctx, fasthttp.StatusInternalServerError, false, "not delivered yet: "+why)
	default:
		writeV2Answer(ctx, fasthttp.StatusOK, true, "OK")
	}
}

// decodeV2Notification authenticates a v2 notification and builds its event. APIv2 has no
// timestamp or nonce to keep, so replays are stopped by the event id alone (acknowledged ids are
// not forwarded again), and the id is made only of authenticated values: transaction_id (or
// out_trade_no and nonce_str) under the sign, refund_id and refund_status inside req_info. The
// unsigned outer params of a refund are checked but never forwarded.
func (m *merchantState) decodeV2Notification(params []signer.Param) (*event.Event, error) {
	get := func(k string) string { v, _ := signer.ParamValue(params, k); return v }
	if mch := get("mch_id"); mch != m.mchID {
		return nil, fmt.Errorf("mch_id %q is not merchant %q's", truncate([]byte(mch), 20), m.name)
	}
	if app := get("appid"); len(m.appIDs) != 0 && !slices.Contains(m.appIDs, app) {
		return nil, fmt.Errorf("appid %q is not one of merchant %q's appids", truncate([]byte(app), 24), m.name)
	}
	if reqInfo := get("req_info"); reqInfo != "" {
		plain, err := m.v2.DecryptRefundInfo(reqInfo)
		if err != nil {
			return nil, fmt.Errorf("req_info does not decrypt with the APIv2 key")
		}
		info, err := signer.ParseXML(plain)
		if err != nil {
			return nil, fmt.Errorf("req_info is not XML")
		}
		data := paramsJSON(info)
		status, _ := signer.ParamValue(info, "refund_status")
		id, _ := signer.ParamValue(info, "refund_id")
		if id == "" {
			id = digestID("v2r_", plain)
		}
		return &event.Event{ID: "refund_" + id + "_" + status, Source: event.SourceWeChatPayV2, Type: "REFUND." + status, Merchant: m.name, Data: data}, nil
	}
	if _, signed := signer.ParamValue(params, "sign"); !signed {
		return nil, fmt.Errorf("a payment notification without sign is refused")
	}
	if err := m.v2.Verify(v2SignTypeOf(params, signer.V2SignMD5), params); err != nil {
		return nil, fmt.Errorf("sign does not verify")
	}
	if get("return_code") != "SUCCESS" {
		return nil, fmt.Errorf("return_code is not SUCCESS")
	}
	result := get("result_code")
	id := get("transaction_id")
	if id == "" {
		id = digestID("v2p_", []byte(get("out_trade_no")), []byte(get("nonce_str")))
	}
	return &event.Event{ID: "pay_" + id, Source: event.SourceWeChatPayV2, Type: "TRANSACTION." + result, Merchant: m.name, Data: paramsJSON(params)}, nil
}

// paramsJSON turns APIv2 params into a JSON object of strings (sign left out). encoding/json
// writes invalid UTF-8 as U+FFFD, so the object is always valid UTF-8 (TestParamsJSONUTF8);
// ParseXML refuses invalid UTF-8 before that anyway (encoding/xml does), and repairing it first
// would only break the sign, which covers the bytes received.
func paramsJSON(params []signer.Param) json.RawMessage {
	m := make(map[string]string, len(params))
	for _, p := range params {
		if p.Key != "sign" {
			m[p.Key] = p.Value
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// writeV2Answer answers an APIv2 notification with the SUCCESS or FAIL XML.
func writeV2Answer(ctx *fasthttp.RequestCtx, status int, ok bool, msg string) {
	code := "FAIL"
	if ok {
		code = "SUCCESS"
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/xml; charset=utf-8")
	ctx.SetBody(signer.AppendXML(nil, []signer.Param{{Key: "return_code", Value: code}, {Key: "return_msg", Value: msg}}))
}
