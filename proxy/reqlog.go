package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// HeaderRequestID carries a request's id: taken from the request when it is sane, else made by
// wxgate, and echoed on every answer of the app and callback listeners (and in error JSON).
const HeaderRequestID = "X-Request-Id"

// headerRequestID is HeaderRequestID, already in canonical form, for SetCanonical.
var headerRequestID = []byte(HeaderRequestID)

// maxRequestIDLen bounds a request id taken from a request.
const maxRequestIDLen = 128

// idPrefix starts the ids wxgate makes: 12 random hex digits per process and '-', so that ids
// of several instances and restarts differ.
var idPrefix = func() [13]byte {
	var r [6]byte
	_, _ = rand.Read(r[:])
	var p [13]byte
	hex.Encode(p[:12], r[:])
	p[12] = '-'
	return p
}()

// saneRequestID reports whether id, sent by a client, may be kept: 1 to maxRequestIDLen
// printable ASCII characters without spaces or quotes (it goes into logs and JSON as is).
func saneRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range id {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendRequestID appends the request's id to dst: its X-Request-Id when sane, else one made
// of idPrefix and fasthttp's request id (the connection's number, unique in the process, '.',
// the request's number on it), the same each time it is asked for and stored nowhere.
func appendRequestID(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	if id := ctx.Request.Header.Peek(HeaderRequestID); saneRequestID(id) {
		return append(dst, id...)
	}
	n := ctx.ID()
	dst = append(dst, idPrefix[:]...)
	dst = strconv.AppendUint(dst, n>>32, 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, n&0xffffffff, 10)
}

// requestID is the request's id as a string, for log lines and error answers.
func requestID(ctx *fasthttp.RequestCtx) string {
	var buf [maxRequestIDLen]byte
	return string(appendRequestID(buf[:0], ctx))
}

// finish echoes the request id on the answer and writes the access log line; listener is "app"
// or "callback".
func (g *Gateway) finish(ctx *fasthttp.RequestCtx, listener string) {
	var buf [maxRequestIDLen]byte
	id := appendRequestID(buf[:0], ctx)
	ctx.Response.Header.SetCanonical(headerRequestID, id)
	if !g.accessLog {
		return
	}
	// The path only: query strings carry js_code, tokens and signatures.
	g.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("listener", listener),
		slog.String("method", string(ctx.Method())),
		slog.String("path", string(truncateBytes(ctx.Path(), 256))),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.Float64("duration_ms", millis(time.Since(ctx.Time()))),
		slog.Int("bytes", len(ctx.Response.Body())),
		slog.String("request_id", string(id)),
		slog.String("peer", ctx.RemoteIP().String()),
	)
}

// truncateBytes cuts b to at most n bytes.
func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// observe counts an answer on the app listener and its duration since the request was read.
func (g *Gateway) observe(ctx *fasthttp.RequestCtx, kind policies.RouteKind, status int) {
	g.metrics.observe(kind, status, time.Since(ctx.Time()))
}

// callbackCall names a callback in log lines: its source, the app or merchant it is for, and the
// request it came in.
type callbackCall struct {
	ctx    *fasthttp.RequestCtx
	source callbackSource
	name   string // the app or merchant name from the path (bounded)
	id     string // WeChat's notification id, when known
}

// attrs are the log attributes of the callback.
func (c *callbackCall) attrs(extra ...any) []any {
	out := append([]any{
		"source", callbackSources[c.source],
		"name", c.name,
		"request_id", requestID(c.ctx),
		"peer", c.ctx.RemoteIP().String(),
	}, extra...)
	if c.id != "" {
		out = append(out, "notification_id", c.id)
	}
	if rid := c.ctx.Request.Header.Peek("Request-ID"); len(rid) > 0 && saneRequestID(rid) {
		out = append(out, "wechat_request_id", string(rid))
	}
	return out
}

// refused counts a refused callback and logs why. Repeats are rate-limited per source, name and
// kind of reason: what a caller chose (an unknown name, quoted values, numbers) is left out of
// the kind, so that varied forgeries are limited as one.
func (g *generation) refused(c *callbackCall, reason string) {
	g.countCallback(c.ctx, c.source, outcomeRejected)
	kind := "\x00?" // every refusal for a name that is not configured
	if g.apps[c.name] != nil || g.merchants[c.name] != nil {
		kind = "\x00" + c.name + "\x00" + reasonKind(reason)
	}
	g.rate.warn("callback-refused\x00"+callbackSources[c.source]+kind, "callback refused", c.attrs("reason", reason)...)
}

// reasonKind is reason without its quoted parts and digits, at most 64 bytes: the same for two
// refusals that differ only in the values they quote.
func reasonKind(reason string) string {
	var b []byte
	quoted := false
	for i := 0; i < len(reason) && len(b) < 64; i++ {
		switch c := reason[i]; {
		case c == '"':
			quoted = !quoted
		case quoted && c == '\\':
			i++ // an escaped character (%q writes a quote inside a value as \"): still quoted
		case quoted, c >= '0' && c <= '9':
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// millis is d in milliseconds with microsecond precision, as log lines show durations.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
