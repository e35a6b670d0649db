package proxy

import (
	"strings"
	"testing"
	"time"
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
