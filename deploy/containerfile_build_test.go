package deploy

import (
	"bufio"
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// containerBuild returns the Containerfile's `go build` command line (the RUN before its "&&")
// and the environment its ENV lines set for it.
func containerBuild(t *testing.T) (command string, env []string) {
	t.Helper()
	for _, ins := range containerfile(t) {
		if e, ok := strings.CutPrefix(ins, "ENV "); ok {
			env = append(env, strings.Fields(e)...)
		}
		if run, ok := strings.CutPrefix(ins, "RUN go build "); ok {
			run, _, _ = strings.Cut(run, "&&")
			return "go build " + run, env
		}
	}
	t.Fatal("the Containerfile has no RUN go build")
	return "", nil
}

// TestContainerfileBuildIsStaticAndRunsAsItsUser runs the Containerfile's own build command
// (its ENV, its flags, the build args filled in) outside a container, since the base images
// cannot be pulled in the tests, and checks what the image relies on: the binary is static (no
// ELF interpreter, no shared library: the distroless/static base has no libc), it reports the
// version and commit it was given, and, as the image's USER with an empty environment, it
// serves from a config in its config folder and keeps its store in its data folder.
func TestContainerfileBuildIsStaticAndRunsAsItsUser(t *testing.T) {
	command, env := containerBuild(t)
	binDir := t.TempDir()
	// The image's user runs the binary from here: open the test's folders to it.
	for _, d := range []string{filepath.Dir(binDir), binDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(binDir, "wxgate")
	command = strings.NewReplacer("${VERSION}", "v0.0.0-containerfile", "${COMMIT}", "c0ffee1", "/out/wxgate", out).Replace(command)
	build := exec.Command("sh", "-c", command)
	build.Dir = ".." // the image's build context: the repository root
	build.Env = append(os.Environ(), env...)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary names an ELF interpreter: it is not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
	if syms, _ := f.Symbols(); len(syms) > 0 {
		t.Errorf("the binary keeps %d symbols: -s -w should strip them", len(syms))
	}
	f.Close()

	version, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(version), "wxgate v0.0.0-containerfile") || !strings.Contains(string(version), "commit: c0ffee1") {
		t.Fatalf("wxgate version: %v\n%s", err, version)
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the run as the image's user is left out")
		return
	}
	uid, err := strconv.Atoi(containerUser(t))
	if err != nil {
		t.Fatal(err)
	}
	runAsImageUser(t, out, uint32(uid))
}

// runAsImageUser serves with the built binary as uid (and gid) uid, an empty environment, the
// config in a read-only config folder and the store in a data folder that uid owns.
func runAsImageUser(t *testing.T, bin string, uid uint32) {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	confDir, dataDir := filepath.Join(root, "etc-wxgate"), filepath.Join(root, "var-lib-wxgate")
	for _, d := range []string{confDir, dataDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dataDir, int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
	admin := freeAddr(t)
	config := fmt.Sprintf(`
[server]
app_listen = "127.0.0.1:0"
callback_listen = "127.0.0.1:0"
admin_listen = %q
[store]
dir = %q
[forward]
secret = "containerfile-test-forward-secret"
[[app]]
name = "shop"
appid = "wx0123456789abcdef"
secret = "containerfile-test-app-secret"
forward_url = "http://127.0.0.1:9/events"
`, admin, dataDir)
	path := filepath.Join(confDir, "wxgate.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-config", path)
	cmd.Env = []string{} // distroless sets nothing the binary needs
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	serving := make(chan string, 1)
	var logs strings.Builder
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "wxgate serving") {
				select {
				case serving <- sc.Text():
				default:
				}
			}
		}
	}()
	go func() { <-logsDone; exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-serving:
	case err := <-exited:
		t.Fatalf("wxgate serve as uid %d exited: %v\n%s", uid, err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("wxgate serve as uid %d printed no start-up line in 30 s", uid)
	}
	status, body, err := fasthttp.GetTimeout(nil, "http://"+admin+"/healthz", 5*time.Second)
	if err != nil || status != fasthttp.StatusOK {
		t.Fatalf("/healthz as uid %d: %d %s %v", uid, status, body, err)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("the store wrote nothing into the data folder: %v", err)
	}
	for _, e := range entries {
		info, err := os.Stat(filepath.Join(dataDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if st := info.Sys().(*syscall.Stat_t); st.Uid != uid {
			t.Errorf("%s in the data folder belongs to uid %d, want %d", e.Name(), st.Uid, uid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("wxgate serve did not exit cleanly on SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("wxgate serve did not stop within 45 s of SIGTERM")
	}
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
