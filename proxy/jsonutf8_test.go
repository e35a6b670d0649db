package proxy

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/wxgate/wxgate/signer"
)

// TestParamsJSONUTF8 pins that encoding/json repairs invalid UTF-8 in APIv2 params (keys and
// values) rather than passing it on.
func TestParamsJSONUTF8(t *testing.T) {
	got := paramsJSON([]signer.Param{{Key: "body", Value: "caf\xe9 \xff"}, {Key: "k\xfe", Value: "v"}, {Key: "sign", Value: "S"}})
	if !utf8.Valid(got) || !json.Valid(got) || !bytes.Contains(got, []byte(`"caf\ufffd \ufffd"`)) || !bytes.Contains(got, []byte(`"k\ufffd":"v"`)) {
		t.Fatalf("paramsJSON = %q", got)
	}
}

// TestPushXMLToJSONUTF8: a push XML document with invalid UTF-8 (which encoding/xml refuses)
// still converts, to valid UTF-8 JSON with U+FFFD in place of the bad bytes.
func TestPushXMLToJSONUTF8(t *testing.T) {
	cases := []struct{ in, want string }{
		{"<xml><Content>caf\xe9</Content></xml>", "caf\ufffd"},
		{"<xml><Content><![CDATA[a\xff\xfeb]]></Content></xml>", "a\ufffdb"},
		{"<xml><Content>\xe4\xb8\xad</Content></xml>", "\u4e2d"},
	}
	for _, c := range cases {
		out, err := pushXMLToJSON([]byte(c.in))
		if err != nil {
			t.Fatalf("pushXMLToJSON(%q): %v", c.in, err)
		}
		var m map[string]string
		if !utf8.Valid(out) || json.Unmarshal(out, &m) != nil || m["Content"] != c.want {
			t.Fatalf("pushXMLToJSON(%q) = %q, want Content %q", c.in, out, c.want)
		}
	}
}
