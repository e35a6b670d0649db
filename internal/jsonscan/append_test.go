package jsonscan

import (
	"encoding/json"
	"testing"
)

// TestAppendString: the exact encoding (escapes as the push error answer writes them), appended
// after what dst holds, and encoding/json reads it as it reads its own encoding of the string
// (invalid UTF-8 as U+FFFD).
func TestAppendString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"plain text", `"plain text"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\n\r\t", `"\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\b\f", `"\u0008\u000c"`},
		{" ~\x7f", "\" ~\x7f\""},
		{"<&>", `"<&>"`},
		{"中文 é", `"中文 é"`},
		{"\xff", `"\ufffd"`},
		{"\x80", `"\ufffd"`},
		{"a\xe4\xb8", `"a\ufffd\ufffd"`},
		{"\ufffd", "\"\ufffd\""}, // the rune itself, valid UTF-8, stays as it is
		{"\u2028x\u2029", `"\u2028x\u2029"`},
		{"\u2027\u202a", "\"\u2027\u202a\""},
		{"x\"\n\xff\u2028y", `"x\"\n\ufffd\u2028y"`},
	} {
		got := AppendString([]byte("k="), tc.in)
		if string(got) != "k="+tc.want {
			t.Errorf("AppendString(%q) = %s, want %s", tc.in, got[2:], tc.want)
			continue
		}
		std, err := json.Marshal(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var a, b string
		if err := json.Unmarshal(got[2:], &a); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", tc.in, got[2:], err)
		}
		if err := json.Unmarshal(std, &b); err != nil || a != b {
			t.Errorf("AppendString(%q) reads as %q, encoding/json's own encoding as %q", tc.in, a, b)
		}
	}
}
