package emulator

import "testing"

// TestTamperedBody checks the forged body differs in exactly one byte.
func TestTamperedBody(t *testing.T) {
	for _, in := range []string{`{"code":"ORDER_NOT_EXIST"}`, ``, `[]`} {
		out := tamperedBody([]byte(in))
		if string(out) == in {
			t.Fatalf("tamperedBody(%q) did not change it", in)
		}
		if len(in) > 0 && len(out) != len(in) {
			t.Fatalf("tamperedBody(%q) = %q changes the length", in, out)
		}
	}
}
