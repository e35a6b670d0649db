package proxy

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/wxgate/wxgate/event"
)

// forwarder posts events to the app, signed with the forward secret.
type forwarder struct {
	client *fasthttp.Client
	// replyClient forwards the events whose answer is the app's reply (callback_pushreply.go):
	// whole answers, bounded in size, within the reply deadline.
	replyClient *fasthttp.Client
	secret      *event.Signer
	timeout     time.Duration
	maxConns    int // [forward] max_conns, for the reason given when they are all busy
	clock       func() time.Time
}

// forward posts ev to url; true when the app answered 2xx, else why it did not and, for a
// transport failure, the error itself (for the log). Whether the event was delivered before is
// the store's business (deliver), not the forwarder's.
func (f *forwarder) forward(url string, ev *event.Event) (bool, string, error) {
	if url == "" {
		return false, "no forward_url is configured for this app or merchant", nil
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if why := f.eventRequest(req, url, ev); why != "" {
		return false, why, nil
	}
	if err := f.client.DoTimeout(req, resp, f.timeout); err != nil {
		return false, f.failure(err), err
	}
	discardBody(resp)
	if c := resp.StatusCode(); c < 200 || c > 299 {
		return false, fmt.Sprintf("the app answered HTTP %d", c), nil
	}
	return true, "", nil
}

// eventRequest fills req with ev as the POST the app receives: stamped with the time it was
// received, signed with [forward] secret. It returns why not when ev cannot be encoded.
func (f *forwarder) eventRequest(req *fasthttp.Request, url string, ev *event.Event) string {
	now := f.clock()
	ev.ReceivedAt = now.UTC().Format(time.RFC3339)
	body, err := ev.Marshal()
	if err != nil {
		return "cannot encode the event: its data is not JSON"
	}
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.SetUserAgent("wxgate")
	req.Header.Set(event.HeaderEventID, ev.ID)
	req.Header.Set(event.HeaderSignature, f.secret.Signature(now.Unix(), body))
	req.SetBodyRaw(body)
	return ""
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

// forwardReuseCheck is the idle time after which a pooled connection to the app is checked
// before an event is written on it: always. Besides a close, the check finds bytes the app sent
// unasked, such as a second answer to the previous event; read as this event's answer, a stale
// 2xx would acknowledge to WeChat an event the app never accepted. The check is one
// non-blocking peek per event.
const forwardReuseCheck = 0

// newForwarder returns a forwarder whose client keeps at most maxConns connections per app
// (then an event fails at once, for WeChat to retry) and retries only idle-closed connections.
func newForwarder(secret string, timeout time.Duration, maxConns int, clock func() time.Time) *forwarder {
	return &forwarder{
		client: &fasthttp.Client{
			Name: "wxgate", MaxConnsPerHost: maxConns, ReadTimeout: timeout, WriteTimeout: timeout,
			MaxIdleConnDuration: forwardIdle, StreamResponseBody: true,
			DialTimeout:               checkIdleTimeout(forwardReuseCheck),
			MaxIdemponentCallAttempts: idleRetryAttempts(maxConns),
			RetryIfErr:                retryIdleClosed,
		},
		replyClient: &fasthttp.Client{
			Name: "wxgate", MaxConnsPerHost: maxConns, ReadTimeout: timeout, WriteTimeout: timeout,
			MaxIdleConnDuration: forwardIdle, MaxResponseBodySize: maxReplyBytes,
			DialTimeout:               checkIdleTimeout(forwardReuseCheck),
			MaxIdemponentCallAttempts: idleRetryAttempts(maxConns),
			RetryIfErr:                retryIdleClosed,
		},
		secret:   event.NewSigner(secret),
		timeout:  timeout,
		maxConns: maxConns,
		clock:    clock,
	}
}

// withSecret is a forwarder on f's client (its pooled connections kept) that signs with secret.
func (f *forwarder) withSecret(secret string) *forwarder {
	return &forwarder{client: f.client, replyClient: f.replyClient, secret: event.NewSigner(secret), timeout: f.timeout, maxConns: f.maxConns, clock: f.clock}
}
