package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/signer"
	"github.com/wxgate/wxgate/store"
)

// servePushCallback handles GET|POST /callbacks/message/{app}: the echostr handshake, and message
// pushes (xpay events included) in plaintext, compatible or safe mode, JSON or XML.
func (g *generation) servePushCallback(ctx *fasthttp.RequestCtx, name []byte) {
	call := &callbackCall{ctx: ctx, source: cbMessagePush, name: truncate(name, 40)}
	a, ok := g.apps[string(name)]
	if !ok || a.pushToken == "" {
		g.refused(call, "no app with [app.push] has this name")
		writeError(ctx, newError(fasthttp.StatusNotFound, CodeUnknownRoute, "no app with [app.push] named "+truncate(name, 40)))
		return
	}
	q := ctx.QueryArgs()
	ts, nonce := string(q.Peek("timestamp")), string(q.Peek("nonce"))
	if ctx.IsGet() {
		if !signer.VerifyPushSignature(q.Peek("signature"), a.pushToken, ts, nonce) {
			g.refused(call, "handshake signature mismatch")
			ctx.Error("signature mismatch", fasthttp.StatusUnauthorized)
			return
		}
		// A handshake URL kept in some log must not answer for the server again later.
		if stale := g.checkFresh(ts); stale != "" {
			g.refused(call, "handshake refused: "+stale)
			ctx.Error("handshake refused: "+stale, fasthttp.StatusUnauthorized)
			return
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBody(q.Peek("echostr"))
		return
	}
	if !ctx.IsPost() {
		ctx.Error("message push uses GET (handshake) or POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	body := ctx.PostBody()
	isXML := bytes.HasPrefix(bytes.TrimSpace(body), []byte("<"))
	reject := func(status int, msg string) {
		g.refused(call, msg)
		writePushAnswer(ctx, isXML, status, 1, msg)
	}
	msg, sig, err := a.openPush(ctx, body, isXML, ts, nonce)
	if err != nil {
		reject(fasthttp.StatusUnauthorized, err.Error())
		return
	}
	if aerr := g.checkFresh(ts); aerr != "" {
		reject(fasthttp.StatusUnauthorized, aerr)
		return
	}
	jsonMsg := msg
	if bytes.HasPrefix(bytes.TrimSpace(msg), []byte("<")) { // the message's own format, whatever wrapped it
		if jsonMsg, err = pushXMLToJSON(msg); err != nil {
			reject(fasthttp.StatusBadRequest, err.Error())
			return
		}
	}
	f, err := readPushFields(jsonMsg)
	if err != nil {
		reject(fasthttp.StatusBadRequest, err.Error())
		return
	}
	if why := a.checkPayEvent(f.Event, f.MiniGame); why != "" { // callback_minigame.go
		reject(fasthttp.StatusUnauthorized, why)
		return
	}
	// Invalid UTF-8 is repaired for the app's parser. Top-level names are unique (readPushFields);
	// nested duplicates are passed on: nothing nested is read but MiniGame's, which is checked.
	jsonMsg = jsonscan.RepairUTF8(jsonMsg)
	typ := f.Event
	if typ == "" {
		typ = f.MsgType
	}
	// In plaintext mode no signature covers the body, so msg (and this id) is whatever the
	// sender wrote; only the replay key bounds it, to one message per signed URL.
	ev := &event.Event{ID: digestID("push_", []byte(a.appID), msg), Source: event.SourceMessagePush, Type: typ, App: a.name, Data: jsonMsg}
	// The replay key is the signature openPush verified, never a query value it did not check
	// (an unverified msg_signature of a plaintext push took any value, each a fresh key). The
	// signature stands for timestamp and nonce (and Encrypt) better than they do themselves:
	// it hashes the sorted parts joined without separators, so timestamp and nonce swapped
	// verify alike and would be another (timestamp, nonce) key.
	replay := store.ReplayKey([]byte("push"), []byte(a.name), sig)
	if re, ok := replyEvents[typ]; ok { // WeChat wants the app's own answer (callback_pushreply.go)
		g.deliverForReply(call, a, replay, ev, re, isXML, string(q.Peek("encrypt_type")) == "aes")
		return
	}
	switch res, why := g.deliver(call, replay, a.forwardURL, ev); res {
	case replayed:
		writePushAnswer(ctx, isXML, fasthttp.StatusUnauthorized, 1, why)
	case notDelivered:
		writePushAnswer(ctx, isXML, fasthttp.StatusInternalServerError, 1, "not delivered yet: "+why)
	default:
		writePushAnswer(ctx, isXML, fasthttp.StatusOK, 0, "success")
	}
}

// openPush verifies a push and returns the plaintext message and the signature it verified
// (aliasing the query). Encrypted pushes (safe and compatible mode) are checked with
// msg_signature over the Encrypt field and the appid inside, and decrypted; plaintext pushes with signature (over the token, ts and nonce only); an
// app configured with an EncodingAESKey refuses plaintext pushes, whose body no signature covers.
func (a *appState) openPush(ctx *fasthttp.RequestCtx, body []byte, isXML bool, ts, nonce string) (msg, sig []byte, err error) {
	q := ctx.QueryArgs()
	if string(q.Peek("encrypt_type")) != "aes" {
		if a.crypter != nil {
			return nil, nil, fmt.Errorf("plaintext push refused: app %q has an encoding_aes_key, so pushes must use safe mode", a.name)
		}
		sig = q.Peek("signature")
		if !signer.VerifyPushSignature(sig, a.pushToken, ts, nonce) {
			return nil, nil, fmt.Errorf("signature mismatch")
		}
		return body, sig, nil
	}
	if a.crypter == nil {
		return nil, nil, fmt.Errorf("encrypted push but app %q has no encoding_aes_key", a.name)
	}
	var encrypt string
	if isXML {
		params, err := signer.ParseXML(body)
		if err != nil {
			return nil, nil, fmt.Errorf("the XML body does not parse: %v", err)
		}
		encrypt, _ = signer.ParamValue(params, "Encrypt")
	} else {
		// Read before msg_signature is checked, so in one pass without allocating (readPushFields
		// would fold and remember every name); this wrapper is not forwarded, its decrypted
		// message is, and that is read with readPushFields.
		if jsonscan.Object(body) != nil {
			return nil, nil, errors.New("the message is not a JSON object")
		}
		raw, _ := jsonscan.TopField(body, "Encrypt")
		if encrypt, err = jsonscan.MemberString(raw, "Encrypt"); err != nil {
			return nil, nil, fmt.Errorf("the message has unexpected member types: %v", err)
		}
	}
	if encrypt == "" {
		return nil, nil, fmt.Errorf("encrypt_type=aes but the body has no Encrypt")
	}
	sig = q.Peek("msg_signature")
	if !signer.VerifyPushSignature(sig, a.pushToken, ts, nonce, encrypt) {
		return nil, nil, fmt.Errorf("msg_signature mismatch")
	}
	msg, appID, err := a.crypter.Decrypt(encrypt)
	if err != nil {
		return nil, nil, errors.New("the Encrypt field does not decrypt with the EncodingAESKey")
	}
	if appID != a.appID {
		return nil, nil, fmt.Errorf("the message is for appid %q, not app %q", truncate([]byte(appID), 24), a.name)
	}
	return msg, sig, nil
}

// checkFresh refuses a signed timestamp (unix seconds) more than 300 s from wxgate's clock, for
// WeChat Pay answers and notifications and for message pushes alike; "" when fresh.
func (g *Gateway) checkFresh(ts string) string {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "timestamp is missing or not a number"
	}
	if skew := g.clock().Sub(time.Unix(sec, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return fmt.Sprintf("timestamp is %s away from wxgate's clock (more than %s: replayed, or a clock is wrong)", skew.Round(time.Second), maxClockSkew)
	}
	return ""
}

// writePushAnswer acknowledges (code 0) or refuses a push in the push's own format.
func writePushAnswer(ctx *fasthttp.RequestCtx, isXML bool, status, code int, msg string) {
	ctx.SetStatusCode(status)
	if isXML {
		ctx.SetContentType("text/xml; charset=utf-8")
		ctx.SetBody(signer.AppendXML([]byte(nil), []signer.Param{{Key: "ErrCode", Value: strconv.Itoa(code)}, {Key: "ErrMsg", Value: msg}}))
		return
	}
	// {"ErrCode":<code>,"ErrMsg":<msg>}, as json.Marshal writes it, without its allocations.
	var buf [160]byte
	b := append(buf[:0], `{"ErrCode":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"ErrMsg":`...)
	b = jsonscan.AppendString(b, msg)
	b = append(b, '}')
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(b)
}
