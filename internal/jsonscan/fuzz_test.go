package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzTopField: on a valid JSON object, TopField returns exactly the value encoding/json reads
// for the first top-level member of that name, and finds nothing when no member has it. Names are
// compared as written: a name with escapes (e\u006ev) never matches (firstMember skips those).
func FuzzTopField(f *testing.F) {
	for _, s := range []string{`{"env":0,"openid":"o"}`, `{"a":{"env":1},"env":"x"}`, `{"s":"\"}","env":[1,{"x":"]"}]}`, `{"env":1,"env":2}`, `{"e\u006ev":3}`} {
		f.Add([]byte(s), "env")
	}
	f.Fuzz(func(t *testing.T, in []byte, name string) {
		if Object(in) != nil || !utf8.Valid(in) { // encoding/json reads invalid UTF-8 as U+FFFD
			return
		}
		want, found := firstMember(t, in, name)
		raw, ok := TopField(in, name)
		if ok != found {
			t.Fatalf("TopField(%s, %q) found=%v, encoding/json found=%v", in, name, ok, found)
		}
		if ok && !bytes.Equal(compactJSON(t, raw), compactJSON(t, want)) {
			t.Fatalf("TopField(%s, %q) = %s, encoding/json reads %s", in, name, raw, want)
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
