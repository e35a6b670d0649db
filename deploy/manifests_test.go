package deploy

import (
	"net"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
)

// There is no YAML parser in the standard library and none is worth a dependency for one example
// file: these tests read kubernetes/sidecar.yaml and the Containerfile as text, and check them
// against the config rules and each other.

// sidecarTOML returns the wxgate.toml embedded in the ConfigMap of sidecar.yaml.
func sidecarTOML(t *testing.T, yaml string) string {
	t.Helper()
	_, rest, ok := strings.Cut(yaml, "\n  wxgate.toml: |\n")
	if !ok {
		t.Fatal("sidecar.yaml has no ConfigMap key wxgate.toml")
	}
	var b strings.Builder
	for line := range strings.Lines(rest) {
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		b.WriteString(strings.TrimPrefix(line, "    "))
	}
	return b.String()
}

// yamlBetween is the part of yaml from the line with start up to the next line with end.
func yamlBetween(t *testing.T, yaml, start, end string) string {
	t.Helper()
	i := strings.Index(yaml, start)
	if i < 0 {
		t.Fatalf("sidecar.yaml has no %q", start)
	}
	j := strings.Index(yaml[i:], end)
	if j < 0 {
		t.Fatalf("sidecar.yaml has no %q after %q", end, start)
	}
	return yaml[i : i+j]
}

// TestKubernetesSidecar: the ConfigMap's wxgate.toml is a valid config; the probes, ports and
// volumes of the wxgate container match its listeners, key files and store; every env: secret
// it names is set from the Secret; the app reaches wxgate on loopback, where no token is needed.
func TestKubernetesSidecar(t *testing.T) {
	raw, err := os.ReadFile("kubernetes/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := string(raw)
	cfg, err := policies.Decode([]byte(sidecarTOML(t, yaml)), "/etc/wxgate")
	if err != nil {
		t.Fatalf("the ConfigMap's wxgate.toml: %v", err)
	}
	wxgate := yamlBetween(t, yaml, "initContainers:\n        - name: wxgate", "\n      containers:")
	app := yamlBetween(t, yaml, "\n      containers:\n        - name: app", "\n      volumes:")
	volumes := yamlBetween(t, yaml, "\n      volumes:", "\n---")

	if !cfg.Server.AppListenIsLocal() || !strings.Contains(app, "value: http://"+cfg.Server.AppListen+"\n") {
		t.Errorf("the app should call wxgate on its loopback app_listen %s", cfg.Server.AppListen)
	}
	containerPort := func(name string) string {
		m := regexp.MustCompile(`- name: ` + name + `\n\s+containerPort: (\d+)`).FindStringSubmatch(wxgate)
		if m == nil {
			t.Fatalf("the wxgate container has no port named %s", name)
		}
		return m[1]
	}
	for name, listen := range map[string]string{"admin": cfg.Server.AdminListen, "callback": cfg.Server.CallbackListen} {
		host, port, _ := net.SplitHostPort(listen)
		if port != containerPort(name) || host != "0.0.0.0" {
			t.Errorf("%s_listen %s: the container port %s must match, on 0.0.0.0 (the kubelet and the Service come from outside the Pod's loopback)", name, listen, containerPort(name))
		}
	}
	for probe, p := range map[string]string{"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if !strings.Contains(wxgate, probe+":\n            httpGet: {path: "+p+", port: admin}") {
			t.Errorf("the wxgate container's %s should get %s on the admin port", probe, p)
		}
	}
	for _, m := range regexp.MustCompile(`"env:(\w+)"`).FindAllStringSubmatch(sidecarTOML(t, yaml), -1) {
		if !strings.Contains(wxgate, "- name: "+m[1]+"\n              valueFrom:\n                secretKeyRef: {name: wxgate,") {
			t.Errorf("env:%s is not set from the Secret in the wxgate container", m[1])
		}
	}
	mountOf := func(volume string) string {
		m := regexp.MustCompile(`- name: ` + volume + `\n\s+mountPath: (\S+)`).FindStringSubmatch(wxgate)
		if m == nil {
			t.Fatalf("the wxgate container does not mount the %s volume", volume)
		}
		return m[1]
	}
	for _, m := range cfg.Merchants {
		for _, f := range []string{m.PrivateKeyFile, m.PublicKeyFile} {
			if path.Dir(f) != mountOf("keys") || !strings.Contains(volumes, "{key: "+path.Base(f)+", path: "+path.Base(f)+"}") {
				t.Errorf("merchant %s: %s is not a file of the keys volume (mounted at %s)", m.Name, f, mountOf("keys"))
			}
		}
	}
	if cfg.Store.Kind != policies.StoreDisk || cfg.Store.Dir != mountOf("data") {
		t.Errorf("store.dir %s should be the data volume's mount %s", cfg.Store.Dir, mountOf("data"))
	}
	if mountOf("config") != "/etc/wxgate" || !strings.Contains(wxgate, `args: ["serve", "-config", "/etc/wxgate/wxgate.toml"]`) {
		t.Error("wxgate should read /etc/wxgate/wxgate.toml from the config volume")
	}
	if mountOf("socket") != "/run/wxgate" || !strings.Contains(app, "- name: socket\n              mountPath: /run/wxgate") {
		t.Error("both containers should mount the socket volume at /run/wxgate")
	}
	grace := regexp.MustCompile(`terminationGracePeriodSeconds: (\d+)`).FindStringSubmatch(yaml)
	d, _ := time.ParseDuration(grace[1] + "s")
	s := cfg.Server
	if drain := s.ReadTimeout + s.SignMaxWait + cfg.Upstream.Timeout + s.WriteTimeout; d <= drain {
		t.Errorf("terminationGracePeriodSeconds %s is not above the longest drain %s", grace[1], drain)
	}
	if !strings.Contains(yaml, "runAsUser: "+containerUser(t)+"\n") {
		t.Errorf("the Pod should run as the image's user %s", containerUser(t))
	}
}

// containerfile returns the Containerfile's instructions, continuation lines joined.
func containerfile(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s
			continue
		}
		out = append(out, cur+line)
		cur = ""
	}
	return out
}

// containerUser is the uid of the Containerfile's USER.
func containerUser(t *testing.T) string {
	t.Helper()
	for _, ins := range containerfile(t) {
		if u, ok := strings.CutPrefix(ins, "USER "); ok {
			uid, _, _ := strings.Cut(u, ":")
			return uid
		}
	}
	t.Fatal("the Containerfile has no USER")
	return ""
}

// TestContainerfile: a static, trimmed binary stamped with its version, built with the Go of
// go.mod; a non-root user; config and data as volumes; the default listeners' ports exposed.
func TestContainerfile(t *testing.T) {
	all := strings.Join(containerfile(t), "\n")
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	for _, want := range []string{
		"ARG GO_VERSION=" + string(goVersion[1]), "CGO_ENABLED=0", "go build -trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}",
		`VOLUME ["/etc/wxgate", "/var/lib/wxgate"]`, `CMD ["serve", "-config", "/etc/wxgate/wxgate.toml"]`, "STOPSIGNAL SIGTERM",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the Containerfile lacks %q", want)
		}
	}
	if u := containerUser(t); u == "0" || u == "root" {
		t.Errorf("the image runs as %s", u)
	}
	for _, listen := range []string{policies.DefaultAppListen, policies.DefaultCallbackListen, policies.DefaultAdminListen} {
		_, port, _ := net.SplitHostPort(listen)
		if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + port + `\b`).MatchString(all) {
			t.Errorf("the Containerfile does not expose %s (default %s)", port, listen)
		}
	}
}
