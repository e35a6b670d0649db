package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadme: the quick start keeps its two commands, the README says how to build a binary,
// and every relative link of README.md and docs/*.md names a file that exists.
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	quick := string(readme)
	if i := strings.Index(quick, "## Quick start"); i >= 0 {
		quick = quick[i:]
		if j := strings.Index(quick[3:], "\n## "); j >= 0 {
			quick = quick[:j+3]
		}
	} else {
		t.Fatal("README has no Quick start section")
	}
	for _, cmd := range []string{"go run ./cmd/wxgate demo", "go test ./..."} {
		if !strings.Contains(quick, "\n"+cmd+" ") {
			t.Errorf("the quick start lost %q", cmd)
		}
	}
	if !strings.Contains(string(readme), "go build -o wxgate ./cmd/wxgate") {
		t.Error("README does not say how to build a binary")
	}
	link := regexp.MustCompile(`\]\(([^)#:]+)(#[^)]*)?\)`)
	docs, _ := filepath.Glob("../../docs/*.md")
	for _, f := range append([]string{"../../README.md"}, docs...) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(text), -1) {
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), m[1])); err != nil {
				t.Errorf("%s links to %s, which does not exist", f, m[1])
			}
		}
	}
}
