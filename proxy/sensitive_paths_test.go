package proxy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
)

// TestParseFieldPaths: the header syntax, and every malformed header refused with its reason.
func TestParseFieldPaths(t *testing.T) {
	var paths32 []string
	for i := 0; i < 32; i++ {
		paths32 = append(paths32, "f"+strings.Repeat("x", i))
	}
	good := []struct {
		in   string
		want []string // each path's segments, "[]" marking arrays
	}{
		{"user_name", []string{"user_name"}},
		{" user_name , receivers[].name ", []string{"user_name", "receivers[]/name"}},
		{"a.b.c,x[].y[].z", []string{"a/b/c", "x[]/y[]/z"}},
		{"payer-phone", []string{"payer-phone"}},
		// The limits, at the limit: 8 members deep, 32 paths, 1024 bytes.
		{"a.b.c.d.e.f.g.h", []string{"a/b/c/d/e/f/g/h"}},
		{strings.Join(paths32, ","), paths32},
		{strings.Repeat("n", 1024), []string{strings.Repeat("n", 1024)}},
	}
	for _, tt := range good {
		ps, err := parseFieldPaths(HeaderEncrypt, []byte(tt.in))
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		var got []string
		for _, p := range ps {
			var segs []string
			for _, s := range p.segs {
				if s.each {
					s.name += "[]"
				}
				segs = append(segs, s.name)
			}
			got = append(got, strings.Join(segs, "/"))
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%q parsed as %v, want %v", tt.in, got, tt.want)
		}
	}
	bad := map[string]string{
		"":                         "empty path",
		"user_name,":               "empty path",
		"a..b":                     "not valid",
		".a":                       "not valid",
		"a[0].b":                   "not valid",
		"a[]]":                     "not valid",
		"$.user_name":              "not valid",
		"user name":                "not valid",
		"a,a":                      "twice",
		"a.b.c.d.e.f.g.h.i":        "deep",
		strings.Repeat("a,", 1000): "bytes long",
		strings.Repeat("n", 1025):  "bytes long",
	}
	var many []string
	for i := 0; i < 33; i++ {
		many = append(many, "f"+strings.Repeat("x", i))
	}
	bad[strings.Join(many, ",")] = "more than 32"
	for in, want := range bad {
		if _, err := parseFieldPaths(HeaderEncrypt, []byte(in)); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), HeaderEncrypt) {
			t.Errorf("%.40q: error %v, want one containing %q and the header name", in, err, want)
		}
	}
}

