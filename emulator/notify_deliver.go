package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// deliverTimeout is how long WeChat waits for a callback's answer ("需在5秒内...应答").
const deliverTimeout = 5 * time.Second

// maxAckBody bounds the answer body read from a receiver.
const maxAckBody = 64 << 10

// notifyUserAgent is the User-Agent WeChat's callbacks carry.
const notifyUserAgent = "Mozilla/4.0"

// Deliver makes one attempt to deliver n — POST n.URL with n.Header and n.Body, 5 s timeout,
// no redirects followed — and reports whether WeChat would count the answer as an
// acknowledgement:
//
//   - KindV3: HTTP 200 or 204, whatever the body (the status decides, wechatpay.md §3.4);
//   - KindV2: HTTP 200 with an XML body whose return_code is SUCCESS (§8.2);
//   - KindPush: HTTP 200 with an empty body, "success", or ErrCode 0 in the push's own format
//     — JSON {"ErrCode":0,...} for JSON pushes, <xml><ErrCode>0</ErrCode>...</xml> for XML ones
//     (xpay.md §4.6).
//
// err is a transport error (no answer: status is 0); an answer that is not an acknowledgement
// is not an error.
func (e *Emulator) Deliver(n Notification) (acked bool, status int, body []byte, err error) {
	timeout := deliverTimeout
	if n.Answer != "" {
		timeout = answerDeadline(n.Answer)
	}
	status, body, err = e.notify.post(n, timeout)
	if err != nil {
		return false, 0, nil, fmt.Errorf("emulator: deliver %s notification to %s: %w", n.Kind, n.URL, err)
	}
	if n.Answer != "" { // the app's business answer, not an acknowledgement (notify_pushreply.go)
		_, err := e.OpenPushAnswer(n, status, body)
		return err == nil, status, body, nil
	}
	return acknowledged(n, status, body), status, body, nil
}

// post sends n once and returns the answer.
func (nt *notifier) post(n Notification, timeout time.Duration) (int, []byte, error) {
	if nt.ctx.Err() != nil {
		return 0, nil, ErrShutdown
	}
	u, err := url.Parse(n.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return 0, nil, fmt.Errorf("not an absolute http(s) URL: %q", n.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	// One HostClient per attempt and Connection: close: like WeChat, every callback uses a new
	// connection, and no pool outlives the attempt.
	hc := &fasthttp.HostClient{
		Addr:                          addr,
		IsTLS:                         u.Scheme == "https",
		Dial:                          nt.dial,
		Name:                          notifyUserAgent,
		ReadTimeout:                   timeout,
		WriteTimeout:                  timeout,
		MaxResponseBodySize:           maxAckBody,
		MaxIdemponentCallAttempts:     1,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.DisableNormalizing()
	req.SetRequestURI(n.URL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetConnectionClose()
	for k, v := range n.Header {
		req.Header.Set(k, v)
	}
	req.SetBody(n.Body)
	if err := hc.DoTimeout(req, resp, timeout); err != nil {
		if nt.ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrShutdown, err)
		}
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// dial opens a connection for a delivery. The notifier tracks it until it is closed, so that
// stop can cut deliveries in flight.
func (nt *notifier) dial(addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(nt.ctx, deliverTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, nt: nt}
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.stopped {
		_ = c.Close()
		return nil, ErrShutdown
	}
	nt.conns[tc] = struct{}{}
	return tc, nil
}

// trackedConn is a delivery connection the notifier knows about.
type trackedConn struct {
	net.Conn
	nt   *notifier
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.nt.mu.Lock()
		delete(c.nt.conns, c)
		c.nt.mu.Unlock()
	})
	return c.Conn.Close()
}

// acknowledged applies WeChat's acknowledgement rule for n's kind to an answer.
func acknowledged(n Notification, status int, body []byte) bool {
	switch n.Kind {
	case KindV3:
		return status == fasthttp.StatusOK || status == fasthttp.StatusNoContent
	case KindV2:
		if status != fasthttp.StatusOK {
			return false
		}
		params, err := signer.ParseXML(body)
		if err != nil {
			return false
		}
		code, _ := signer.ParamValue(params, "return_code")
		return code == "SUCCESS"
	case KindPush:
		return status == fasthttp.StatusOK && pushAcked(pushFormatOf(n), body)
	}
	return false
}

// pushAcked reports whether a message push answer body means ErrCode 0: empty, "success", or
// ErrCode 0 in the push's format.
func pushAcked(format string, body []byte) bool {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || string(b) == "success" {
		return true
	}
	if format == pushXML {
		params, err := signer.ParseXML(b)
		if err != nil {
			return false
		}
		code, ok := signer.ParamValue(params, "ErrCode")
		return ok && strings.TrimSpace(code) == "0"
	}
	// A map, not a struct: encoding/json matches struct fields case-insensitively, and WeChat
	// reads "ErrCode" as spelt.
	var ack map[string]json.RawMessage
	if !isJSONObject(b) || json.Unmarshal(b, &ack) != nil {
		return false
	}
	return string(ack["ErrCode"]) == "0" // the number 0; not "0", not absent
}
