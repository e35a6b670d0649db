package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

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
