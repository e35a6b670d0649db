package signer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseXML(t *testing.T) {
	ok := []struct {
		name string
		in   string
		want []Param
	}{
		{"notify reply", `<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>`,
			[]Param{{"return_code", "SUCCESS"}, {"return_msg", "OK"}}},
		{"header, whitespace, numbers without CDATA", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <total_fee>1</total_fee>\n\t<appid><![CDATA[wx2421b1c4370ec43b]]></appid>\r\n</xml>\n",
			[]Param{{"total_fee", "1"}, {"appid", "wx2421b1c4370ec43b"}}},
		{"document order kept", `<xml><b>2</b><a>1</a></xml>`, []Param{{"b", "2"}, {"a", "1"}}},
		{"empty values", `<xml><a></a><b/><c><![CDATA[]]></c></xml>`, []Param{{"a", ""}, {"b", ""}, {"c", ""}}},
		{"text and CDATA mixed", `<xml><a>x<![CDATA[<y>]]>z</a></xml>`, []Param{{"a", "x<y>z"}}},
		{"predefined entities and char refs", `<xml><a>&lt;&amp;&gt;&quot;&apos;&#20013;&#x6587;</a></xml>`, []Param{{"a", `<&>"'中文`}}},
		{"split CDATA with ]]>", `<xml><a><![CDATA[x]]]]><![CDATA[>y]]></a></xml>`, []Param{{"a", "x]]>y"}}},
		{"value whitespace kept", `<xml><a> x </a></xml>`, []Param{{"a", " x "}}},
		{"raw CR normalised, &#13; kept", "<xml><a>1\r\n2\r3&#13;</a></xml>", []Param{{"a", "1\n2\n3\r"}}},
		{"attributes ignored", `<xml version="1"><a type="int">1</a></xml>`, []Param{{"a", "1"}}},
		{"refund req_info root", `<root><refund_fee>6</refund_fee></root>`, []Param{{"refund_fee", "6"}}},
		{"empty root", `<xml></xml>`, nil},
		{"whitespace before the header", "\n <?xml version=\"1.0\"?><xml><a>1</a></xml>", []Param{{"a", "1"}}},
		{"UTF-8", `<xml><body>腾讯充值中心-QQ会员充值</body></xml>`, []Param{{"body", "腾讯充值中心-QQ会员充值"}}},
	}
	for _, c := range ok {
		got, err := ParseXML([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}

	var many, tooMany strings.Builder
	many.WriteString("<xml>")
	for i := range 200 {
		fmt.Fprintf(&many, "<k%d>v</k%d>", i, i)
	}
	tooMany.WriteString(many.String() + "<k200>v</k200></xml>")
	many.WriteString("</xml>")
	if ps, err := ParseXML([]byte(many.String())); err != nil || len(ps) != 200 {
		t.Errorf("200 params: %d, %v", len(ps), err)
	}

	bad := []struct{ name, in string }{
		{"empty", ""},
		{"whitespace", " \n"},
		{"not XML", "return_code=SUCCESS"},
		{"JSON", `{"xml":{}}`},
		{"doctype", `<!DOCTYPE xml><xml><a>1</a></xml>`},
		{"XXE", `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>`},
		{"internal entity", `<!DOCTYPE xml [<!ENTITY e "v">]><xml><a>&e;</a></xml>`},
		{"undeclared entity", `<xml><a>&e;</a></xml>`},
		{"HTML entity", `<xml><a>&nbsp;</a></xml>`},
		{"billion laughs", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><a>&lol2;</a></xml>`},
		{"processing instruction", `<xml><?php echo 1 ?><a>1</a></xml>`},
		{"stylesheet PI", `<?xml-stylesheet href="x"?><xml><a>1</a></xml>`},
		{"header after the root", `<xml><a>1</a></xml><?xml version="1.0"?>`},
		{"two headers", `<?xml version="1.0"?><?xml version="1.0"?><xml/>`},
		{"non-UTF-8 encoding", `<?xml version="1.0" encoding="GBK"?><xml><a>1</a></xml>`},
		{"comment", `<xml><!-- c --><a>1</a></xml>`},
		{"comment in value", `<xml><a>1<!-- c -->2</a></xml>`},
		{"nested", `<xml><a><b>1</b></a></xml>`},
		{"nested in CDATA neighbour", `<xml><detail><![CDATA[x]]><goods>1</goods></detail></xml>`},
		{"duplicate", `<xml><a>1</a><a>2</a></xml>`},
		{"duplicate sign", `<xml><sign>A</sign><b>1</b><sign>B</sign></xml>`},
		{"wrong root", `<doc><a>1</a></doc>`},
		{"root with prefix", `<x:xml xmlns:x="urn:x"><a>1</a></x:xml>`},
		{"namespaced param", `<xml xmlns:x="urn:x"><x:a>1</x:a></xml>`},
		{"default namespace", `<xml xmlns="urn:x"><a>1</a></xml>`},
		{"text in root", `<xml>oops<a>1</a></xml>`},
		{"text before root", `oops<xml><a>1</a></xml>`},
		{"text after root", `<xml><a>1</a></xml>oops`},
		{"second root", `<xml><a>1</a></xml><xml><b>2</b></xml>`},
		{"unclosed root", `<xml><a>1</a>`},
		{"unclosed param", `<xml><a>1</xml>`},
		{"mismatched", `<xml><a>1</b></xml>`},
		{"bare param", `<a>1</a>`},
		{"NUL character ref", `<xml><a>&#0;</a></xml>`},
		{"raw NUL", "<xml><a>\x00</a></xml>"},
		{"invalid UTF-8", "<xml><a>\xff</a></xml>"},
		{"unterminated CDATA", `<xml><a><![CDATA[x</a></xml>`},
		{"BOM", "\ufeff<xml><a>1</a></xml>"},
		{"201 params", tooMany.String()},
	}
	for _, c := range bad {
		if got, err := ParseXML([]byte(c.in)); err == nil {
			t.Errorf("%s: accepted as %v", c.name, got)
		}
	}
}

func TestAppendXML(t *testing.T) {
	params := []Param{
		{"return_code", "SUCCESS"},
		{"total_fee", "1"},
		{"detail", `{"goods_detail":[{"goods_name":"<iPhone>"}]}`},
		{"tricky", "a]]>b]]>]]>c"},
		{"brackets", "]]"},
		{"gt", ">"},
		{"empty", ""},
		{"amp", "x &amp; y"},
		{"carriage_returns", "a\r\nb\rc]\r]>"},
	}
	got := string(AppendXML([]byte("pre:"), params))
	if !strings.HasPrefix(got, "pre:<xml><return_code><![CDATA[SUCCESS]]></return_code><total_fee><![CDATA[1]]></total_fee>") ||
		!strings.HasSuffix(got, "<amp><![CDATA[x &amp; y]]></amp><carriage_returns><![CDATA[a]]>&#13;<![CDATA[\nb]]>&#13;<![CDATA[c]]]>&#13;<![CDATA[]>]]></carriage_returns></xml>") {
		t.Fatalf("AppendXML = %s", got)
	}
	if !strings.Contains(got, "<tricky><![CDATA[a]]]]><![CDATA[>b]]]]><![CDATA[>]]]]><![CDATA[>c]]></tricky>") {
		t.Errorf("]]> not split: %s", got)
	}
	back, err := ParseXML([]byte(got[len("pre:"):]))
	if err != nil {
		t.Fatalf("ParseXML(AppendXML): %v", err)
	}
	if !slices.Equal(back, params) {
		t.Fatalf("round trip: got %v, want %v", back, params)
	}
	if got := string(AppendXML(nil, nil)); got != "<xml></xml>" {
		t.Errorf("no params: %s", got)
	}
}

func TestParamValue(t *testing.T) {
	ps := []Param{{"a", "1"}, {"b", ""}, {"a", "2"}}
	if v, ok := ParamValue(ps, "a"); !ok || v != "1" {
		t.Errorf("a = %q, %v", v, ok)
	}
	if v, ok := ParamValue(ps, "b"); !ok || v != "" {
		t.Errorf("b = %q, %v", v, ok)
	}
	if _, ok := ParamValue(ps, "c"); ok {
		t.Error("c found")
	}
}
