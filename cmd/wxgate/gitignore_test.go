package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGitignore: a local deployment's config, keys, emulator files and data folder are ignored
// wherever they are, while no tracked file (the testdata/ key fixtures) is ignored by accident
// and new fixtures stay visible.
func TestGitignore(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	root := "../.."
	if out, err := exec.Command(git, "-C", root, "rev-parse", "--is-inside-work-tree").Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Skip("not a git checkout (a module copy)")
	}
	out, err := exec.Command(git, "-C", root, "ls-files", "-i", "-c", "--exclude-standard").CombinedOutput()
	if err != nil {
		t.Fatalf("git ls-files: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("tracked files the .gitignore ignores:\n%s", s)
	}
	for _, tt := range []struct {
		path    string
		ignored bool
	}{
		{"wxgate.toml", true},
		{"deploy/wxgate.toml", true},
		{"apiclient_key.pem", true},
		{"keys/pub_key.pem", true},
		{"emulator-files/emulator-ca.pem", true},
		{"cmd/wxgate/emulator-files/wechatpay-key.pem", true},
		{"wxgate-data/wxgate.db", true},
		{"config.example.toml", false},
		{"proxy/testdata/new_fixture.pem", false},
		{"policies/testdata/sub/fixture.pem", false},
	} {
		err := exec.Command(git, "-C", root, "check-ignore", "-q", "--no-index", tt.path).Run()
		if ignored := err == nil; ignored != tt.ignored {
			t.Errorf("%s: ignored %v, want %v (%v)", tt.path, ignored, tt.ignored, err)
		}
	}
}
