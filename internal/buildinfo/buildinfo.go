// Package buildinfo says which wxgate is running: its version, the commit it was built from and
// the Go that built it, read from the binary's own build information.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Info describes a wxgate binary.
type Info struct {
	// Version is the -ldflags "-X main.version=..." value when one was given, else the module
	// version Go recorded (a tag, or a pseudo-version when built from a git checkout), else "dev".
	Version string
	// Commit is the VCS revision (vcs.revision), "" when the build recorded none: go run, go test,
	// a build outside a git checkout or with -buildvcs=false. An -ldflags commit fills it then.
	Commit string
	// Modified reports uncommitted changes in the checkout at build time (vcs.modified).
	Modified bool
	// GoVersion is the Go toolchain that built the binary (go1.26.8).
	GoVersion string
}

// Read returns the running binary's Info. version and commit are the values set with -ldflags
// (version "dev" and commit "" mean none was set): a version given that way overrides the
// recorded one; a commit given that way is used only when Go recorded none.
func Read(version, commit string) Info {
	bi, _ := debug.ReadBuildInfo()
	return From(bi, version, commit)
}

// From is Read for a given build information (nil when there is none).
func From(bi *debug.BuildInfo, version, commit string) Info {
	info := Info{Version: version, Commit: commit, GoVersion: "unknown"}
	if bi == nil {
		if info.Version == "" {
			info.Version = "dev"
		}
		return info
	}
	info.GoVersion = bi.GoVersion
	if info.Version == "" || info.Version == "dev" {
		info.Version = "dev"
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// ShortCommit is the commit's first 12 hex digits, "+dirty" when the checkout was modified,
// "unknown" when there is no commit.
func (i Info) ShortCommit() string {
	c := i.Commit
	if c == "" {
		return "unknown"
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "+dirty"
	}
	return c
}

// String is what `wxgate version` prints, one fact a line:
//
//	wxgate v1.2.0
//	commit: 0123456789abcdef0123456789abcdef01234567 (modified)
//	go: go1.26.8
func (i Info) String() string {
	var b strings.Builder
	b.WriteString("wxgate " + i.Version + "\ncommit: ")
	switch {
	case i.Commit == "":
		b.WriteString("unknown (built without VCS information: go run, go test, -buildvcs=false or outside a git checkout)")
	case i.Modified:
		b.WriteString(i.Commit + " (modified)")
	default:
		b.WriteString(i.Commit)
	}
	b.WriteString("\ngo: " + i.GoVersion + "\n")
	return b.String()
}
