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
