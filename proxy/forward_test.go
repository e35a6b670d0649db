package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestAppendEventMatchesEncodingJSON: the hand-written envelope decodes to exactly what
// json.Marshal of the same Event decodes to, for awkward strings too.
func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	awkward := []string{
		"", "plain", `quote " backslash \ slash /`, "tab\tnewline\nreturn\r", "\x00\x01\x1f\x7f",
		"<html>&amp;", "中文 émoji 😀", "line\u2028para\u2029", "bad utf8 \xff\xfe end", "\xe4\xb8",
	}
	for _, s := range awkward {
		for _, ev := range []Event{
			{ID: s, Source: SourceWeChatPayV3, Type: s, App: s, Merchant: "m", ReceivedAt: "2026-12-01T00:00:00Z", Data: json.RawMessage(`{"a":1}`)},
			{ID: "x", Source: SourceMessagePush, Type: "t", ReceivedAt: s, Data: json.RawMessage(` [1, {"b" : "c"}] `)},
		} {
			got := appendEvent(nil, &ev)
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid envelope for %q: %s", s, got)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(g)
			wb, _ := json.Marshal(w)
			if !bytes.Equal(gb, wb) {
				t.Errorf("string %q:\n got  %s\n want %s", s, got, want)
			}
		}
	}
}

func TestAppendEventAllocs(t *testing.T) {
	ev := &Event{ID: "EV-1", Source: SourceWeChatPayV3, Type: "TRANSACTION.SUCCESS", Merchant: "m", ReceivedAt: "2026-12-01T00:00:00Z", Data: json.RawMessage(`{"mchid":"1900000001"}`)}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = appendEvent(buf[:0], ev) }); n != 0 {
		t.Errorf("appendEvent allocates %.1f times", n)
	}
}

// TestReceivedAtFormatsEachSecondOnce: received_at is RFC 3339 in UTC whatever the clock's
// zone, the same text within a second, and the next second's text after it.
func TestReceivedAtFormatsEachSecondOnce(t *testing.T) {
	f := &forwarder{}
	shanghai := time.FixedZone("CST", 8*3600)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 12, 1, 8, 0, 0, 100, shanghai), "2026-12-01T00:00:00Z"},
		{time.Date(2026, 12, 1, 0, 0, 0, 999_999_999, time.UTC), "2026-12-01T00:00:00Z"},
		{time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC), "2026-12-01T00:00:01Z"},
		{time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), "2026-11-30T23:59:59Z"}, // a clock stepped back
	} {
		if got := f.receivedAt(c.at); got != c.want {
			t.Errorf("receivedAt(%v) = %s, want %s", c.at, got, c.want)
		}
	}
	now := time.Date(2026, 12, 1, 0, 0, 2, 0, time.UTC)
	f.receivedAt(now)
	if n := testing.AllocsPerRun(100, func() { f.receivedAt(now.Add(time.Millisecond)) }); n != 0 {
		t.Errorf("receivedAt within the same second allocates %.1f times", n)
	}
}

