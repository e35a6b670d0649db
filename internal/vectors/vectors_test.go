package vectors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCopiesMatchSpec checks that every vendored vectors file is identical to the spec's copy.
func TestCopiesMatchSpec(t *testing.T) {
	spec := SpecDir()
	if spec == "" {
		t.Log("shared/spec/vectors not beside the repository; using the vendored copies only")
	}
	names, err := filepath.Glob(filepath.Join(copyDir(), "*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no vendored vectors found: %v", err)
	}
	for _, local := range names {
		base := filepath.Base(local)
		mine, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) == 0 {
			t.Errorf("%s is empty", base)
		}
		if spec == "" {
			continue
		}
		theirs, err := os.ReadFile(filepath.Join(spec, base))
		if err != nil {
			t.Errorf("vendored %s has no counterpart in %s: %v", base, spec, err)
			continue
		}
		if !bytes.Equal(mine, theirs) {
			t.Errorf("vendored %s differs from %s: refresh internal/vectors/testdata", base, spec)
		}
	}
}
