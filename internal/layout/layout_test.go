package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wxgate/wxgate/"

// forbidden lists, for each package, the packages of wxgate it must never import (directly).
var forbidden = map[string][]string{
	"signer":             {"*"},
	"internal/jsonscan":  {"*"},
	"event":              {"*", "!signer"},
	"internal/signing":   {"*", "!signer", "!internal/threadcpu", "!internal/threadprio"},
	"policies":           {"*", "!signer"},
	"credentials":        {"proxy", "cmd/wxgate", "emulator", "bench", "event", "store"},
	"store":              {"*"},
	"internal/redistest": {"*"},
	"proxy":              {"cmd/wxgate", "emulator", "bench"},
	"emulator":           {"proxy", "cmd/wxgate", "bench", "credentials"},
}

// TestImportDirections: no package imports what its doc comment says it never imports, and
// nothing imports cmd.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if strings.HasPrefix(dep, "cmd/") {
				t.Errorf("%s imports %s: nothing imports cmd", pkg, dep)
			}
			if dep == "internal/redistest" {
				t.Errorf("%s imports %s outside its tests: it starts processes", pkg, dep)
			}
			if rules, ok := forbidden[pkg]; ok && refused(rules, dep) {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
		if _, ok := forbidden[pkg]; ok {
			seen++
		}
	}
	if seen != len(forbidden) {
		t.Fatalf("go list showed %d of the %d packages with rules", seen, len(forbidden))
	}
}

// refused reports whether dep is ruled out: listed, or under "*" and not allowed with "!dep".
func refused(rules []string, dep string) bool {
	all := false
	for _, r := range rules {
		switch {
		case r == "*":
			all = true
		case r == "!"+dep:
			return false
		case r == dep || strings.HasPrefix(dep, r+"/"):
			return true
		}
	}
	return all
}
