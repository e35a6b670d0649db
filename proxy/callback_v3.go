package proxy

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"
	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/store"
)

// Members of an APIv3 notification (docs/protocol/wechatpay.md §3.2) and of its decrypted resource
// that wxgate reads.
var (
	v3NotificationMembers = []string{"id", "event_type", "resource"}
	v3ResourceMembers     = []string{"algorithm", "ciphertext", "associated_data", "nonce"}
)

// serveV3Callback handles POST /callbacks/wechatpay/{merchant}: verify the signature over the raw
// body (key by Wechatpay-Serial, timestamp within 300 s, nonce never seen), decrypt the resource
// with the APIv3 key, check it belongs to the merchant, forward, and answer 204 only once the app
// accepted it.
func (g *generation) serveV3Callback(ctx *fasthttp.RequestCtx, name []byte) {
	call := &callbackCall{ctx: ctx, source: cbWeChatPayV3, name: truncate(name, 40)}
	fail := func(status int, msg string) {
		if call.id == "" { // the notification's id, when the body has one (read, never trusted)
			if raw, ok := jsonscan.TopField(ctx.PostBody(), "id"); ok {
				if id, ok := jsonscan.StringValue(raw); ok && saneRequestID([]byte(id)) {
					call.id = id
				}
			}
		}
		g.refused(call, msg)
		writeV3CallbackFail(ctx, status, msg)
	}
	m, ok := g.merchants[string(name)]
	if !ok {
		fail(fasthttp.StatusNotFound, "no merchant named "+truncate(name, 40))
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
	ev, err := g.decodeV3Notification(m, body)
	if err != nil {
		fail(fasthttp.StatusBadRequest, err.Error())
		return
	}
	// The replay key holds the very header values verifyV3 signed ("ts\nnonce\nbody\n": the line
	// breaks keep them apart); Wechatpay-Serial and -Signature, not signed, stay out. The event
	// id forwarded is the body's, which the signature covers too.
	replay := store.ReplayKey([]byte("v3"), []byte(m.name), ctx.Request.Header.Peek("Wechatpay-Timestamp"), ctx.Request.Header.Peek("Wechatpay-Nonce"))
	switch res, why := g.deliver(call, replay, m.forwardURL, ev); res {
	case replayed:
		writeV3CallbackFail(ctx, fasthttp.StatusUnauthorized, why)
	case notDelivered:
		writeV3CallbackFail(ctx, fasthttp.StatusInternalServerError, "not delivered yet: "+why)
	default:
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// decodeV3Notification decrypts the resource and builds the event; the plaintext must belong to
// the merchant (checkV3Owner: its merchant ids and appids, by event type). It reads only the members it needs,
// in one pass over each document, after checking that each is valid JSON.
func (g *generation) decodeV3Notification(m *merchantState, body []byte) (*event.Event, error) {
	if jsonscan.Object(body) != nil {
		return nil, errors.New("the body is not an APIv3 notification")
	}
	var top, res [4][]byte
	jsonscan.TopFields(body, v3NotificationMembers, top[:])
	id, err1 := jsonscan.MemberString(top[0], "id")
	eventType, err2 := jsonscan.MemberString(top[1], "event_type")
	if r := top[2]; r != nil && r[0] != '{' {
		return nil, errors.New("resource is not an object")
	}
	jsonscan.TopFields(top[2], v3ResourceMembers, res[:])
	// The resource's strings alias body (and the owner ids below alias plain): read, never kept.
	algorithm, err3 := jsonscan.MemberBytes(res[0], "resource.algorithm")
	ciphertext, err4 := jsonscan.MemberBytes(res[1], "resource.ciphertext")
	associatedData, err5 := jsonscan.MemberBytes(res[2], "resource.associated_data")
	nonce, err6 := jsonscan.MemberBytes(res[3], "resource.nonce")
	if err := firstError(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, fmt.Errorf("the body is not an APIv3 notification: %w", err)
	}
	if id == "" || eventType == "" || len(ciphertext) == 0 {
		return nil, errors.New("the notification lacks id, event_type or resource.ciphertext")
	}
	if string(algorithm) != "AEAD_AES_256_GCM" {
		return nil, fmt.Errorf("resource.algorithm %q is not AEAD_AES_256_GCM", truncate(algorithm, 30))
	}
	if m.aead == nil {
		return nil, fmt.Errorf("merchant %q has no apiv3_key to decrypt notifications", m.name)
	}
	plain, err := m.aead.OpenBytes(nil, nonce, associatedData, ciphertext)
	if err != nil {
		return nil, errors.New("the resource does not decrypt with the APIv3 key")
	}
	if jsonscan.Object(plain) != nil {
		return nil, errors.New("the decrypted resource is not a JSON object")
	}
	// The owner check reads the resource as the app will: invalid UTF-8 repaired first (two
	// names differing only in invalid bytes become one), then every top-level name unique.
	plain = jsonscan.RepairUTF8(plain)
	appID, err := m.checkV3Owner(eventType, plain)
	if err != nil {
		return nil, err
	}
	// The event names the configured app the resource's appid is, when it is one (a merchant
	// several apps pay into), else the app of the merchant's appid.
	app := m.appName
	if appID != "" && appID != m.appID {
		if name := g.appNameByID(appID); name != "" {
			app = name
		}
	}
	return &event.Event{ID: id, Source: event.SourceWeChatPayV3, Type: eventType, App: app, Merchant: m.name, Data: plain}, nil
}

// firstError returns the first non-nil error of errs.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// writeV3CallbackFail answers an APIv3 notification so that WeChat retries it.
func writeV3CallbackFail(ctx *fasthttp.RequestCtx, status int, msg string) {
	out, _ := json.Marshal(map[string]string{"code": "FAIL", "message": msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(out)
}

// appNameByID names the configured app with appid, or "".
func (g *generation) appNameByID(appID string) string {
	for _, a := range g.apps {
		if a.appID == appID {
			return a.name
		}
	}
	return ""
}
