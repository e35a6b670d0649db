package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/signer"
	"github.com/wxgate/wxgate/store"
)

// Message pushes that WeChat wants the app's own answer to (docs/pushreply.md,
// docs/protocol/message-push.md §7): the app's reply body to the
// forwarded event is relayed to WeChat, encrypted and signed when the push came in safe or
// compatible mode. A missing, malformed or late reply is a failure answer, never "success".

// replyEvent is one push event whose answer is the app's business reply.
type replyEvent struct {
	// wechatDeadline is how long WeChat waits for the answer.
	wechatDeadline time.Duration
	// check validates the app's reply (a JSON object), read through get; nil accepts any object.
	check func(get func(name string) ([]byte, bool)) error
}

// replyEvents lists the push events WeChat expects a business answer to, by Event.
var replyEvents = map[string]replyEvent{
	// iOS subscription refund inquiry: answer {"result_code": 0 (refund) | 1 (refuse),
	// "result_info", "evidence" (required)} within 3 s (docs/protocol/message-push.md §7).
	"xpay_subscribe_ios_refund_query_notify": {wechatDeadline: 3 * time.Second, check: checkIOSRefundReply},
}

// replyMargin is kept between the app's deadline and WeChat's: the time wxgate needs to encrypt
// and send the answer, and the network's.
const replyMargin = 500 * time.Millisecond

// maxReplyBytes bounds the app's reply.
const maxReplyBytes = 16 << 10

// HeaderReplyDeadline is sent with an event that needs the app's answer: the milliseconds the
// app has to answer it (its reply body is relayed to WeChat).
const HeaderReplyDeadline = "X-Wxgate-Reply-Deadline-Ms"

// checkIOSRefundReply accepts {"result_code": 0|1, "result_info": string (optional), "evidence":
// non-empty string}.
func checkIOSRefundReply(get func(string) ([]byte, bool)) error {
	code, ok := get("result_code")
	if !ok || (string(code) != "0" && string(code) != "1") {
		return errors.New(`"result_code" must be the number 0 (refund) or 1 (refuse)`)
	}
	if info, ok := get("result_info"); ok {
		if _, ok := jsonscan.StringValue(info); !ok {
			return errors.New(`"result_info" must be a string`)
		}
	}
	ev, ok := get("evidence")
	if s, isStr := jsonscan.StringValue(ev); !ok || !isStr || s == "" {
		return errors.New(`"evidence" is required: a non-empty string`)
	}
	return nil
}

// appReplyDeadline is how long the app has to answer re: min([forward] timeout, WeChat's
// deadline - replyMargin).
func (f *forwarder) appReplyDeadline(re replyEvent) time.Duration {
	return min(f.timeout, re.wechatDeadline-replyMargin)
}

