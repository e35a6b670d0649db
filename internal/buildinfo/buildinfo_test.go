package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestFrom covers every source of each field: -ldflags overrides, the module version Go recorded,
// the VCS settings, and a binary with no build information at all.
func TestFrom(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := []debug.BuildSetting{{Key: "-trimpath", Value: "true"}, {Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}
	tests := []struct {
		name            string
		bi              *debug.BuildInfo
		version, commit string
		want            Info
		short           string
	}{
		{"go build in a checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261205153000-0123456789ab+dirty"}, Settings: vcs}, "dev", "",
			Info{Version: "v0.0.0-20261205153000-0123456789ab+dirty", Commit: rev, Modified: true, GoVersion: "go1.26.8"}, "0123456789ab+dirty"},
		{"ldflags version wins", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-x"}, Settings: vcs[:3]}, "1.4.0", "",
			Info{Version: "1.4.0", Commit: rev, GoVersion: "go1.26.8"}, "0123456789ab"},
		{"go run: devel, no vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "dev", "",
			Info{Version: "dev", GoVersion: "go1.26.8"}, "unknown"},
		{"container build: ldflags commit without vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "1.4.0", "fedcba9876543210",
			Info{Version: "1.4.0", Commit: "fedcba9876543210", GoVersion: "go1.26.8"}, "fedcba987654"},
		{"vcs beats ldflags commit", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs[:3]}, "", "fedcba9876543210",
			Info{Version: "dev", Commit: rev, GoVersion: "go1.26.8"}, "0123456789ab"},
		{"no build info", nil, "", "", Info{Version: "dev", GoVersion: "unknown"}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := From(tt.bi, tt.version, tt.commit)
			if got != tt.want {
				t.Fatalf("From = %+v, want %+v", got, tt.want)
			}
			if s := got.ShortCommit(); s != tt.short {
				t.Fatalf("ShortCommit = %q, want %q", s, tt.short)
			}
			out := got.String()
			if !strings.HasPrefix(out, "wxgate "+tt.want.Version+"\ncommit: ") || !strings.HasSuffix(out, "\ngo: "+tt.want.GoVersion+"\n") {
				t.Fatalf("String:\n%s", out)
			}
			if tt.want.Commit != "" && !strings.Contains(out, tt.want.Commit) {
				t.Fatalf("String lacks the full commit:\n%s", out)
			}
			if strings.Contains(out, "(modified)") != tt.want.Modified {
				t.Fatalf("String and Modified disagree:\n%s", out)
			}
		})
	}
}

// TestReadInTestBinary: a test binary has build information (its Go version is the running
// one); whether it has VCS settings depends on how it was built, so only that much is asserted.
func TestReadInTestBinary(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("a test binary has build information")
	}
	got := Read("dev", "")
	if got.GoVersion != bi.GoVersion || got.Version == "" {
		t.Fatalf("Read = %+v, build info Go %s", got, bi.GoVersion)
	}
}
