package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/signer"
)

// Headers on every event forwarded to the app.
const (
	HeaderSignature = "X-Wxgate-Signature" // t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
	HeaderEventID   = "X-Wxgate-Event-Id"  // stable across WeChat's retries of the same event
)

// Event is the JSON envelope forwarded to the app for every verified callback.
type Event struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"` // wechatpay.v3, wechatpay.v2 or message_push
	Type       string          `json:"type"`   // e.g. TRANSACTION.SUCCESS, REFUND.SUCCESS, xpay_goods_deliver_notify
	App        string          `json:"app,omitempty"`
	Merchant   string          `json:"merchant,omitempty"`
	ReceivedAt string          `json:"received_at"`
	Data       json.RawMessage `json:"data"`
}

// Event sources.
const (
	SourceWeChatPayV3 = "wechatpay.v3"
	SourceWeChatPayV2 = "wechatpay.v2"
	SourceMessagePush = "message_push"
)

// forwarder posts events to the app, signed with the forward secret.
type forwarder struct {
	client   *fasthttp.Client
	secret   *hmacSigner
	timeout  time.Duration
	maxConns int // [forward] max_conns, for the reason given when they are all busy
	clock    func() time.Time
	acked    *seenSet // event ids the app accepted

	mu       sync.Mutex
	inFlight map[string]bool // event ids being forwarded right now

	stamp atomic.Pointer[receivedStamp] // the last second formatted (receivedAt)
}

// receivedStamp is a unix second and its RFC 3339 text.
type receivedStamp struct {
	sec  int64
	text string
}

// receivedAt returns now as an event's received_at (RFC 3339, UTC, whole seconds). It formats
// once per second: the events of one second share the text.
func (f *forwarder) receivedAt(now time.Time) string {
	sec := now.Unix()
	if st := f.stamp.Load(); st != nil && st.sec == sec {
		return st.text
	}
	st := &receivedStamp{sec: sec, text: now.UTC().Format(time.RFC3339)}
	f.stamp.Store(st)
	return st.text
}

// hmacSigner signs forwarded events with the forward secret (HMAC state pooled by signer).
type hmacSigner struct{ key *signer.HMACKey }

func newHMACSigner(secret string) *hmacSigner {
	return &hmacSigner{key: signer.NewHMACKey([]byte(secret))}
}

// AppendEventSignature appends the X-Wxgate-Signature value for body at unix time t:
// t=<t>,v1=<hex HMAC-SHA256(secret, t + "." + body)>.
func (h *hmacSigner) AppendEventSignature(dst []byte, t int64, body []byte) []byte {
	var buf [20]byte
	ts := strconv.AppendInt(buf[:0], t, 10)
	dst = append(dst, "t="...)
	dst = append(dst, ts...)
	dst = append(dst, ",v1="...)
	return h.key.AppendHex(dst, string(ts), ".", body)
}

// ackedTTL keeps acknowledged event ids past WeChat's whole retry schedule (24h4m).
const ackedTTL = 25 * time.Hour

// forwardResult is what happened to one forward.
type forwardResult int

const (
	forwardAccepted  forwardResult = iota // the app answered 2xx
	forwardDuplicate                      // already accepted earlier: not sent again
	forwardFailed                         // the app is down, slow or refused: WeChat must retry
)

// forward delivers ev to url unless the app already accepted an event with that id.
func (f *forwarder) forward(url string, ev *Event) (forwardResult, string) {
	if url == "" {
		return forwardFailed, "no forward_url is configured for this app or merchant"
	}
	now := f.clock()
	if f.acked.has(ev.ID, now) {
		return forwardDuplicate, ""
	}
	// The same event arriving twice at once (WeChat sometimes switches paths) is forwarded once:
	// the second copy fails now, and WeChat's retry finds it acknowledged.
	f.mu.Lock()
	busy := f.inFlight[ev.ID]
	if !busy {
		f.inFlight[ev.ID] = true
	}
	f.mu.Unlock()
	if busy {
		return forwardFailed, "the same event is being forwarded right now"
	}
	defer func() {
		f.mu.Lock()
		delete(f.inFlight, ev.ID)
		f.mu.Unlock()
	}()
	ev.ReceivedAt = f.receivedAt(now)
	if !jsonscan.Valid(ev.Data) {
		return forwardFailed, "cannot encode the event: its data is not JSON"
	}
	buf := envelopeBufs.get()
	defer envelopeBufs.put(buf)
	body := appendEvent(*buf, ev)
	*buf = body
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.SetUserAgent("wxgate")
	req.Header.Set(HeaderEventID, ev.ID)
	var sig [96]byte // "t=" + 20 digits + ",v1=" + 64 hex
	req.Header.SetBytesV(HeaderSignature, f.secret.AppendEventSignature(sig[:0], now.Unix(), body))
	req.SetBodyRaw(body)
	if err := f.client.DoTimeout(req, resp, f.timeout); err != nil {
		return forwardFailed, f.failure(err)
	}
	discardBody(resp)
	if c := resp.StatusCode(); c < 200 || c > 299 {
		return forwardFailed, fmt.Sprintf("the app answered HTTP %d", c)
	}
	f.acked.add(ev.ID, now)
	return forwardAccepted, ""
}