// TestEventSignatureAndIDAllocate: the X-Wxgate-Signature HMAC allocates nothing into a buffer
// with room, and a digest id only its string.
func TestEventSignatureAndIDAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items); CI also runs without -race")
	}
	h := newHMACSigner("forward-secret-0123456789")
	body := []byte(`{"id":"EV-1","source":"message_push","data":{}}`)
	var sig [96]byte
	out := h.AppendEventSignature(sig[:0], 1764547200, body)
	if n := testing.AllocsPerRun(200, func() { out = h.AppendEventSignature(sig[:0], 1764547200, body) }); n != 0 {
		t.Errorf("AppendEventSignature allocates %.1f times per call, want 0", n)
	}
	if !bytes.HasPrefix(out, []byte("t=1764547200,v1=")) || len(out) != len("t=1764547200,v1=")+64 {
		t.Errorf("signature header %s", out)
	}
	app, msg := []byte("wx00000000000000a1"), []byte(`{"Event":"xpay_coin_pay_notify"}`)
	id := digestID("push_", app, msg)
	if n := testing.AllocsPerRun(200, func() { id = digestID("push_", app, msg) }); n != 1 {
		t.Errorf("digestID allocates %.1f times per call, want 1 (its string)", n)
	}
	// The id must not change across wxgate versions: WeChat's retry of a message acknowledged
	// before an upgrade must find it by the same id. It is SHA-256 over each part and a zero byte.
	sum := sha256.Sum256([]byte("wx00000000000000a1\x00" + `{"Event":"xpay_coin_pay_notify"}` + "\x00"))
	if want := "push_" + hex.EncodeToString(sum[:16]); id != want {
		t.Errorf("digest id %s, want %s", id, want)
	}
	if id == digestID("push_", app, []byte(`{}`)) {
		t.Errorf("two messages share digest id %s", id)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	data := json.RawMessage(`{"mchid":"1900000001","appid":"wx00000000000000a1","out_trade_no":"O-1","transaction_id":"4200000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"ok","bank_type":"OTHERS","attach":"","success_time":"2026-12-01T00:00:00+08:00","payer":{"openid":"o1"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}`)
	ev := &Event{ID: "EV-1", Source: SourceWeChatPayV3, Type: "TRANSACTION.SUCCESS", Merchant: "m", ReceivedAt: "2026-12-01T00:00:00Z", Data: data}
	b.Run("appendEvent", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = appendEvent(buf[:0], ev)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}

// TestWritePushAnswerJSON: the hand-written JSON answer to WeChat decodes to the code and
// message given, whatever the message holds, and the usual one is exactly what WeChat expects.
func TestWritePushAnswerJSON(t *testing.T) {
	for _, c := range []struct {
		code int
		msg  string
	}{
		{0, "success"},
		{1, `not delivered yet: the app answered "HTTP 502"`},
		{1, "back\\slash, tab\t, newline\n, nul\x00, <tag> & 中文"},
		{-7, ""},
	} {
		var ctx fasthttp.RequestCtx
		writePushAnswer(&ctx, false, fasthttp.StatusOK, c.code, c.msg)
		var got struct {
			ErrCode int
			ErrMsg  string
		}
		if err := json.Unmarshal(ctx.Response.Body(), &got); err != nil || got.ErrCode != c.code || got.ErrMsg != c.msg {
			t.Errorf("answer %q decodes to %+v, %v; want code %d, message %q", ctx.Response.Body(), got, err, c.code, c.msg)
		}
		if ct := string(ctx.Response.Header.ContentType()); ct != "application/json; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
	}
	var ctx fasthttp.RequestCtx
	writePushAnswer(&ctx, false, fasthttp.StatusOK, 0, "success")
	if got := string(ctx.Response.Body()); got != `{"ErrCode":0,"ErrMsg":"success"}` {
		t.Errorf("success answer %s", got)
	}
}

// TestDigestID: the id is the prefix and the first 16 bytes of SHA-256 over the parts, each
// ended by a zero byte, in hex; moving a boundary between parts changes it.
func TestDigestID(t *testing.T) {
	sum := sha256.Sum256([]byte("wx123\x00<xml>msg</xml>\x00"))
	if got, want := digestID("push_", []byte("wx123"), []byte("<xml>msg</xml>")), "push_"+hex.EncodeToString(sum[:16]); got != want {
		t.Fatalf("digestID = %s, want %s", got, want)
	}
	if digestID("p_", []byte("ab"), []byte("c")) == digestID("p_", []byte("a"), []byte("bc")) {
		t.Fatal("the part boundary does not count")
	}
	if a, b := digestID("p_", []byte("x")), digestID("p_", []byte("x")); a != b {
		t.Fatalf("the same parts gave %s and %s", a, b)
	}
}
