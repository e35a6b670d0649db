package proxy

import (
	"strings"
	"testing"
)

// TestJSONToPushXML: the XML form of an app's JSON reply, for XML pushes: members sorted,
// strings in CDATA (a "]]>" inside split), numbers and booleans as text, objects nested, arrays
// repeated; names that are no XML element names and too deep nesting are refused.
func TestJSONToPushXML(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{`{"result_code":1,"evidence":"a]]>b","ok":true,"none":null}`,
			`<xml><evidence><![CDATA[a]]]]><![CDATA[>b]]></evidence><none></none><ok>true</ok><result_code>1</result_code></xml>`, ""},
		{`{"info":{"b":"x","a":2.5},"items":[1,"two"]}`,
			`<xml><info><a>2.5</a><b><![CDATA[x]]></b></info><items>1</items><items><![CDATA[two]]></items></xml>`, ""},
		{`{"bad name":1}`, "", "no XML element name"},
		{`{"<x>":1}`, "", "no XML element name"},
		{`{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}}}}`, "", "too deeply"},
		{`[1]`, "", "not a JSON object"},
	} {
		got, err := jsonToPushXML([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %s, %v; want an error naming %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s:\n got %s, %v\nwant %s", c.in, got, err, c.want)
		}
	}
}
