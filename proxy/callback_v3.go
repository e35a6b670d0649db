package proxy

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"
)

// v3Notification is the envelope of an APIv3 notification (spec/wechatpay.md §3.2).
type v3Notification struct {
	ID           string `json:"id"`
	EventType    string `json:"event_type"`
	ResourceType string `json:"resource_type"`
	Resource     struct {
		OriginalType   string `json:"original_type"`
		Algorithm      string `json:"algorithm"`
		Ciphertext     string `json:"ciphertext"`
		AssociatedData string `json:"associated_data"`
		Nonce          string `json:"nonce"`
	} `json:"resource"`
}

// serveV3Callback handles POST /callbacks/wechatpay/{merchant}: verify the signature over the raw
// body (key by Wechatpay-Serial, timestamp within 300 s, nonce never seen), decrypt the resource
// with the APIv3 key, check it belongs to the merchant, forward, and answer 204 only once the app
// accepted it.
func (g *Gateway) serveV3Callback(ctx *fasthttp.RequestCtx, name string) {
	fail := func(status int, msg string) {
		g.countCallback(SourceWeChatPayV3, "rejected")
		writeV3CallbackFail(ctx, status, msg)
	}
	m, ok := g.merchants[name]
	if !ok {
		fail(fasthttp.StatusNotFound, "no merchant named "+truncate([]byte(name), 40))
		return
	}
	if !ctx.IsPost() {
		fail(fasthttp.StatusMethodNotAllowed, "notifications are POSTed")
		return
	}
	body := ctx.PostBody()
	if err := g.verifyV3(m, &ctx.Request.Header, body); err != nil {
		fail(fasthttp.StatusUnauthorized, "signature verification failed: "+err.Error())
		return
	}
	ts, nonce := string(ctx.Request.Header.Peek("Wechatpay-Timestamp")), string(ctx.Request.Header.Peek("Wechatpay-Nonce"))
	key := replayKey("v3|"+m.name, ts, nonce)
	if !g.nonces.add(key, g.clock()) {
		fail(fasthttp.StatusUnauthorized, "replayed: this timestamp and nonce were already used")
		return
	}
	ev, err := g.decodeV3Notification(m, body)
	if err != nil {
		g.nonces.remove(key)
		fail(fasthttp.StatusBadRequest, err.Error())
		return
	}
	switch res, why := g.forwarder.forward(m.forwardURL, ev); res {
	case forwardFailed:
		g.nonces.remove(key) // WeChat will retry; the retry must not look like a replay
		g.countCallback(SourceWeChatPayV3, "forward_failed")
		writeV3CallbackFail(ctx, fasthttp.StatusInternalServerError, "not delivered yet: "+why)
	case forwardDuplicate:
		g.countCallback(SourceWeChatPayV3, "duplicate")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		g.countCallback(SourceWeChatPayV3, "forwarded")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// decodeV3Notification decrypts the resource and builds the event; the plaintext's mchid (and
// appid, when the merchant has one) must be the merchant's.
func (g *Gateway) decodeV3Notification(m *merchantState, body []byte) (*Event, error) {
	var n v3Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, errors.New("the body is not an APIv3 notification")
	}
	r := n.Resource
	if n.ID == "" || n.EventType == "" || r.Ciphertext == "" {
		return nil, errors.New("the notification lacks id, event_type or resource.ciphertext")
	}
	if r.Algorithm != "AEAD_AES_256_GCM" {
		return nil, fmt.Errorf("resource.algorithm %q is not AEAD_AES_256_GCM", truncate([]byte(r.Algorithm), 30))
	}
	if m.aead == nil {
		return nil, fmt.Errorf("merchant %q has no apiv3_key to decrypt notifications", m.name)
	}
	plain, err := m.aead.Open(nil, r.Nonce, r.AssociatedData, r.Ciphertext)
	if err != nil {
		return nil, errors.New("the resource does not decrypt with the APIv3 key")
	}
	var owner struct {
		MchID      string `json:"mchid"`
		SpMchID    string `json:"sp_mchid"`
		AppID      string `json:"appid"`
		SpAppID    string `json:"sp_appid"`
		RefundMch  string `json:"mch_id"`
		OutTradeNo string `json:"out_trade_no"`
	}
	if err := json.Unmarshal(plain, &owner); err != nil {
		return nil, errors.New("the decrypted resource is not JSON")
	}
	mch := firstNonEmpty(owner.MchID, owner.SpMchID, owner.RefundMch)
	if mch != m.mchID {
		return nil, fmt.Errorf("the resource belongs to mchid %q, not merchant %q", truncate([]byte(mch), 20), m.name)
	}
	if app := firstNonEmpty(owner.AppID, owner.SpAppID); app != "" && m.appID != "" && app != m.appID {
		return nil, fmt.Errorf("the resource belongs to appid %q, not merchant %q's", truncate([]byte(app), 24), m.name)
	}
	return &Event{ID: n.ID, Source: SourceWeChatPayV3, Type: n.EventType, App: g.appNameByID(m.appID), Merchant: m.name, Data: plain}, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// writeV3CallbackFail answers an APIv3 notification so that WeChat retries it.
func writeV3CallbackFail(ctx *fasthttp.RequestCtx, status int, msg string) {
	out, _ := json.Marshal(map[string]string{"code": "FAIL", "message": msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(out)
}

// appNameByID names the configured app with appid, or "".
func (g *Gateway) appNameByID(appID string) string {
	for _, a := range g.apps {
		if a.appID == appID {
			return a.name
		}
	}
	return ""
}
