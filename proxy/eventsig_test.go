package proxy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestVerifyEventSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"EV-1","source":"wechatpay.v3"}`)
	h := string(newHMACSigner("forward-secret-0123456789").AppendEventSignature(nil, now.Unix(), body))
	if !strings.HasPrefix(h, "t=1800000000,v1=") || len(h) != len("t=1800000000,v1=")+64 {
		t.Fatalf("header layout: %s", h)
	}
	tests := []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		wantErr              string
	}{
		{"valid", "forward-secret-0123456789", h, body, now, ""},
		{"valid within tolerance", "forward-secret-0123456789", h, body, now.Add(299 * time.Second), ""},
		{"too old", "forward-secret-0123456789", h, body, now.Add(301 * time.Second), "timestamp"},
		{"wrong secret", "another-secret-0123456789", h, body, now, "does not match"},
		{"body changed", "forward-secret-0123456789", h, append([]byte(" "), body...), now, "does not match"},
		{"no v1", "forward-secret-0123456789", "t=1800000000", body, now, "malformed"},
		{"garbage", "forward-secret-0123456789", "nonsense", body, now, "malformed"},
		{"timestamp changed", "forward-secret-0123456789", strings.Replace(h, "t=1800000000", "t=1800000001", 1), body, now, "does not match"},
	}
	for _, tt := range tests {
		err := VerifyEventSignature(tt.secret, tt.header, tt.body, tt.now, DefaultEventTolerance)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestPushXMLToJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"flat with cdata", `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1714037059</CreateTime><Event><![CDATA[xpay_coin_pay_notify]]></Event></xml>`,
			`{"CreateTime":"1714037059","Event":"xpay_coin_pay_notify","ToUserName":"gh_1"}`},
		{"nested", `<xml><WeChatPayInfo><MchOrderNo>m1</MchOrderNo><TransactionId>t1</TransactionId></WeChatPayInfo></xml>`,
			`{"WeChatPayInfo":{"MchOrderNo":"m1","TransactionId":"t1"}}`},
		{"repeated", `<xml><item>1</item><item>2</item></xml>`, `{"item":["1","2"]}`},
	}
	for _, tt := range tests {
		got, err := pushXMLToJSON([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: %s %v, want %s", tt.name, got, err, tt.want)
		}
	}
	for _, bad := range []string{``, `<xml>`, `<!DOCTYPE x [<!ENTITY e "x">]><xml><a>&e;</a></xml>`, `<xml></xml><xml></xml>`, `text<xml/>`,
		`<?php x?><xml/>`, strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20)} {
		if _, err := pushXMLToJSON([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzPushXMLToJSON: any input either fails cleanly or yields a JSON object.
func FuzzPushXMLToJSON(f *testing.F) {
	for _, s := range []string{`<xml><a>1</a></xml>`, `<xml><a><b>x</b><b>y</b></a></xml>`, `<xml><![CDATA[x]]></xml>`, `<!DOCTYPE a><a/>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := pushXMLToJSON(in)
		if err == nil && (len(out) < 2 || out[0] != '{') {
			t.Fatalf("not a JSON object: %s", out)
		}
	})
}

// FuzzTopField: on a valid JSON object, topField returns exactly the value encoding/json reads
// for the first top-level member of that name, and finds nothing when no member has it. Names are
// compared as written: a name with escapes (e\u006ev) never matches (firstMember skips those).
func FuzzTopField(f *testing.F) {
	for _, s := range []string{`{"env":0,"openid":"o"}`, `{"a":{"env":1},"env":"x"}`, `{"s":"\"}","env":[1,{"x":"]"}]}`, `{"env":1,"env":2}`, `{"e\u006ev":3}`} {
		f.Add([]byte(s), "env")
	}
	f.Fuzz(func(t *testing.T, in []byte, name string) {
		if jsonObject(in) != nil || !utf8.Valid(in) { // encoding/json reads invalid UTF-8 as U+FFFD
			return
		}
		want, found := firstMember(t, in, name)
		raw, ok := topField(in, name)
		if ok != found {
			t.Fatalf("topField(%s, %q) found=%v, encoding/json found=%v", in, name, ok, found)
		}
		if ok && !bytes.Equal(compactJSON(t, raw), compactJSON(t, want)) {
			t.Fatalf("topField(%s, %q) = %s, encoding/json reads %s", in, name, raw, want)
		}
	})
}

// firstMember reads the first top-level member called name with encoding/json, skipping members
// whose name is written with escapes.
func firstMember(t *testing.T, in []byte, name string) (json.RawMessage, bool) {
	d := json.NewDecoder(bytes.NewReader(in))
	if _, err := d.Token(); err != nil { // {
		t.Fatalf("encoding/json rejects %s: %v", in, err)
	}
	for d.More() {
		start := d.InputOffset()
		k, err := d.Token()
		if err != nil {
			t.Fatalf("encoding/json rejects %s: %v", in, err)
		}
		escaped := bytes.IndexByte(in[start:d.InputOffset()], '\\') >= 0
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatalf("encoding/json rejects %s: %v", in, err)
		}
		if k.(string) == name && !escaped {
			return v, true
		}
	}
	return nil, false
}

// compactJSON is raw without insignificant whitespace.
func compactJSON(t *testing.T, raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	return b.Bytes()
}
