package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
)

// The attack tests run `wxgate serve` as a real process (its memory and descriptors are its own)
// and attack its callback listener from this one, over loopback only, bounded in count and time.

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// wxgateBinary builds the wxgate binary once for the test binary.
func wxgateBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wxgate-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "wxgate")
		if out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// logLines collects a process's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
	added chan struct{} // signalled on every new line
}

func (l *logLines) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

// has reports whether a line contains s.
func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// waitFor waits until a line contains s.
func (l *logLines) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !l.has(s) {
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("no log line with %q within %s:\n%s", s, timeout, l)
		}
	}
}

// eventSink is the app's event endpoint: it accepts every event and counts them by id.
type eventSink struct {
	url    string
	mu     sync.Mutex
	ids    map[string]int
	bodies []string // every event received, in order
}

func startEventSink(t *testing.T) *eventSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &eventSink{url: "http://" + ln.Addr().String() + "/events", ids: map[string]int{}}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		s.mu.Lock()
		s.ids[string(ctx.Request.Header.Peek("X-Wxgate-Event-Id"))]++
		s.bodies = append(s.bodies, string(ctx.PostBody()))
		s.mu.Unlock()
		ctx.SetStatusCode(fasthttp.StatusOK)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return s
}

// received is how many events the sink accepted whose body holds marker.
func (s *eventSink) received(marker string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.bodies {
		if strings.Contains(b, marker) {
			n++
		}
	}
	return n
}

// count is how many events the sink accepted.
func (s *eventSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.ids {
		n += c
	}
	return n
}

// gatewayProcess is a running `wxgate serve` with one app that has message push (safe mode) and
// forwards to an eventSink; emu builds that app's genuine pushes.
type gatewayProcess struct {
	cmd         *exec.Cmd
	pid         int
	callbackURL string
	appURL      string
	adminURL    string
	appID       string
	emu         *emulator.Emulator
	sink        *eventSink
	logs        *logLines
	exited      chan error
}

