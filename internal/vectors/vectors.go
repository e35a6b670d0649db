// Package vectors locates the known-answer vectors of shared/spec/vectors for tests.
//
// The project's spec folder sits beside the repository (../shared/spec/vectors); tests read the
// files there directly. A byte-identical copy is kept in this package's testdata so that a clone
// without the spec folder still runs every known-answer test; TestCopiesMatchSpec keeps the copy
// honest whenever the spec folder is present.
package vectors

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// SpecDir returns the shared spec vectors folder if it can be found beside the repository, or "".
// WXGATE_SPEC_VECTORS overrides the search.
func SpecDir() string {
	if d := os.Getenv("WXGATE_SPEC_VECTORS"); d != "" {
		return d
	}
	root := repoRoot()
	d := filepath.Join(root, "..", "shared", "spec", "vectors")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	return ""
}

// Path returns the path of the named vectors file, preferring the shared spec folder.
func Path(name string) string {
	if d := SpecDir(); d != "" {
		return filepath.Join(d, name)
	}
	return filepath.Join(copyDir(), name)
}

// Read returns the contents of the named vectors file.
func Read(name string) ([]byte, error) {
	b, err := os.ReadFile(Path(name))
	if err != nil {
		return nil, fmt.Errorf("read vectors %s: %w", name, err)
	}
	return b, nil
}

func copyDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

func repoRoot() string {
	return filepath.Join(copyDir(), "..", "..", "..")
}