// TestFindAndReplaceFields: the values found, in document order, with their concrete positions;
// replacement keeps every other byte; strict and lenient handling of absent, null and mistyped
// members.
func TestFindAndReplaceFields(t *testing.T) {
	doc := []byte(`{ "user_name" : "张三", "n":1, "receivers":[ {"name":"a\"b","x":[1,{"name":"no"}]}, {"name":"c"} ],"nested":{"deep":{"v":"d"}},"empty":[],"nul":null,"num":7,"obj":{}}`)
	paths := func(s string) []fieldPath {
		ps, err := parseFieldPaths(HeaderEncrypt, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	hits, err := findFields(doc, paths("nested.deep.v, receivers[].name, user_name, empty[].name"), true)
	if err != nil {
		t.Fatal(err)
	}
	var where []string
	for _, h := range hits {
		where = append(where, h.where)
	}
	if got := strings.Join(where, ","); got != "user_name,receivers[0].name,receivers[1].name,nested.deep.v" {
		t.Fatalf("hits %s", got)
	}
	out, err := replaceFields(doc, hits, func(h fieldHit, v string) ([]byte, error) {
		return jsonscan.AppendString(nil, "<"+v+">"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(`"张三"`, `"<张三>"`, `"a\"b"`, `"<a\"b>"`, `{"name":"c"}`, `{"name":"<c>"}`, `"v":"d"`, `"v":"<d>"`).Replace(string(doc))
	if string(out) != want {
		t.Fatalf("replaced:\n%s\nwant\n%s", out, want)
	}

	for _, tt := range []struct {
		path, where string
		strictErr   error // nil: no error in strict mode
		lenientErr  error
	}{
		{"missing", "missing", errFieldMissing, nil},
		{"nested.none", "nested.none", errFieldMissing, nil},
		{"nul", "nul", errFieldNotString, nil},
		{"num", "num", errFieldNotString, errFieldNotString},
		{"obj", "obj", errFieldNotString, errFieldNotString},
		{"receivers[].x", "receivers[0].x", errFieldNotString, errFieldNotString},
		{"user_name.x", "user_name", errors.New("object"), errors.New("object")},
		{"user_name[].x", "user_name", errors.New("array"), errors.New("array")},
		{"receivers[].zzz", "receivers[0].zzz", errFieldMissing, nil},
	} {
		for _, strict := range []bool{true, false} {
			want := tt.lenientErr
			if strict {
				want = tt.strictErr
			}
			_, err := findFields(doc, paths(tt.path), strict)
			switch {
			case want == nil && err != nil:
				t.Errorf("%s strict=%v: %v", tt.path, strict, err)
			case want != nil && err == nil:
				t.Errorf("%s strict=%v: no error, want %v", tt.path, strict, want)
			case want != nil && !errors.Is(err, want) && !strings.Contains(err.Error(), want.Error()):
				t.Errorf("%s strict=%v: %v, want %v", tt.path, strict, err, want)
			case want != nil && !strings.HasPrefix(err.Error(), tt.where+" "):
				t.Errorf("%s strict=%v: %q does not name %s", tt.path, strict, err, tt.where)
			}
		}
	}
}

// TestPrepareSensitiveFastPathAllocatesNothing: an APIv3 call without X-Wxgate-Encrypt,
// X-Wxgate-Decrypt or Wechatpay-Serial pays nothing for the feature.
func TestPrepareSensitiveFastPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race; CI also runs without -race")
	}
	g := merchantGateway(t)
	t.Cleanup(g.Close)
	gen := g.current()
	m := gen.merchants["pk"]
	body := []byte(`{"mchid":"1900000001"}`)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	n := testing.AllocsPerRun(100, func() {
		sc, aerr := gen.prepareSensitive(&ctx, m, "POST", body)
		if aerr != nil || &sc.body[0] != &body[0] || sc.serial != nil || sc.decrypt != nil {
			t.Fatal("the fast path changed the call")
		}
	})
	if n != 0 {
		t.Fatalf("prepareSensitive without the headers: %.1f allocations, want 0", n)
	}
}

// FuzzFieldPaths: on any valid JSON object and any header, finding fields never panics, every
// hit is a whole JSON string token, and replacing each value by itself re-encoded decodes to the
// same document (nothing outside the values moves).
func FuzzFieldPaths(f *testing.F) {
	for _, s := range []struct{ doc, paths string }{
		{`{"user_name":"张三","receivers":[{"name":"a"},{"name":"b\"c"}]}`, "user_name,receivers[].name"},
		{`{"a":{"b":[{"c":"x"},{"c":1}]}}`, "a.b[].c"},
		{`{"user\u005fname":"x","user_name":"y"}`, "user_name"},
		{` { "a" : [ ] , "b" : null } `, "a[].x,b"},
		{`{"a":[[1],[2]]}`, "a[].b"},
	} {
		f.Add([]byte(s.doc), s.paths)
	}
	f.Fuzz(func(t *testing.T, doc []byte, header string) {
		if jsonscan.Object(doc) != nil {
			return
		}
		paths, err := parseFieldPaths(HeaderDecrypt, []byte(header))
		if err != nil {
			return
		}
		for _, strict := range []bool{true, false} {
			hits, err := findFields(doc, paths, strict)
			if err != nil {
				continue
			}
			for _, h := range hits {
				if doc[h.start] != '"' || doc[h.end-1] != '"' || h.end-h.start < 2 {
					t.Fatalf("hit %s [%d,%d) is not a string token in %s", h.where, h.start, h.end, doc)
				}
			}
			out, err := replaceFields(doc, hits, func(_ fieldHit, v string) ([]byte, error) { return jsonscan.AppendString(nil, v), nil })
			if err != nil {
				t.Fatalf("replace: %v", err)
			}
			var a, b any
			if json.Unmarshal(doc, &a) != nil || json.Unmarshal(out, &b) != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("re-encoding the values changed the document:\n%s\n%s", doc, out)
			}
		}
	})
}

// TestValidSerial: the Wechatpay-Serial an app may send is a serial or public key id: letters,
// digits, _ and -, 1 to 64 bytes.
func TestValidSerial(t *testing.T) {
	for in, want := range map[string]bool{
		"PUB_KEY_ID_0112":                          true,
		"5157F09EFDC096DE15EBE81A47057A7232F1B8E1": true,
		strings.Repeat("A", 64):                    true,
		strings.Repeat("A", 65):                    false,
		"":                                         false,
		"PUB.KEY":                                  false,
		"PUB KEY":                                  false,
		"PUB/KEY":                                  false,
	} {
		if got := validSerial([]byte(in)); got != want {
			t.Errorf("validSerial(%q) = %v, want %v", in, got, want)
		}
	}
}
