package jsonscan

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// jsonCases are documents with the verdict encoding/json.Valid gives them; TestValidJSON checks
// that both validators agree on each, so a wrong expectation here fails too.
var jsonCases = []struct {
	doc  string
	want bool
}{
	{`{}`, true},
	{` { } `, true},
	{`[]`, true},
	{`{"a":1}`, true},
	{`{"a" : [1, 2.5, -0.1e+3, 1E9, true, false, null, "x", {}, []]}`, true},
	{`"plain"`, true},
	{`0`, true},
	{`-0`, true},
	{`{"esc":"\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00"}`, true},
	{"{\"utf8\":\"\xe4\xb8\xad\xe6\x96\x87\"}", true},
	{"{\"bad-utf8\":\"\xff\xfe\"}", true}, // encoding/json does not check UTF-8 either
	{`{"a":{"b":{"c":[[[{"d":"e"}]]]}}}`, true},
	{"\t\r\n{\"a\":1}\n", true},
	{``, false},
	{` `, false},
	{`{`, false},
	{`}`, false},
	{`{"a":1,}`, false},
	{`[1,]`, false},
	{`[1 2]`, false},
	{`{"a" 1}`, false},
	{`{"a":1 "b":2}`, false},
	{`{a:1}`, false},
	{`{'a':1}`, false},
	{`{"a":01}`, false},
	{`{"a":1.}`, false},
	{`{"a":.5}`, false},
	{`{"a":1e}`, false},
	{`{"a":+1}`, false},
	{`{"a":-}`, false},
	{`{"a":tru}`, false},
	{`{"a":nul}`, false},
	{`{"a":True}`, false},
	{`{"a":"unterminated}`, false},
	{`{"a":"bad escape \x"}`, false},
	{`{"a":"short \u12"}`, false},
	{`{"a":"hex \u12G4"}`, false},
	{"{\"a\":\"control \x01\"}", false},
	{"{\"a\":\"newline \n\"}", false},
	{`{"a":1}}`, false},
	{`{"a":1} {"b":2}`, false},
	{`{"a":[1}`, false},
	{`{"a":{1:2}}`, false},
	{`[}`, false},
	{`{]`, false},
	{`{"a":"x\`, false},
	{`{"a":"\`, false},
	{`"\uaAfF"`, true}, // each end of the hex letter ranges
	{`[9,90,-9.9e9]`, true},
	{`{1}`, false},   // a member without a key: its value must not be read as the member
	{`{"a"}`, false}, // a key without its value
	{`{"a" }`, false},
	{"\"\n", false}, // a control character that is also whitespace, then nothing
	{"\" \t", false},
	{"[\"\r]", false},
}

func TestValidJSON(t *testing.T) {
	for _, c := range jsonCases {
		if std := json.Valid([]byte(c.doc)); std != c.want {
			t.Fatalf("case %q: encoding/json says %v, the table %v", c.doc, std, c.want)
		}
		if got := Valid([]byte(c.doc)); got != c.want {
			t.Errorf("Valid(%q) = %v, want %v", c.doc, got, c.want)
		}
	}
}

func TestValidJSONDepth(t *testing.T) {
	deep := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	if !Valid(deep(maxJSONDepth)) {
		t.Errorf("%d nested arrays refused", maxJSONDepth)
	}
	if Valid(deep(maxJSONDepth + 1)) {
		t.Errorf("%d nested arrays accepted past the bound", maxJSONDepth+1)
	}
	// Objects and arrays alternate across the 64-bit words of the container stack.
	var b bytes.Buffer
	for i := 0; i < 200; i++ {
		if i%3 == 0 {
			b.WriteString(`{"k":`)
		} else {
			b.WriteString(`[`)
		}
	}
	b.WriteString(`0`)
	for i := 199; i >= 0; i-- {
		if i%3 == 0 {
			b.WriteString(`}`)
		} else {
			b.WriteString(`]`)
		}
	}
	if !Valid(b.Bytes()) || !json.Valid(b.Bytes()) {
		t.Errorf("mixed nesting refused")
	}
	wrong := bytes.Replace(b.Bytes(), []byte("]}"), []byte("}}"), 1)
	if Valid(wrong) || json.Valid(wrong) {
		t.Errorf("mismatched closer accepted")
	}
}

func TestSkipStringEscapes(t *testing.T) {
	for _, c := range []struct {
		doc, want string
	}{
		{`{"a":"x\"y","b":"v"}`, `"v"`},
		{`{"a":"x\\","b":"v"}`, `"v"`},
		{`{"a":"x\\\"\\","b":"v"}`, `"v"`},
		{`{"a":"\"","b":"v"}`, `"v"`},
		{`{"a":"","b":"v"}`, `"v"`},
	} {
		got, ok := TopField([]byte(c.doc), "b")
		if !ok || string(got) != c.want {
			t.Errorf("TopField(%s, b) = %q, %v; want %s", c.doc, got, ok, c.want)
		}
	}
}

func TestValidJSONAllocs(t *testing.T) {
	doc := []byte(`{"openid":"o1","env":0,"user_ip":"127.0.0.1","amount":10,"order_id":"O-1","payitem":"x","remark":"` + strings.Repeat("r", 1024) + `"}`)
	if n := testing.AllocsPerRun(100, func() { Valid(doc) }); n != 0 {
		t.Errorf("Valid allocates %.1f times", n)
	}
}

// FuzzValidJSON: Valid agrees with encoding/json.Valid on every input within the depth bound.
func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c.doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) >= maxJSONDepth {
			return
		}
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	for _, size := range []int{256, 4 << 10, 64 << 10} {
		doc := []byte(`{"openid":"o1","env":0,"user_ip":"127.0.0.1","amount":10,"order_id":"O-1","payitem":"[{\"productid\":\"p\",\"unit_price\":1,\"quantity\":1}]","remark":"` +
			strings.Repeat("r", size-150) + `"}`)
		b.Run("wxgate/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				Valid(doc)
			}
		})
		b.Run("encoding_json/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				json.Valid(doc)
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return strconv.Itoa(n>>10) + "KB"
	}
	return strconv.Itoa(n) + "B"
}