// deliverForReply forwards a verified push that needs the app's answer and writes WeChat's
// answer: the app's reply (in the push's format, encrypted when the push was) or a failure. The
// store claims the event as for any notification (one forward at a time across instances, the
// signed request never twice) but never records it delivered: WeChat retries only an event it
// got no valid answer for, and its retry is forwarded again for the app to answer again.
func (g *generation) deliverForReply(call *callbackCall, a *appState, replay string, ev *event.Event, re replyEvent, isXML, encrypted bool) {
	ctx := call.ctx
	call.id = ev.ID
	fail := func(status int, why string) {
		writePushAnswer(ctx, isXML, status, 1, why)
	}
	start := time.Now()
	cl, err := g.store.Claim(storeCtx, replay, ev.ID)
	g.metrics.store(storeClaim, start, err)
	if err != nil {
		g.countCallback(ctx, call.source, outcomeForwardFailed)
		g.rate.error("store-claim", "a notification was not delivered: the store is unavailable; WeChat will retry", call.attrs("err", err.Error())...)
		fail(fasthttp.StatusInternalServerError, "not answered: wxgate's store is unavailable")
		return
	}
	switch cl.Verdict {
	case store.Claimed:
	case store.Replayed:
		why := "replayed: this timestamp and nonce were already used"
		g.refused(call, why)
		fail(fasthttp.StatusUnauthorized, why)
		return
	case store.InFlight:
		g.countCallback(ctx, call.source, outcomeForwardFailed)
		fail(fasthttp.StatusInternalServerError, "not answered: the same event is being forwarded right now")
		return
	default: // AlreadyDelivered: never recorded for these events, unless by an older wxgate
		g.countCallback(ctx, call.source, outcomeForwardFailed)
		fail(fasthttp.StatusInternalServerError, "not answered: this event was acknowledged before without the app's answer")
		return
	}
	deadline := g.forwarder.appReplyDeadline(re)
	fstart := time.Now()
	reply, why, cause := g.forwarder.forwardForReply(a.forwardURL, ev, deadline)
	if why == "" {
		why = validateReply(reply, re)
	}
	took := time.Since(fstart)
	g.metrics.forward(call.source, why == "", took)
	var answer []byte
	if why == "" {
		if answer, err = g.replyBody(a, reply, isXML, encrypted); err != nil {
			why = err.Error()
		}
	}
	if why != "" {
		start = time.Now()
		err := g.store.Release(storeCtx, cl)
		g.metrics.store(storeRelease, start, err)
		if err != nil {
			g.rate.warn("store-release", "a failed delivery's claim could not be released; it lapses by itself", "err", err.Error())
		}
		g.countCallback(ctx, call.source, outcomeForwardFailed)
		args := call.attrs("host", forwardHost(a.forwardURL), "reason", why, "duration_ms", millis(took))
		if cause != nil {
			args = append(args, "cause", cause.Error())
		}
		g.rate.error("reply-failed\x00"+call.name+"\x00"+why, "the app's answer to a push could not be relayed; WeChat gets a failure and asks again", args...)
		fail(fasthttp.StatusInternalServerError, "not answered: "+why)
		return
	}
	start = time.Now()
	err = g.store.Answered(storeCtx, cl)
	g.metrics.store(storeDelivered, start, err)
	if err != nil {
		g.rate.warn("store-delivered", "an answered push could not be recorded", "err", err.Error())
	}
	g.countCallback(ctx, call.source, outcomeForwarded)
	g.log.Debug("push answered by the app", call.attrs("host", forwardHost(a.forwardURL), "duration_ms", millis(took))...)
	ctx.SetStatusCode(fasthttp.StatusOK)
	if isXML {
		ctx.SetContentType("text/xml; charset=utf-8")
	} else {
		ctx.SetContentType("application/json; charset=utf-8")
	}
	ctx.SetBody(answer)
}

// validateReply says what is wrong with the app's reply, "" when it is fit to relay.
func validateReply(reply []byte, re replyEvent) string {
	if jsonscan.Object(reply) != nil {
		return "the app's reply is not a JSON object"
	}
	if re.check == nil {
		return ""
	}
	err := re.check(func(name string) ([]byte, bool) {
		return jsonscan.TopField(reply, name)
	})
	if err != nil {
		return "the app's reply is malformed: " + err.Error()
	}
	return ""
}

// replyBody is WeChat's answer carrying the app's reply: the JSON reply as it is, or its XML
// form for an XML push; wrapped in {Encrypt, MsgSignature, TimeStamp, Nonce} (or the XML
// equivalent) when the push was encrypted (xpay.md §4.4).
func (g *generation) replyBody(a *appState, reply []byte, isXML, encrypted bool) ([]byte, error) {
	msg := reply
	if isXML {
		var err error
		if msg, err = jsonToPushXML(reply); err != nil {
			return nil, err
		}
	}
	if !encrypted {
		return msg, nil
	}
	var random [16]byte
	rand.Read(random[:]) // never fails (crypto/rand contract since Go 1.24)
	enc := a.crypter.Encrypt(random, msg, a.appID)
	ts := strconv.FormatInt(g.clock().Unix(), 10)
	nonce := string(appendNonce(nil))
	sig := signer.PushSignature(a.pushToken, ts, nonce, enc)
	if isXML {
		// enc is base64, sig hex and nonce alphanumeric: nothing in them needs escaping.
		return fmt.Appendf(nil, "<xml><Encrypt><![CDATA[%s]]></Encrypt><MsgSignature><![CDATA[%s]]></MsgSignature><TimeStamp>%s</TimeStamp><Nonce><![CDATA[%s]]></Nonce></xml>", enc, sig, ts, nonce), nil
	}
	b := append([]byte(`{"Encrypt":`), jsonscan.AppendString(nil, enc)...)
	b = append(append(b, `,"MsgSignature":`...), jsonscan.AppendString(nil, sig)...)
	b = append(append(b, `,"TimeStamp":`...), ts...)
	b = append(append(b, `,"Nonce":`...), jsonscan.AppendString(nil, nonce)...)
	return append(b, '}'), nil
}

