package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRequestIDs: a sane X-Request-Id is kept, anything else is replaced by a fresh id, and
// ids made by one gateway differ.
func TestRequestIDs(t *testing.T) {
	g := benchGateway(t)
	seen := map[string]bool{}
	for _, c := range []struct {
		sent string
		keep bool
	}{
		{"", false},
		{"abc-123", true},
		{"7f1c2e9a-7d4b-4f6e-9a51-0e3c1b2a4d5f", true},
		{"has space", false},
		{`quote"d`, false},
		{"back\\slash", false},
		{"\x01ctl", false},
		{"é-utf8", false},
		{strings.Repeat("x", maxRequestIDLen), true},
		{strings.Repeat("x", maxRequestIDLen+1), false},
	} {
		var req fasthttp.Request
		if c.sent != "" {
			req.Header.Set(HeaderRequestID, c.sent)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil) // a new connection number, as a server's connection has
		id := requestID(&ctx)
		if again := requestID(&ctx); again != id {
			t.Errorf("sent %q: id %q, then %q", c.sent, id, again)
		}
		g.finish(&ctx, "app")
		if echoed := string(ctx.Response.Header.Peek(HeaderRequestID)); echoed != id {
			t.Errorf("sent %q: answer carries %q, the request %q", c.sent, echoed, id)
		}
		if c.keep != (id == c.sent) || !saneRequestID([]byte(id)) {
			t.Errorf("sent %q: id %q (keep %v)", c.sent, id, c.keep)
		}
		if !c.keep {
			if seen[id] {
				t.Errorf("id %q made twice", id)
			}
			seen[id] = true
		}
	}
}

// TestRequestIDAllocatesNothing: making a request id and echoing it, with the access log off,
// allocates nothing once the answer's header buffer has grown.
func TestRequestIDAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	g := benchGateway(t)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	run := func() {
		ctx.Response.Header.Del(HeaderRequestID)
		g.finish(&ctx, "app")
	}
	run()
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Errorf("request id: %.1f allocations per request, want 0", n)
	}
}

// BenchmarkRequestID is the per-request cost of the request id (made, not taken) and its echo
// with the access log off.
func BenchmarkRequestID(b *testing.B) {
	g := benchGateway(b)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		g.finish(&ctx, "app")
	}
}

// BenchmarkObserve is the per-request cost of the request metrics: a counter and a duration
// histogram by route kind and status class.
func BenchmarkObserve(b *testing.B) {
	g := benchGateway(b)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		g.observe(&ctx, 1, 200)
	}
}

// TestReasonKindIgnoresQuotedValues: refusals that differ only in what they quote (as %q writes
// it, escapes included) or in numbers share one log kind, so that a caller cannot make every
// forgery a new kind and get a log line each.
func TestReasonKindIgnoresQuotedValues(t *testing.T) {
	same := [][2]string{
		{fmt.Sprintf("serial %q: unknown", "ABC123"), fmt.Sprintf("serial %q: unknown", "XYZ")},
		{fmt.Sprintf("serial %q: unknown", `a"xyzq`), fmt.Sprintf("serial %q: unknown", `a"pqrs`)},
		{fmt.Sprintf("member %q occurs twice", `x"evil`), fmt.Sprintf("member %q occurs twice", `y"other\`)},
		{"a malformed serial (12 bytes)", "a malformed serial (3002 bytes)"},
	}
	for _, p := range same {
		if a, b := reasonKind(p[0]), reasonKind(p[1]); a != b {
			t.Errorf("%q and %q have kinds %q and %q, want one", p[0], p[1], a, b)
		}
	}
	if a, b := reasonKind(`serial "x": unknown`), reasonKind(`signature "x" mismatch`); a == b {
		t.Errorf("two different reasons share the kind %q", a)
	}
}
