package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// redacted is what a Secret prints as, wherever it is printed.
const redacted = "[redacted]"

// Secret is a configuration value that must never be shown: an AppSecret, AppKey, APIv3 key or
// token. In TOML it is written inline, as "env:NAME" (read from the environment) or as
// "file:PATH" (read from a file, relative paths from the config file's folder). Its String,
// GoString, Format and JSON forms never reveal the value.
type Secret struct {
	ref   string // as written in the config
	value string // resolved
	set   bool
}

// UnmarshalText records the reference as written; Resolve reads it.
func (s *Secret) UnmarshalText(b []byte) error {
	s.ref = string(b)
	s.set = false
	return nil
}

// resolve reads the secret's value from where its reference points.
func (s *Secret) resolve(baseDir string) error {
	switch {
	case s.ref == "":
		s.value = ""
	case strings.HasPrefix(s.ref, "env:"):
		name := strings.TrimPrefix(s.ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return fmt.Errorf("environment variable %s is not set or empty", name)
		}
		s.value = v
	case strings.HasPrefix(s.ref, "file:"):
		p := strings.TrimPrefix(s.ref, "file:")
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("cannot read secret file: %w", err)
		}
		s.value = strings.TrimRight(string(b), "\r\n")
		if s.value == "" {
			return fmt.Errorf("secret file %s is empty", p)
		}
	default:
		s.value = s.ref
	}
	s.set = s.value != ""
	return nil
}

// hasRef reports whether the secret is written in the config at all (before it is resolved).
func (s Secret) hasRef() bool { return s.ref != "" }

// Value returns the secret itself. Call it only where the secret is used, never to print it.
func (s Secret) Value() string { return s.value }

// IsSet reports whether the secret has a non-empty value.
func (s Secret) IsSet() bool { return s.set }

// Source describes where the secret comes from without revealing it: "inline", "env:NAME",
// "file:PATH" or "unset".
func (s Secret) Source() string {
	switch {
	case s.ref == "":
		return "unset"
	case strings.HasPrefix(s.ref, "env:"), strings.HasPrefix(s.ref, "file:"):
		return s.ref
	default:
		return "inline"
	}
}

// String returns a mask, never the value.
func (s Secret) String() string {
	if s.ref == "" {
		return ""
	}
	return redacted
}

// GoString returns a mask, never the value.
func (s Secret) GoString() string { return s.String() }

// Format masks the secret for every fmt verb.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, s.String()) }

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText masks the secret, so TOML and other text encoders never write it out.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