// TestSmallInt: integers of up to 18 digits parse; longer ones are refused instead of wrapping
// around (9999999999999999999 used to give a negative number).
func TestSmallInt(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"-1", -1, true},
		{"40001", 40001, true},
		{"999999999999999999", 999999999999999999, true},
		{"-999999999999999999", -999999999999999999, true},
		{"9999999999999999999", 0, false},
		{"-9999999999999999999", 0, false},
		{"1000000000000000000", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{`"1"`, 0, false},
	} {
		got, ok := SmallInt([]byte(tc.raw))
		if got != tc.want || ok != tc.ok {
			t.Errorf("SmallInt(%q) = %d, %v; want %d, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

// TestValidAgreesOnEveryCut: on every prefix of a set of documents, and on each document with one
// byte removed or doubled, Valid gives encoding/json.Valid's verdict (and never panics): the
// validator's bounds checks and error returns are exercised at every position.
func TestValidAgreesOnEveryCut(t *testing.T) {
	docs := []string{
		`{"a":[1,-2.5e+3,0.0,true,false,null,"s\"\\\/\b\f\n\r\tu\u00e9"],"b":{"c":{}},"d":[]}`,
		` [ "x" , { "k" : -0 } , 1E5 , 12.34e-2 ] `,
		`"\ud83d\ude00 plain ascii longer than four bytes"`,
		`{"k":"` + strings.Repeat("abcd", 9) + `"}`,
		`-1`, `0`, `123`, `true`,
	}
	for _, d := range docs {
		if !Valid([]byte(d)) {
			t.Fatalf("the document itself is refused: %s", d)
		}
		var variants []string
		for k := 0; k <= len(d); k++ {
			variants = append(variants, d[:k])
			if k < len(d) {
				variants = append(variants, d[:k]+d[k+1:], d[:k+1]+d[k:])
			}
		}
		for _, v := range variants {
			if got, want := Valid([]byte(v)), json.Valid([]byte(v)); got != want {
				t.Errorf("Valid(%q) = %v, encoding/json says %v", v, got, want)
			}
		}
	}
}
