package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"EV-1","source":"wechatpay.v3"}`)
	h := NewSigner("forward-secret-0123456789").Signature(now.Unix(), body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") || len(h) != len("t=1800000000,v1=")+64 {
		t.Fatalf("header layout: %s", h)
	}
	other := NewSigner("older-secret-0123456789").Signature(now.Unix(), body)
	tests := []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		wantErr              string
	}{
		{"valid", "forward-secret-0123456789", h, body, now, ""},
		{"valid within tolerance", "forward-secret-0123456789", h, body, now.Add(299 * time.Second), ""},
		{"valid at the tolerance", "forward-secret-0123456789", h, body, now.Add(DefaultTolerance), ""},
		{"valid at the tolerance ahead", "forward-secret-0123456789", h, body, now.Add(-DefaultTolerance), ""},
		{"a second past the tolerance", "forward-secret-0123456789", h, body, now.Add(DefaultTolerance + time.Second), "timestamp"},
		{"valid in the future within tolerance", "forward-secret-0123456789", h, body, now.Add(-299 * time.Second), ""},
		{"too old", "forward-secret-0123456789", h, body, now.Add(301 * time.Second), "timestamp"},
		{"too new", "forward-secret-0123456789", h, body, now.Add(-301 * time.Second), "timestamp"},
		{"wrong secret", "another-secret-0123456789", h, body, now, "does not match"},
		{"one of two v1 (a rotation)", "forward-secret-0123456789", other + ",v1=" + strings.SplitN(h, "v1=", 2)[1], body, now, ""},
		{"body changed", "forward-secret-0123456789", h, append([]byte(" "), body...), now, "does not match"},
		{"no v1", "forward-secret-0123456789", "t=1800000000", body, now, "malformed"},
		{"no t", "forward-secret-0123456789", "v1=" + strings.SplitN(h, "v1=", 2)[1], body, now, "malformed"},
		{"garbage", "forward-secret-0123456789", "nonsense", body, now, "malformed"},
		{"timestamp changed", "forward-secret-0123456789", strings.Replace(h, "t=1800000000", "t=1800000001", 1), body, now, "does not match"},
	}
	for _, tt := range tests {
		err := Verify(tt.secret, tt.header, tt.body, tt.now, DefaultTolerance)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// FuzzVerify: header parsing never panics, and nothing but the right HMAC verifies.
func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,v1=00", []byte("{}"))
	f.Add("t=,v1=", []byte(""))
	f.Add("v1=aa,t=1800000000,v1=bb", []byte("x"))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		// A header can only verify by carrying a full 64-hex-digit HMAC.
		if Verify("fuzz-secret-0123456789", header, body, now, DefaultTolerance) == nil && len(header) < 64 {
			t.Fatalf("header %q verified without a full HMAC", header)
		}
	})
}

// TestMarshal: the envelope decodes to the event it encodes, for awkward strings too, leaves out
// an empty app and merchant, and does not HTML-escape.
func TestMarshal(t *testing.T) {
	awkward := []string{
		"", "plain", `quote " backslash \ slash /`, "tab\tnewline\nreturn\r", "\x00\x01\x1f\x7f",
		"<html>&amp;", "中文 émoji 😀", "line\u2028para\u2029",
	}
	for _, s := range awkward {
		ev := Event{ID: s, Source: SourceWeChatPayV3, Type: s, App: s, Merchant: "m", ReceivedAt: "2026-12-01T00:00:00Z", Data: json.RawMessage(`{"a":"<b>"}`)}
		out, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		back.Data, ev.Data = nil, nil
		if !reflect.DeepEqual(back, ev) {
			t.Errorf("round trip of %q: %+v", s, back)
		}
		if strings.Contains(string(out), `\u003c`) {
			t.Errorf("HTML-escaped: %s", out)
		}
	}
	out, _ := (&Event{ID: "x", Source: SourceMessagePush, Type: "t", ReceivedAt: "r", Data: json.RawMessage(`[1]`)}).Marshal()
	if string(out) != `{"id":"x","source":"message_push","type":"t","received_at":"r","data":[1]}` {
		t.Errorf("envelope %s", out)
	}
	if _, err := (&Event{ID: "bad", Data: json.RawMessage(`{`)}).Marshal(); err == nil {
		t.Error("data that is not JSON encoded")
	}
}