// jsonToPushXML writes a JSON object as a push XML document: <xml> with one element per member
// (names sorted), strings in CDATA, numbers and booleans as text, objects nested, arrays as
// repeated elements.
func jsonToPushXML(obj []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(obj))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("the app's reply is not a JSON object: %v", err)
	}
	b := []byte("<xml>")
	b, err := appendXMLMembers(b, m, 1)
	if err != nil {
		return nil, err
	}
	return append(b, "</xml>"...), nil
}

// appendXMLMembers appends m's members as elements.
func appendXMLMembers(b []byte, m map[string]any, depth int) ([]byte, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		if !xmlName(k) {
			return nil, fmt.Errorf("the app's reply has member %q, which is no XML element name", truncate([]byte(k), 40))
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var err error
	for _, k := range names {
		if b, err = appendXMLValue(b, k, m[k], depth); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendXMLValue appends <name>v</name> (one per element of an array).
func appendXMLValue(b []byte, name string, v any, depth int) ([]byte, error) {
	if depth > maxPushDepth {
		return nil, errors.New("the app's reply is nested too deeply")
	}
	if arr, ok := v.([]any); ok {
		var err error
		for _, e := range arr {
			if b, err = appendXMLValue(b, name, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	b = append(append(append(b, '<'), name...), '>')
	switch t := v.(type) {
	case string:
		p := signer.AppendXML(nil, []signer.Param{{Key: "v", Value: t}})
		b = append(b, p[len("<xml><v>"):len(p)-len("</v></xml>")]...)
	case json.Number:
		b = append(b, t...)
	case bool:
		b = strconv.AppendBool(b, t)
	case nil:
	case map[string]any:
		var err error
		if b, err = appendXMLMembers(b, t, depth+1); err != nil {
			return nil, err
		}
	}
	return append(append(append(b, "</"...), name...), '>'), nil
}

// xmlName reports whether s is a plain XML element name: a letter or '_', then letters, digits,
// '_', '-' or '.'.
func xmlName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// forwardForReply posts ev to url like forward and returns the app's 2xx answer body (at most
// maxReplyBytes), waiting at most timeout; else why there is none and, for a transport failure,
// the error.
func (f *forwarder) forwardForReply(url string, ev *event.Event, timeout time.Duration) ([]byte, string, error) {
	if url == "" {
		return nil, "no forward_url is configured for this app", nil
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if why := f.eventRequest(req, url, ev); why != "" {
		return nil, why, nil
	}
	req.Header.Set(HeaderReplyDeadline, strconv.FormatInt(timeout.Milliseconds(), 10))
	client := f.replyClient
	if client == nil {
		client = f.client
	}
	if err := client.DoTimeout(req, resp, timeout); err != nil {
		switch {
		case errors.Is(err, fasthttp.ErrTimeout):
			return nil, fmt.Sprintf("the app did not answer within %s (WeChat's deadline less %s)", timeout, replyMargin), err
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			return nil, fmt.Sprintf("the app's reply is over %d bytes", maxReplyBytes), nil
		}
		return nil, f.failure(err), err
	}
	if c := resp.StatusCode(); c < 200 || c > 299 {
		return nil, fmt.Sprintf("the app answered HTTP %d", c), nil
	}
	reply := bytes.Clone(resp.Body())
	if len(bytes.TrimSpace(reply)) == 0 {
		return nil, "the app answered without a reply body", nil
	}
	return reply, "", nil
}
