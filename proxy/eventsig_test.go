package proxy

import (
	"strings"
	"testing"
)

func TestPushXMLToJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"flat with cdata", `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1714037059</CreateTime><Event><![CDATA[xpay_coin_pay_notify]]></Event></xml>`,
			`{"CreateTime":"1714037059","Event":"xpay_coin_pay_notify","ToUserName":"gh_1"}`},
		{"nested", `<xml><WeChatPayInfo><MchOrderNo>m1</MchOrderNo><TransactionId>t1</TransactionId></WeChatPayInfo></xml>`,
			`{"WeChatPayInfo":{"MchOrderNo":"m1","TransactionId":"t1"}}`},
		{"repeated", `<xml><item>1</item><item>2</item></xml>`, `{"item":["1","2"]}`},
		{"whitespace around the root", "<?xml version=\"1.0\"?>\n <xml><a>1</a></xml>\r\n", `{"a":"1"}`},
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