// startGatewayProcess runs `wxgate serve` with serverExtra added to its [server] section.
func startGatewayProcess(t *testing.T, serverExtra string) *gatewayProcess {
	t.Helper()
	bin := wxgateBinary(t)
	sink := startEventSink(t)
	dir := t.TempDir()
	appPort, cbPort, adminPort := freePort(t), freePort(t), freePort(t)
	const appID = "wx00000000000000e5"
	text := fmt.Sprintf(`
[server]
app_listen = "127.0.0.1:%d"
callback_listen = "127.0.0.1:%d"
admin_listen = "127.0.0.1:%d"
max_conns = 2000
callback_max_conns = 4000
%s
[upstream]
weixin = "http://127.0.0.1:9"
[forward]
secret = "attack-test-forward-secret"
[[app]]
name = "door"
appid = %q
secret = "attack-test-app-secret"
forward_url = %q
[app.push]
token = "attack-test-push-token"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
`, appPort, cbPort, adminPort, serverExtra, appID, sink.url)
	path := filepath.Join(dir, "wxgate.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	emu := emulatorFor(t, path)
	cmd := exec.Command(bin, "serve", "-config", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gatewayProcess{cmd: cmd, pid: cmd.Process.Pid, appID: appID, emu: emu, sink: sink,
		callbackURL: fmt.Sprintf("http://127.0.0.1:%d", cbPort), appURL: fmt.Sprintf("http://127.0.0.1:%d", appPort), adminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		logs: &logLines{added: make(chan struct{}, 1)}, exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.add(sc.Text())
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	p.logs.waitFor(t, "wxgate serving", 30*time.Second)
	return p
}

// push delivers one genuine, freshly signed message push and reports whether wxgate
// acknowledged it.
func (p *gatewayProcess) push(t *testing.T, n int) bool {
	t.Helper()
	msg := fmt.Sprintf(`{"ToUserName":"gh_door","FromUserName":"o-attack-%d","CreateTime":%d,"MsgType":"event","Event":"xpay_goods_deliver_notify","OutTradeNo":"attack-%d"}`,
		n, time.Now().Unix(), n)
	note, err := p.emu.BuildPushMessage(p.appID, []byte(msg), p.callbackURL+"/callbacks/message/door", emulator.NotifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	acked, status, body, err := p.emu.Deliver(note)
	if err != nil {
		t.Fatalf("push %d: %v", n, err)
	}
	if !acked {
		t.Logf("push %d not acknowledged: %d %s", n, status, body)
	}
	return acked
}

// openFDs counts the process's open descriptors.
func (p *gatewayProcess) openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// statusKB reads a "Name: N kB" line of the process's /proc status (VmRSS, VmHWM).
func (p *gatewayProcess) statusKB(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", p.pid, name)
	return 0
}

// get fetches an admin URL path.
func (p *gatewayProcess) get(t *testing.T, path string) (int, string) {
	t.Helper()
	status, body, err := fasthttp.GetTimeout(nil, p.adminURL+path, 5*time.Second)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return status, string(body)
}

// alive fails the test if the process has exited.
func (p *gatewayProcess) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("wxgate exited (%v):\n%s", err, p.logs)
	default:
	}
}

// dialFrom connects to addr from the loopback address local (127.0.0.0/8 is all loopback).
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// TestCallbackListenerSurvivesDescriptorExhaustion: with the process's descriptor limit just
// above what it holds, 80 idle connections to the callback port exhaust it. The listener keeps
// accepting once they close (fasthttp alone stops for good: "Permanent error when accepting"),
// and a genuine notification is then accepted and forwarded.
func TestCallbackListenerSurvivesDescriptorExhaustion(t *testing.T) {
	p := startGatewayProcess(t, "")
	if !p.push(t, 0) {
		t.Fatalf("a genuine push before the attack was not acknowledged:\n%s", p.logs)
	}
	// A limit just above what the process holds (like `ulimit -n 64` at start-up), set from
	// outside as production's own leaks or bursts would reach it.
	limit := uint64(p.openFDs(t) + 8)
	if err := unix.Prlimit(p.pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	addr := strings.TrimPrefix(p.callbackURL, "http://")
	var conns []net.Conn
	for range 80 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second) // queued by the kernel when not accepted
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	p.logs.waitFor(t, "too many open files", 30*time.Second)
	for _, c := range conns {
		c.Close()
	}
	if !p.push(t, 1) {
		t.Fatalf("a genuine push after the descriptors came back was not acknowledged:\n%s", p.logs)
	}
	p.alive(t)
	if p.logs.has("Permanent error") {
		t.Fatalf("the listener gave up accepting:\n%s", p.logs)
	}
	if got := p.sink.count(); got != 2 {
		t.Fatalf("the app got %d events, want 2", got)
	}
	if status, body := p.get(t, "/healthz"); status != 200 {
		t.Fatalf("/healthz %d %s", status, body)
	}
	if _, body := p.get(t, "/metrics"); !strings.Contains(body, `wxgate_accept_failures_total{listener="callback"}`) ||
		strings.Contains(body, `wxgate_accept_failures_total{listener="callback"} 0`) {
		t.Fatalf("the accept failures are not counted:\n%s", body)
	}
}

// TestCallbackListenerSlowBodyMemory: 1000 connections from ten addresses each announce a body
// (Content-Length 1 MiB, or 60000 bytes, just under callback_max_body_bytes) and send one byte
// of it. Those over the limit are refused after that byte; those under it are held, and
// wxgate's memory grows with the bytes received, not the bytes announced: its peak RSS stays
// under 100 MB and under 40 kB per held connection (fasthttp alone allocated the announced size:
// 1 GB), and genuine notifications sent during the attack are acknowledged.
func TestCallbackListenerSlowBodyMemory(t *testing.T) {
	// A read timeout longer than the test: every attacking connection stays open throughout.
	p := startGatewayProcess(t, `callback_read_timeout = "60s"`)
	if !p.push(t, 0) {
		t.Fatalf("a genuine push before the attack was not acknowledged:\n%s", p.logs)
	}
	baseFDs := p.openFDs(t)
	baseRSS := p.statusKB(t, "VmRSS")
	addr := strings.TrimPrefix(p.callbackURL, "http://")
	const conns, sources = 1000, 10
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range conns {
		c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+i%sources), addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
		length := 1 << 20
		if i%2 == 1 {
			length = 60000
		}
		if _, err := fmt.Fprintf(c, "POST /callbacks/message/door HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", length); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the process holds at least the connections whose announced body is within the
	// limit (those over it are refused after their first byte). A few descriptors counted in
	// baseFDs (the first push's connections) may have closed since.
	deadline := time.Now().Add(30 * time.Second)
	for p.openFDs(t) < baseFDs+conns/2-8 {
		if time.Now().After(deadline) {
			t.Fatalf("wxgate holds %d descriptors, want at least %d", p.openFDs(t), baseFDs+conns/2-8)
		}
		p.alive(t)
		<-time.After(20 * time.Millisecond) // polling the kernel's view; there is nothing to wait on
	}
	for i := 1; i <= 5; i++ {
		if !p.push(t, i) {
			t.Fatalf("genuine push %d during the attack was not acknowledged", i)
		}
	}
	held := p.openFDs(t) - baseFDs
	peak := p.statusKB(t, "VmHWM")
	perConn := float64(peak-baseRSS) / float64(held)
	t.Logf("RSS before %d kB, peak %d kB with %d slow connections held (%.1f kB each)", baseRSS, peak, held, perConn)
	if peak > 100<<10 || perConn > 40 {
		t.Fatalf("peak RSS %d kB, %.1f kB per slow connection: want < 100 MB and < 40 kB each (memory must follow the bytes received)", peak, perConn)
	}
	if got := p.sink.count(); got != 6 {
		t.Fatalf("the app got %d events, want 6", got)
	}
}

// TestAppListenerRefusesBodiesWithoutTheToken: with [server] app_token set (an app listener
// others can reach), 200 connections without the token each announce a body (1 MiB on an xpay
// route, 5 MiB on an upload route) and send one byte of it. Each is answered 401 at once, before
// its body is read, and wxgate's peak RSS stays under 100 MB: fasthttp allocates a body's
// announced length before the handler checks the token, so these connections held 550 MB until
// their read timeout (and max_conns of them, gigabytes). A caller with the token still has its
// bodies read, up to the limits it had; one without it has its connection closed after the 401.
func TestAppListenerRefusesBodiesWithoutTheToken(t *testing.T) {
	const token = "attack-test-app-token-0123456789"
	p := startGatewayProcess(t, `app_token = "`+token+`"
read_timeout = "3s"`)
	addr := strings.TrimPrefix(p.appURL, "http://")
	const conns = 200
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
		path, length := "/xpay/query_order", 1<<20
		if i%2 == 1 {
			path, length = "/v3/merchant/media/upload", 5<<20
		}
		auth := ""
		if i%4 == 2 {
			auth = "Authorization: Bearer wrong-" + token + "\r\n"
		}
		if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n{", path, auth, length); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for i, c := range open {
		c.SetReadDeadline(deadline)
		line, err := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 401") {
			t.Fatalf("connection %d without the token: got %q (%v), want 401 before the body", i, line, err)
		}
	}
	peak := p.statusKB(t, "VmHWM")
	t.Logf("peak RSS %d kB after %d unauthenticated announced bodies", peak, conns)
	if peak > 100<<10 {
		t.Fatalf("peak RSS %d kB: the bodies announced without the token were allocated", peak)
	}
	// With the token, a body is read and the request served (an unknown route: 404), and the
	// body limit is max_body_bytes as before.
	body := strings.Repeat("x", 4000)
	for _, tc := range []struct {
		raw  string
		want string
	}{
		{"POST /not/routed HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 4000\r\n\r\n" + body, "HTTP/1.1 404"},
		{"POST /xpay/query_order HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 2097152\r\n\r\n{", "HTTP/1.1 413"},
		{"POST /not/routed HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4000\r\n\r\n" + body, "HTTP/1.1 401"},
		// Without the token a keep-alive connection is closed after the 401: it holds no slot.
		{"GET /not/routed HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 401"},
	} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, tc.raw)
		out, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(out), tc.want) {
			t.Errorf("%.60q: got %.200q, want %s", tc.raw, out, tc.want)
		}
		if tc.want == "HTTP/1.1 401" && !strings.Contains(string(out), "\r\nConnection: close\r\n") {
			t.Errorf("%.60q: a 401 that keeps the connection open: %q", tc.raw, out)
		}
	}
	p.alive(t)
}

