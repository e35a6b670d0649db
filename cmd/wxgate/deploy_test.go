package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// servedProcess is a running `wxgate serve` whose log lines are collected.
type servedProcess struct {
	cmd    *exec.Cmd
	logs   *logLines
	exited chan error
}

// startServe runs `wxgate serve -config path` and waits for its start-up line.
func startServe(t *testing.T, path string, env ...string) *servedProcess {
	t.Helper()
	cmd := exec.Command(wxgateBinary(t), "serve", "-config", path)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &servedProcess{cmd: cmd, logs: &logLines{added: make(chan struct{}, 1)}, exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.logs.add(sc.Text())
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		p.exited <- nil
	})
	p.logs.waitFor(t, "wxgate serving", 30*time.Second)
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *servedProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("wxgate serve did not exit cleanly on SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("wxgate serve did not stop on SIGTERM:\n%s", p.logs)
	}
}

// line returns the first log line containing s.
func (p *servedProcess) line(s string) string {
	p.logs.mu.Lock()
	defer p.logs.mu.Unlock()
	for _, l := range p.logs.lines {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// recordingWeChat serves an emulator as WeChat (both hosts, plain HTTP) and keeps the raw headers
// of every request it received, to check what wxgate sent on.
type recordingWeChat struct {
	url     string
	mu      sync.Mutex
	headers []string
}

func serveRecordingWeChat(t *testing.T, emu *emulator.Emulator) *recordingWeChat {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingWeChat{url: "http://" + ln.Addr().String()}
	handle := emu.Handler()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		r.mu.Lock()
		r.headers = append(r.headers, ctx.Request.Header.String())
		r.mu.Unlock()
		handle(ctx)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { emu.Shutdown(); srv.Shutdown() })
	return r
}

// seen returns every request header block WeChat received.
func (r *recordingWeChat) seen() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.headers, "\n")
}

// deployConfig writes a config with two apps and a merchant whose WeChat is at weixin (the
// merchant's keys are fresh; its WeChat Pay public key is emu's once emu exists: call
// finishDeployConfig). server is the [server] section's body.
const deployConfigText = `
[server]
%s
callback_listen = "127.0.0.1:%d"
admin_listen = "127.0.0.1:%d"
[upstream]
weixin = %q
mch = %q
[store]
dir = "data"
[[app]]
name = "shop"
appid = "wx00000000000000a1"
secret = "deploy-test-app-secret-1"
[app.xpay]
app_key = "deploy-test-app-key-1"
[[app]]
name = "game"
appid = "wx00000000000000a2"
secret = "deploy-test-app-secret-2"
[app.xpay]
app_key = "deploy-test-app-key-2"
[[merchant]]
name = "till"
mchid = "1900000109"
appid = "wx00000000000000a1"
serial_no = %q
private_key_file = "merchant_key.pem"
apiv3_key = "deploy-test-apiv3-key-0123456789"
public_key_id = %q
public_key_file = "wechatpay_pub.pem"
`

// deployEnv is a config file on disk for `wxgate serve`, an emulator built from it and served
// as WeChat, and the ports of the callback and admin listeners.
type deployEnv struct {
	dir, path       string
	wechat          *recordingWeChat
	emu             *emulator.Emulator
	cbPort, admPort int
}

func newDeployEnv(t *testing.T, server string) *deployEnv {
	t.Helper()
	dir := t.TempDir()
	serial, err := writeMerchantFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The WeChat Pay public key is the emulator's: a stand-in first, to build the emulator.
	if err := os.Rename(filepath.Join(dir, "merchant_pub.pem"), filepath.Join(dir, "wechatpay_pub.pem")); err != nil {
		t.Fatal(err)
	}
	e := &deployEnv{dir: dir, path: filepath.Join(dir, "wxgate.toml"), cbPort: freePort(t), admPort: freePort(t)}
	write := func(server, weixin, pubID string) {
		text := fmt.Sprintf(deployConfigText, server, e.cbPort, e.admPort, weixin, weixin, serial, pubID)
		if err := os.WriteFile(e.path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`app_listen = "127.0.0.1:0"`, "http://127.0.0.1:9", "PUB_KEY_ID_0000000000000000000000000000000000")
	e.emu = emulatorFor(t, e.path)
	e.wechat = serveRecordingWeChat(t, e.emu)
	if err := os.WriteFile(filepath.Join(dir, "wechatpay_pub.pem"), e.emu.PayPublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	write(server, e.wechat.url, e.emu.PayPublicKeyID())
	return e
}

// logAttrs parses a slog text line's key=value pairs (values quoted or not).
func logAttrs(line string) map[string]string {
	attrs := map[string]string{}
	re := regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)
	for _, m := range re.FindAllStringSubmatch(line, -1) {
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			var s string
			if json.Unmarshal([]byte(v), &s) == nil {
				v = s
			}
		}
		attrs[m[1]] = v
	}
	return attrs
}

