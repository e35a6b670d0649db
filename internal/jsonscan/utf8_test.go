package jsonscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestValidUTF8JSON: invalid UTF-8 and unpaired surrogate escapes become \ufffd; everything
// else, valid pairs and escaped backslashes included, is left byte for byte.
func TestValidUTF8JSON(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"ascii", `{"a":"b"}`, `{"a":"b"}`},
		{"utf8", "{\"a\":\"\xe4\xb8\xad\xe6\x96\x87 \U0001F600\"}", "{\"a\":\"\xe4\xb8\xad\xe6\x96\x87 \U0001F600\"}"},
		{"escapes", `{"a":"\" \\ \/ \n \u00e9 \uD83D\uDE00 \ud83d\ude00"}`, `{"a":"\" \\ \/ \n \u00e9 \uD83D\uDE00 \ud83d\ude00"}`},
		{"one bad byte", "{\"a\":\"x\xffy\"}", `{"a":"x\ufffdy"}`},
		{"each bad byte", "{\"a\":\"\xff\xfe\"}", `{"a":"\ufffd\ufffd"}`},
		{"truncated sequence", "{\"a\":\"\xe4\xb8\"}", `{"a":"\ufffd\ufffd"}`},
		{"encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}", `{"a":"\ufffd\ufffd\ufffd"}`},
		{"overlong", "{\"a\":\"\xc0\xaf\"}", `{"a":"\ufffd\ufffd"}`},
		{"bad byte in a key", "{\"k\xff\":1}", `{"k\ufffd":1}`},
		{"lone high", `{"a":"\ud800"}`, `{"a":"\ufffd"}`},
		{"lone low", `{"a":"\uDC00x"}`, `{"a":"\ufffdx"}`},
		{"high then letter", `{"a":"\ud800\u0041"}`, `{"a":"\ufffd\u0041"}`},
		{"high then U+E000", `{"a":"\ud800\ue000"}`, `{"a":"\ufffd\ue000"}`},
		{"high then last low", `{"a":"\udbff\udfff"}`, `{"a":"\udbff\udfff"}`},
		{"high high low", `{"a":"\ud800\ud800\udc00"}`, `{"a":"\ufffd\ud800\udc00"}`},
		{"low high", `{"a":"\udc00\ud800"}`, `{"a":"\ufffd\ufffd"}`},
		{"low low", `{"a":"\udc00\udc00"}`, `{"a":"\ufffd\ufffd"}`},
		{"lone highs, every hex letter", `["\ud9af","\uD9AF"]`, `["\ufffd","\ufffd"]`},
		{"high at the end", `["\ud800"]`, `["\ufffd"]`},
		{"escaped backslash then u", `{"a":"\\ud800"}`, `{"a":"\\ud800"}`},
		{"nested", "{\"a\":[{\"b\":\"\xff\"}]}", `{"a":[{"b":"\ufffd"}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			got := RepairUTF8(in)
			if string(got) != c.want {
				t.Fatalf("RepairUTF8(%q) = %q, want %q", c.in, got, c.want)
			}
			if c.in == c.want && &got[0] != &in[0] {
				t.Error("a valid document was copied")
			}
			checkRepaired(t, in, got)
		})
	}
}

// checkRepaired checks the repair of the valid JSON in: out is valid JSON and UTF-8, holds no
// unpaired surrogate escape, and encoding/json reads it exactly as it reads in.
func checkRepaired(t *testing.T, in, out []byte) {
	t.Helper()
	if !utf8.Valid(out) || !json.Valid(out) {
		t.Fatalf("repair of %q is not valid UTF-8 JSON: %q", in, out)
	}
	if again := RepairUTF8(out); !bytes.Equal(again, out) {
		t.Fatalf("repair of %q is not stable: %q then %q", in, out, again)
	}
	a, b := decodeNumbers(t, in), decodeNumbers(t, out)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("encoding/json reads %q as %v but its repair %q as %v", in, a, out, b)
	}
}

// decodeNumbers decodes doc with numbers kept as text (any size).
func decodeNumbers(t *testing.T, doc []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", doc, err)
	}
	return v
}

// TestValidUTF8JSONProperty: random strings of bytes and escapes, as keys and values, always
// repair to valid UTF-8 JSON that encoding/json reads as it reads the original.
func TestValidUTF8JSONProperty(t *testing.T) {
	pieces := []string{"a", "\xff", "\xe4", "\xe4\xb8", "\xe4\xb8\xad", "\xed\xa0\x80", "\xf0\x9f\x98\x80", `\\`, `\"`, `\n`, `\u0041`,
		`\ud83d`, `\ude00`, `\uD83D\uDE00`, `\udbff\udfff`, `\\u`, "\x80", "é"}
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return `"` + b.String() + `"`
	}
	for range 5000 {
		doc := []byte(`{` + str() + `:[` + str() + `,{"k":` + str() + `}],"n":1}`)
		if !json.Valid(doc) {
			t.Fatalf("bad test document %q", doc)
		}
		checkRepaired(t, doc, RepairUTF8(doc))
	}
}

