package proxy

import (
	"bytes"
	"encoding/json"
	"testing"
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