// TestServeOnUnixSocket runs `wxgate serve` with app_listen = "unix:..." and checks: the start-up
// line names every listener, the apps, the merchant, the store and the version; the socket has
// the configured mode; a fasthttp client over the socket makes a signed xpay call that the
// emulator accepts; SIGTERM removes the socket file. A stale socket file from a killed wxgate does
// not stop the next start.
func TestServeOnUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	e := newDeployEnv(t, fmt.Sprintf("app_listen = \"unix:%s\"\napp_socket_mode = \"0640\"", sock))
	p := startServe(t, e.path)

	attrs := logAttrs(p.line("wxgate serving"))
	b := build()
	want := map[string]string{
		"app": "unix:" + sock, "callback": fmt.Sprintf("127.0.0.1:%d", e.cbPort), "admin": fmt.Sprintf("127.0.0.1:%d", e.admPort),
		"apps": "shop,game", "merchants": "till", "store": "disk", "store_dir": filepath.Join(e.dir, "data"),
		"version": b.Version, "go": runtime.Version(), "weixin": e.wechat.url,
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("start-up line: %s=%q, want %q\n%s", k, attrs[k], v, p.line("wxgate serving"))
		}
	}
	if attrs["commit"] == "" {
		t.Errorf("start-up line has no commit: %s", p.line("wxgate serving"))
	}

	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o640 {
		t.Fatalf("socket %v %v, want a socket with mode 0640", fi.Mode(), err)
	}
	xpayOverSocket := func() {
		t.Helper()
		client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return net.Dial("unix", sock) }}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://wxgate/xpay/query_order")
		req.Header.SetMethod("POST")
		req.Header.Set(proxy.HeaderApp, "game")
		req.SetBodyString(`{"env":0,"order_id":"over-the-socket"}`)
		if err := client.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatalf("xpay over the socket: %v\n%s", err, p.logs)
		}
		var out struct {
			ErrCode int    `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		if err := json.Unmarshal(resp.Body(), &out); resp.StatusCode() != 200 || err != nil || out.ErrCode == 268490003 || out.ErrCode == 40001 {
			t.Fatalf("xpay over the socket: %d %s", resp.StatusCode(), resp.Body())
		}
	}
	xpayOverSocket()
	if status, body, err := fasthttp.GetTimeout(nil, fmt.Sprintf("http://127.0.0.1:%d/healthz", e.admPort), 5*time.Second); err != nil || status != 200 {
		t.Fatalf("/healthz with the app on a socket: %d %s %v", status, body, err)
	}
	if n := e.emu.Calls("/xpay/query_order"); n != 1 {
		t.Fatalf("the emulator got %d query_order calls, want 1", n)
	}

	p.stop(t)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("the socket file outlived wxgate: %v", err)
	}

	// A killed wxgate leaves its socket file; the next one replaces it.
	p = startServe(t, e.path)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	p.exited <- nil
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("a killed wxgate should leave its socket file behind: %v", err)
	}
	p = startServe(t, e.path)
	xpayOverSocket()
	p.stop(t)
}

// TestCheckRefusesAnOpenAppListener: `wxgate check` refuses app_listen on every interface
// without server.app_token, naming the key.
func TestCheckRefusesAnOpenAppListener(t *testing.T) {
	e := newDeployEnv(t, "app_listen = \"0.0.0.0:8080\"")
	_, _, err := runCmd(t, "check", "-config", e.path)
	if err == nil || !strings.Contains(err.Error(), "server.app_token: is required") || !strings.Contains(err.Error(), "0.0.0.0:8080") {
		t.Fatalf("check: want a refusal naming server.app_token, got %v", err)
	}
}

// TestAppTokenProcess runs `wxgate serve` on every interface with server.app_token: a request
// without the token or with a wrong one gets 401 wxgate.unauthorized as JSON; with the right one
// an xpay call and a WeChat Pay APIv3 order go through, WeChat (the emulator) never receives the
// app's token, and the token shows in no log line, no error and no metric.
func TestAppTokenProcess(t *testing.T) {
	const token = "deploy-test-bearer-token-6f1d2c3b4a"
	appPort := freePort(t)
	e := newDeployEnv(t, fmt.Sprintf("app_listen = \"0.0.0.0:%d\"\napp_token = \"env:WXGATE_TEST_APP_TOKEN\"", appPort))
	p := startServe(t, e.path, "WXGATE_TEST_APP_TOKEN="+token)
	if a := logAttrs(p.line("wxgate serving")); a["app_token"] != "env:WXGATE_TEST_APP_TOKEN" || !strings.HasSuffix(a["app"], fmt.Sprintf(":%d", appPort)) {
		t.Errorf("start-up line: %s", p.line("wxgate serving"))
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	call := func(auth, header, value, path, body string) (int, []byte, string) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(base + path)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set(header, value)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.SetBodyString(body)
		if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode(), append([]byte(nil), resp.Body()...), string(resp.Header.Peek("WWW-Authenticate"))
	}
	const xpayBody = `{"env":0,"order_id":"token-test"}`
	for _, auth := range []string{"", "Bearer wrong-token-wrong-token-00", "Basic " + token, token, "Bearer " + token + "x", "Bearer"} {
		status, body, challenge := call(auth, proxy.HeaderApp, "shop", "/xpay/query_order", xpayBody)
		var out struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if status != 401 || json.Unmarshal(body, &out) != nil || out.Error.Code != proxy.CodeUnauthorized || challenge != `Bearer realm="wxgate"` {
			t.Fatalf("Authorization %q: want 401 %s as JSON, got %d %s (WWW-Authenticate %q)", auth, proxy.CodeUnauthorized, status, body, challenge)
		}
		if strings.Contains(string(body), token) {
			t.Fatalf("the 401 answer echoes the token: %s", body)
		}
	}
	if n := e.emu.Calls("/xpay/query_order"); n != 0 {
		t.Fatalf("refused requests reached WeChat: %d calls", n)
	}

	for _, auth := range []string{"Bearer " + token, "bearer " + token} {
		status, body, _ := call(auth, proxy.HeaderApp, "shop", "/xpay/query_order", xpayBody)
		if status != 200 || strings.Contains(string(body), `"errcode":268490003`) || strings.Contains(string(body), `"errcode":40001`) {
			t.Fatalf("xpay with the token (%q): %d %s", auth, status, body)
		}
	}
	order := `{"appid":"wx00000000000000a1","mchid":"1900000109","description":"token test","out_trade_no":"TOKEN-1",` +
		`"notify_url":"https://example.com/notify","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"o-token-test"}}`
	status, body, _ := call("Bearer "+token, proxy.HeaderMerchant, "till", "/v3/pay/transactions/jsapi", order)
	if status != 200 || !strings.Contains(string(body), "prepay_id") {
		t.Fatalf("APIv3 order with the token: %d %s", status, body)
	}
	seen := e.wechat.seen()
	if !strings.Contains(seen, "/v3/pay/transactions/jsapi") || !strings.Contains(seen, "WECHATPAY2-SHA256-RSA2048") {
		t.Fatalf("the emulator did not record the signed order:\n%s", seen)
	}
	if strings.Contains(seen, token) || strings.Contains(strings.ToLower(seen), "bearer") {
		t.Fatalf("WeChat received the app's token:\n%s", seen)
	}

	_, metrics, err := fasthttp.GetTimeout(nil, fmt.Sprintf("http://127.0.0.1:%d/metrics", e.admPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(metrics), proxy.CodeUnauthorized) {
		t.Errorf("/metrics does not count %s:\n%s", proxy.CodeUnauthorized, metrics)
	}
	p.stop(t)
	for what, text := range map[string]string{"metrics": string(metrics), "logs": p.logs.String()} {
		if strings.Contains(text, token) {
			t.Fatalf("the token appears in the %s", what)
		}
	}
}

// TestStartupLineRedisHidesCredentials: with the Redis store the start-up line names the address,
// the db-less host:port, never the password in redis_url.
func TestStartupLineRedisHidesCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wxgate.toml")
	text := "[store]\nkind = \"redis\"\nredis_url = \"redis://wxgate:deploy-redis-password@10.1.2.3:6380/2\"\n" +
		"[[app]]\nname = \"shop\"\nappid = \"wx00000000000000a1\"\nsecret = \"deploy-test-app-secret-1\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := policies.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var ls proxy.Listeners
	for _, p := range []*net.Listener{&ls.App, &ls.Callback, &ls.Admin} {
		if *p, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer (*p).Close()
	}
	line := fmt.Sprint(startupAttrs(cfg, ls, 1024)...)
	attrs := startupAttrs(cfg, ls, 1024)
	got := map[string]any{}
	for i := 0; i+1 < len(attrs); i += 2 {
		got[attrs[i].(string)] = attrs[i+1]
	}
	if got["store"] != "redis" || got["store_redis"] != "10.1.2.3:6380" || got["store_prefix"] != "wxgate:" || got["merchants"] != "" || got["apps"] != "shop" {
		t.Fatalf("start-up attributes: %v", got)
	}
	if strings.Contains(line, "deploy-redis-password") || strings.Contains(line, "deploy-test-app-secret-1") {
		t.Fatalf("the start-up line reveals a secret: %s", line)
	}
}

// TestVersionCommand checks `wxgate version` against what the Go toolchain itself recorded in the
// binary (`go version -m`): the version set with -ldflags, the VCS revision and modified flag
// when Go recorded them ("unknown" when not: go run, go test, a git worktree, -buildvcs=false), and
// the Go version. Then it builds a clean clone of HEAD, where Go always records the revision.
func TestVersionCommand(t *testing.T) {
	goVersion := strings.TrimSpace(runOut(t, "", "go", "env", "GOVERSION"))
	check := func(t *testing.T, bin, wantVersion string) {
		t.Helper()
		out := runOut(t, "", bin, "version")
		meta := runOut(t, "", "go", "version", "-m", bin)
		rev := regexp.MustCompile(`(?m)^\s+build\s+vcs\.revision=(\w+)$`).FindStringSubmatch(meta)
		modified := strings.Contains(meta, "vcs.modified=true")
		wantCommit := "commit: unknown"
		if rev != nil {
			wantCommit = "commit: " + rev[1]
			if modified {
				wantCommit += " (modified)"
			}
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 || lines[0] != "wxgate "+wantVersion || !strings.HasPrefix(lines[1], wantCommit) || lines[2] != "go: "+goVersion {
			t.Fatalf("wxgate version printed:\n%s\nwant wxgate %s, %s, go: %s (go version -m says:\n%s)", out, wantVersion, wantCommit, goVersion, meta)
		}
	}
	t.Run("test build", func(t *testing.T) {
		bin := wxgateBinary(t)
		meta := runOut(t, "", "go", "version", "-m", bin)
		want := "dev"
		if m := regexp.MustCompile(`(?m)^\s+mod\s+github.com/wxgate/wxgate\s+(\S+)`).FindStringSubmatch(meta); m != nil && m[1] != "(devel)" {
			want = m[1]
		}
		check(t, bin, want)
	})
	t.Run("clean clone with ldflags", func(t *testing.T) {
		top := strings.TrimSpace(runOut(t, "", "git", "rev-parse", "--show-toplevel"))
		head := strings.TrimSpace(runOut(t, top, "git", "rev-parse", "HEAD"))
		clone := filepath.Join(t.TempDir(), "src")
		runOut(t, "", "git", "clone", "-q", "--no-checkout", top, clone)
		runOut(t, clone, "git", "checkout", "-q", head)
		bin := filepath.Join(t.TempDir(), "wxgate")
		runOut(t, filepath.Join(clone, "cmd", "wxgate"), "go", "build", "-buildvcs=true",
			"-ldflags", "-X main.version=9.9.9-test -X main.commit=not-this-one", "-o", bin, ".")
		check(t, bin, "9.9.9-test")
		if out := runOut(t, "", bin, "version"); !strings.Contains(out, "commit: "+head+"\n") {
			t.Fatalf("a clean clone of %s printed:\n%s", head, out)
		}
	})
}

// runOut runs a command in dir ("" for the current one) and returns its standard output.
func runOut(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

// TestCheckShowsSocketAndToken: `wxgate check` shows the app socket's mode and where the app
// token comes from, never the token.
func TestCheckShowsSocketAndToken(t *testing.T) {
	t.Setenv("WXGATE_TEST_APP_TOKEN", "check-shows-the-source-only-0123")
	dir := t.TempDir()
	path := filepath.Join(dir, "wxgate.toml")
	text := "[server]\napp_listen = \"unix:app.sock\"\napp_socket_mode = \"0600\"\napp_token = \"env:WXGATE_TEST_APP_TOKEN\"\n" +
		"[[app]]\nname = \"shop\"\nappid = \"wx00000000000000a1\"\nsecret = \"deploy-test-app-secret-1\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCmd(t, "check", "-config", path)
	if err != nil {
		t.Fatal(err)
	}
	want := "unix:" + filepath.Join(dir, "app.sock") + "  (signing proxy and /wxgate/* helpers; socket mode 0600; bearer token env:WXGATE_TEST_APP_TOKEN)"
	if !strings.Contains(out, want) || strings.Contains(out, "check-shows-the-source-only-0123") {
		t.Fatalf("check summary, want %q:\n%s", want, out)
	}
}