// TestUniqueTopFields: names are compared as parsers read them; a top-level duplicate is
// refused, a nested one is not.
func TestUniqueTopFields(t *testing.T) {
	names := []string{"mchid", "appid"}
	cases := []struct {
		name, doc string
		mchid     string // the raw value read for mchid
		err       bool
	}{
		{"plain", `{"mchid":"1","appid":"a"}`, `"1"`, false},
		{"absent", `{"x":1}`, ``, false},
		{"escaped name", `{"mch\u0069d":"2"}`, `"2"`, false},
		{"other case", `{"MchId":"3"}`, `"3"`, false},
		{"nested duplicate", `{"mchid":"1","amount":{"total":1,"total":2}}`, `"1"`, false},
		{"duplicate", `{"mchid":"1","x":0,"mchid":"2"}`, ``, true},
		{"duplicate via escape", `{"mchid":"1","mch\u0069d":"2"}`, ``, true},
		{"duplicate by case", `{"mchid":"1","MCHID":"2"}`, ``, true},
		{"duplicate by Kelvin sign", `{"k":"1","` + "\u212a" + `":"2"}`, ``, true},
		{"duplicate of an unread member", `{"mchid":"1","out_trade_no":"a","out_trade_no":"b"}`, ``, true},
		{"not an object", `[1]`, ``, true},
		{"empty", ``, ``, true},
		{"only space", " \t", ``, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var vals [2][]byte
			err := UniqueTopFields([]byte(c.doc), names, vals[:])
			if (err != nil) != c.err || !c.err && string(vals[0]) != c.mchid {
				t.Fatalf("UniqueTopFields(%s) = %q, %v", c.doc, vals[0], err)
			}
		})
	}
}

// TestDuplicateNameShortened: the name a duplicate error echoes is cut after 40 bytes.
func TestDuplicateNameShortened(t *testing.T) {
	for _, tc := range []struct{ name, echoed string }{
		{strings.Repeat("n", 39), strings.Repeat("n", 39)},
		{strings.Repeat("n", 40), strings.Repeat("n", 40)},
		{strings.Repeat("n", 41), strings.Repeat("n", 40) + "..."},
		{strings.Repeat("n", 500), strings.Repeat("n", 40) + "..."},
	} {
		doc := `{"` + tc.name + `":1,"` + tc.name + `":2}`
		var vals [1][]byte
		err := UniqueTopFields([]byte(doc), []string{"x"}, vals[:])
		want := `member "` + tc.echoed + `" occurs twice (names compared ignoring case)`
		if err == nil || err.Error() != want {
			t.Errorf("a %d-byte name twice: %v, want %s", len(tc.name), err, want)
		}
	}
}

// FuzzValidUTF8JSON: any valid JSON repairs as checkRepaired requires, and UniqueTopFields
// never fails to end on it.
func FuzzValidUTF8JSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, "{\"a\":\"\xff\"}", `{"a":"\ud800\udc00 \udc00"}`, `[{"k":1,"K":2}]`, `"\\u"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		out := RepairUTF8(doc)
		checkRepaired(t, doc, out)
		var val [1][]byte
		_ = UniqueTopFields(out, []string{"a"}, val[:])
	})
}

// TestUniqueTopFieldsManyMembers: past the members compared pairwise (uniqueSmall) duplicates are
// still found, whether the first copy came before the switch to a map or after it.
func TestUniqueTopFieldsManyMembers(t *testing.T) {
	doc := func(n int, extra string) []byte {
		var b strings.Builder
		b.WriteString(`{"mchid":"1"`)
		for k := range n {
			fmt.Fprintf(&b, `,"m%d":%d`, k, k)
		}
		b.WriteString(extra + "}")
		return []byte(b.String())
	}
	for _, n := range []int{uniqueSmall - 2, uniqueSmall - 1, uniqueSmall, uniqueSmall + 5, 4 * uniqueSmall} {
		var vals [1][]byte
		if err := UniqueTopFields(doc(n, ""), []string{"mchid"}, vals[:]); err != nil || string(vals[0]) != `"1"` {
			t.Fatalf("%d members, no duplicate: %q, %v", n+1, vals[0], err)
		}
		for _, extra := range []string{`,"MCHID":"2"`, fmt.Sprintf(`,"M%d":0`, n-1), `,"m0":0`} {
			if err := UniqueTopFields(doc(n, extra), []string{"mchid"}, vals[:]); err == nil {
				t.Errorf("%d members then %s: no error", n+1, extra)
			}
		}
	}
}

// TestUniqueTopFieldsAllocatesNothing: a notification-sized document with plain names is read
// without an allocation (it is read once per verified callback).
func TestUniqueTopFieldsAllocatesNothing(t *testing.T) {
	doc := []byte(`{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1700000000,"MsgType":"event",` +
		`"Event":"xpay_goods_deliver_notify","OpenId":"o1","OutTradeNo":"t1","Env":0,` +
		`"WeChatPayInfo":{"MchOrderNo":"m","TransactionId":"x"},"GoodsInfo":{"ProductId":"p","Quantity":1}}`)
	names := []string{"Event", "MsgType", "ToUserName"}
	var vals [3][]byte
	allocs := testing.AllocsPerRun(100, func() {
		if err := UniqueTopFields(doc, names, vals[:]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.0f allocations per document, want 0", allocs)
	}
	if string(vals[0]) != `"xpay_goods_deliver_notify"` {
		t.Fatalf("Event = %s", vals[0])
	}
}