// TestServeRefusesATooSmallDescriptorLimit: a hard open-file limit that cannot hold the
// configured connections stops `wxgate serve` at start-up with the numbers and the fix.
func TestServeRefusesATooSmallDescriptorLimit(t *testing.T) {
	bin := wxgateBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "wxgate.toml")
	text := fmt.Sprintf(`
[server]
app_listen = "127.0.0.1:%d"
callback_listen = "127.0.0.1:%d"
admin_listen = "127.0.0.1:%d"
[[app]]
name = "door"
appid = "wx00000000000000e5"
secret = "attack-test-app-secret"
`, freePort(t), freePort(t), freePort(t))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `ulimit -n 512 && exec "$0" serve -config "$1"`, bin, path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit status 1, got %v:\n%s", err, out)
	}
	for _, want := range []string{"open-file limit is 512", "server.max_conns", "LimitNOFILE"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "wxgate serving") {
		t.Errorf("wxgate started serving:\n%s", out)
	}
}

// emulatorFor is an emulator for the apps and merchants of the config file at path, shut down
// when the test ends; it serves nothing until the caller has it Serve.
func emulatorFor(t *testing.T, path string) *emulator.Emulator {
	t.Helper()
	cfg, err := policies.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := emulatorConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Shutdown() })
	return emu
}