// failure says why a forward failed, without anything the request or answer carried.
func (f *forwarder) failure(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fmt.Sprintf("the app already has [forward] max_conns (%d) events in flight; WeChat will retry this one", f.maxConns)
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrTLSHandshakeTimeout):
		return "the app did not answer within [forward] timeout"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "the app closed the connection before answering"
	}
	return "the app could not be reached (" + errorKind(err) + ")"
}

// envelopeBufs holds the buffers events are encoded into (an event is about 1-2 KiB).
var envelopeBufs bufPool

// appendEvent appends ev's JSON envelope to dst: the members of Event in order, empty app and
// merchant left out, Data as it is (valid JSON, checked by the caller). It is what json.Marshal
// writes, minus its HTML escaping and its re-compaction of Data, at a fraction of the cost.
func appendEvent(dst []byte, ev *Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonscan.AppendString(dst, ev.ID)
	dst = append(dst, `,"source":`...)
	dst = jsonscan.AppendString(dst, ev.Source)
	dst = append(dst, `,"type":`...)
	dst = jsonscan.AppendString(dst, ev.Type)
	if ev.App != "" {
		dst = append(dst, `,"app":`...)
		dst = jsonscan.AppendString(dst, ev.App)
	}
	if ev.Merchant != "" {
		dst = append(dst, `,"merchant":`...)
		dst = jsonscan.AppendString(dst, ev.Merchant)
	}
	dst = append(dst, `,"received_at":`...)
	dst = jsonscan.AppendString(dst, ev.ReceivedAt)
	dst = append(dst, `,"data":`...)
	dst = append(dst, ev.Data...)
	return append(dst, '}')
}

// forwardIdle is how long a connection to an app is kept idle: below the 5 s after which Node
// (keepAliveTimeout) and Apache (KeepAliveTimeout) close theirs, so wxgate closes first and
// rarely finds one closed (then errPeerClosedIdle sends the event on a new connection).
const forwardIdle = 3 * time.Second

// forwardDrainBytes is how much of an app's answer body is read (and dropped) so that its
// connection can serve the next event; past it the connection is closed instead. The status
// alone decides: a 2xx is an acceptance whatever its body.
const forwardDrainBytes = 64 << 10

// discardBody reads and drops up to forwardDrainBytes of resp's streamed body, then closes it.
func discardBody(resp *fasthttp.Response) {
	s := resp.BodyStream()
	if s == nil {
		return
	}
	_, _ = io.Copy(io.Discard, &io.LimitedReader{R: s, N: forwardDrainBytes})
	_ = resp.CloseBodyStream() // closes the connection unless the body was read to its end
}

// newForwarder returns a forwarder whose client keeps at most maxConns connections per app
// (then an event fails at once, for WeChat to retry) and retries only idle-closed connections.
func newForwarder(secret string, timeout time.Duration, maxConns int, clock func() time.Time) *forwarder {
	return &forwarder{
		client: &fasthttp.Client{
			Name: "wxgate", MaxConnsPerHost: maxConns, ReadTimeout: timeout, WriteTimeout: timeout,
			MaxIdleConnDuration: forwardIdle, StreamResponseBody: true,
			DialTimeout:               checkIdleTimeout(idleCheckAfter),
			MaxIdemponentCallAttempts: idleRetryAttempts(maxConns),
			RetryIfErr:                retryIdleClosed,
		},
		secret:   newHMACSigner(secret),
		timeout:  timeout,
		maxConns: maxConns,
		clock:    clock,
		acked:    newSeenSet(ackedTTL, 1_000_000),
		inFlight: map[string]bool{},
	}
}
