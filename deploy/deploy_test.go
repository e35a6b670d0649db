package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// unitSettings reads a systemd unit's Key=Value lines (a key set twice keeps every value).
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not Key=Value: %q", path, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// defaultConfig is a config with every default and one app forwarding events (one forward pool).
func defaultConfig(t *testing.T) *policies.Config {
	t.Helper()
	cfg, err := policies.Decode([]byte(`
[forward]
secret = "deploy-test-forward-secret"
[[app]]
name = "shop"
appid = "wx0123456789abcdef"
secret = "deploy-test-app-secret"
forward_url = "http://127.0.0.1:3000/events"
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on deploy/wxgate.service, with ExecStart
// pointed at a freshly built wxgate (verify checks that the binary exists). systemd-analyze
// exits 0 on an unknown key or a value it cannot parse and only prints a warning, so any output
// fails the test.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("WXGATE_REQUIRE_SYSTEMD") == "1" {
			t.Fatal("WXGATE_REQUIRE_SYSTEMD=1 but systemd-analyze is not installed")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd): deploy/wxgate.service is not verified")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "wxgate")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/wxgate").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	unit, err := os.ReadFile("wxgate.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/wxgate ") {
		t.Fatal("ExecStart should run /usr/local/bin/wxgate")
	}
	unit = []byte(strings.ReplaceAll(string(unit), "ExecStart=/usr/local/bin/wxgate ", "ExecStart="+bin+" "))
	path := filepath.Join(dir, "wxgate.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdUnitSettings checks the unit against the code: the descriptor limit covers what the
// default config may hold (and the number its comment quotes is that one), the stop timeout is
// above the longest drain, and reload, restart and the hardening are in place.
func TestSystemdUnitSettings(t *testing.T) {
	u := unitSettings(t, "wxgate.service")
	one := func(k string) string {
		t.Helper()
		if len(u[k]) != 1 {
			t.Fatalf("%s is set %d times, want once", k, len(u[k]))
		}
		return u[k][0]
	}
	cfg := defaultConfig(t)
	need := proxy.DescriptorsNeeded(cfg)
	limit, err := strconv.Atoi(one("LimitNOFILE"))
	if err != nil || limit < need {
		t.Errorf("LimitNOFILE=%s, the default config may hold %d descriptors", one("LimitNOFILE"), need)
	}
	unit, _ := os.ReadFile("wxgate.service")
	if quoted := regexp.MustCompile(`may hold ([\d,]+) descriptors`).FindSubmatch(unit); quoted == nil ||
		strings.ReplaceAll(string(quoted[1]), ",", "") != strconv.Itoa(need) {
		t.Errorf("the unit's comment should quote %d descriptors (proxy.DescriptorsNeeded of the defaults), got %q", need, quoted)
	}
	// The longest request in flight at SIGTERM: the rest of its read, the call to WeChat (after
	// waiting for a signature), and the write of its answer.
	s := cfg.Server
	drain := s.ReadTimeout + s.SignMaxWait + cfg.Upstream.Timeout + s.WriteTimeout
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	if err != nil || stop <= drain {
		t.Errorf("TimeoutStopSec=%s, want above the longest drain %s", one("TimeoutStopSec"), drain)
	}
	if !strings.Contains(string(unit), drainRound(drain)) {
		t.Errorf("the unit's comment should quote the drain time %s", drainRound(drain))
	}
	want := map[string]string{
		"ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure", "KillSignal": "SIGTERM",
		"DynamicUser": "yes", "StateDirectory": "wxgate", "RuntimeDirectory": "wxgate", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "CapabilityBoundingSet": "",
	}
	for k, v := range want {
		if got := one(k); got != v {
			t.Errorf("%s=%s, want %s", k, got, v)
		}
	}
}

// drainRound prints a drain time as the unit's comment does ("26 s").
func drainRound(d time.Duration) string {
	return strconv.Itoa(int(d.Round(time.Second).Seconds())) + " s"
}
