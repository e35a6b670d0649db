package jsonscan

import (
	"strings"
	"testing"
)

// TestObject: exactly one JSON object, surrounding whitespace allowed.
func TestObject(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{}`, true}, {" \t\n{ } \r\n", true}, {`{"a":[1,{"b":null}]}`, true},
		{``, false}, {`   `, false}, {`[]`, false}, {`"{}"`, false}, {`{`, false}, {`{}x`, false}, {`{} {}`, false}, {`1`, false},
	} {
		if err := Object([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("Object(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

// TestTopFields: members are found whatever the whitespace around them and whatever values come
// before them (strings holding delimiters, nested containers, numbers, literals), first
// occurrence wins, nested members are not top-level, and absent names stay nil.
func TestTopFields(t *testing.T) {
	doc := " {\n\t\"s\" : \"a,b}\\\"c\" ,\"obj\":{\"env\":9,\"x\":[1,2,{\"y\":\"]\"}]}, \"n\" : -1.5e3 \r\n, \"t\":true,\"env\":0,\"env\":1 , \"last\" : null } "
	names := []string{"env", "n", "t", "last", "s", "obj", "missing", "y"}
	vals := make([][]byte, len(names))
	TopFields([]byte(doc), names, vals)
	want := []string{"0", "-1.5e3", "true", "null", `"a,b}\"c"`, `{"env":9,"x":[1,2,{"y":"]"}]}`, "", ""}
	for k, name := range names {
		if string(vals[k]) != want[k] || (want[k] == "") != (vals[k] == nil) {
			t.Errorf("%s = %q, want %q", name, vals[k], want[k])
		}
	}
	if v, ok := TopField([]byte(doc), "n"); !ok || string(v) != "-1.5e3" {
		t.Errorf("TopField(n) = %q, %v", v, ok)
	}
	for _, notObject := range []string{`[{"env":1}]`, `"env"`, ``} {
		if v, ok := TopField([]byte(notObject), "env"); ok {
			t.Errorf("TopField in %q found %q", notObject, v)
		}
	}
	big := `{"pad":"` + strings.Repeat("x", 5000) + `","env":7}`
	if v, _ := TopField([]byte(big), "env"); string(v) != "7" {
		t.Errorf("after a long string: %q", v)
	}
}

// TestMemberString: strings decode (escapes included), absent (nil) and null members are "",
// other types are errors naming the member.
func TestMemberString(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		err       bool
	}{
		{`"plain"`, "plain", false}, {`"a\"b\u4e2d"`, "a\"b中", false}, {`null`, "", false},
		{`1`, "", true}, {`true`, "", true}, {`{"a":1}`, "", true},
	} {
		got, err := MemberString([]byte(tc.raw), "openid")
		if got != tc.want || (err != nil) != tc.err || (err != nil && !strings.Contains(err.Error(), "openid")) {
			t.Errorf("MemberString(%q) = %q, %v", tc.raw, got, err)
		}
	}
	if got, err := MemberString(nil, "openid"); got != "" || err != nil {
		t.Errorf("an absent member: %q, %v", got, err)
	}
}

// TestPlainString: only a quoted string without a backslash is plain; its contents alias raw.
// (StringValue falls back to encoding/json, so only PlainString itself shows a wrong refusal.)
func TestPlainString(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		ok        bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`"a b/c"`, "a b/c", true},
		{`"a\"b"`, "", false},
		{`"a\\"`, "", false},
		{`"\u0041"`, "", false},
		{`"`, "", false},
		{``, "", false},
		{`abc"`, "", false},
		{`"abc`, "", false},
		{`"ab"x`, "", false},
		{`1`, "", false},
		{`null`, "", false},
		{`{"a":"b"}`, "", false},
	} {
		raw := []byte(tc.raw)
		got, ok := PlainString(raw)
		if ok != tc.ok || string(got) != tc.want || ok != (got != nil) {
			t.Errorf("PlainString(%s) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
		if len(got) > 0 && &got[0] != &raw[1] {
			t.Errorf("PlainString(%s) copied the contents", tc.raw)
		}
	}
}

// TestMemberBytes: a plain string aliases raw, an escaped one is decoded, absent and null are nil
// without an error, other types are nil with an error naming the member.
func TestMemberBytes(t *testing.T) {
	for _, tc := range []struct {
		raw      []byte
		want     string
		isNil    bool
		err      bool
		aliasing bool
	}{
		{[]byte(`"plain"`), "plain", false, false, true},
		{[]byte(`""`), "", false, false, false},
		{[]byte(`"a\u0041\n"`), "aA\n", false, false, false},
		{[]byte(`"\"x\""`), `"x"`, false, false, false},
		{nil, "", true, false, false},
		{[]byte(`null`), "", true, false, false},
		{[]byte(`12`), "", true, true, false},
		{[]byte(`["a"]`), "", true, true, false},
	} {
		got, err := MemberBytes(tc.raw, "resource.nonce")
		if string(got) != tc.want || (got == nil) != tc.isNil || (err != nil) != tc.err {
			t.Errorf("MemberBytes(%s) = %q (nil %v), %v", tc.raw, got, got == nil, err)
		}
		if err != nil && !strings.Contains(err.Error(), "resource.nonce") {
			t.Errorf("MemberBytes(%s): the error %q does not name the member", tc.raw, err)
		}
		if aliases := len(got) > 0 && &got[0] == &tc.raw[1]; aliases != tc.aliasing {
			t.Errorf("MemberBytes(%s) aliases raw: %v, want %v", tc.raw, aliases, tc.aliasing)
		}
	}
}

// TestTopFieldTruncated: errcodeOf (proxy) reads WeChat's answers with TopField and SmallInt
// without validating them first, so a cut-off answer must not read past its end: the member is
// read as far as it goes, and a key without its value is not a member.
func TestTopFieldTruncated(t *testing.T) {
	for _, tc := range []struct {
		body string
		code int64
		ok   bool
	}{
		{`{"errcode":40001`, 40001, true},
		{`{"errcode":40001 `, 40001, true},
		{`{"errcode":40001,`, 40001, true},
		{`{"errmsg":"ok","errcode":0`, 0, true},
		{`{"errcode"`, 0, false},
		{`{"errcode" `, 0, false},
		{`{"errcode":`, 0, false},
		{`{"errcode": `, 0, false},
		{`{"errcode":[1`, 0, false},
		{`{"errcode":{"a":1`, 0, false},
		{`{"errcode":"40001`, 0, false},
		{`{"errmsg":"a,\"errcode\":1`, 0, false},
		// A body cut inside a key (these once panicked: slice bounds out of range).
		{`{"errcode":1,"`, 1, true},
		{`{"`, 0, false},
		{`{"errc`, 0, false},
		{`{"errcode":1,"errmsg`, 1, true},
		{`{1:2}`, 0, false},
	} {
		b := []byte(tc.body)
		var code int64
		var ok bool
		if raw, found := TopField(b, "errcode"); found {
			code, ok = SmallInt(raw)
		}
		if code != tc.code || ok != tc.ok {
			t.Errorf("errcode of %s = %d, %v; want %d, %v", tc.body, code, ok, tc.code, tc.ok)
		}
		// UniqueTopFields has the same bounds checks (its one caller validates first).
		var vals [1][]byte
		_ = UniqueTopFields(b, []string{"errcode"}, vals[:])
	}
}
