package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gatewayAddrs are a gateway's three listener addresses (host:port).
type gatewayAddrs struct{ app, callback, admin string }

// startLoggedGateway starts a gateway for cfg that logs to the returned buffer.
func startLoggedGateway(t *testing.T, cfg *policies.Config) (gatewayAddrs, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	gw, err := proxy.NewGateway(cfg, proxy.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := proxy.Listen(cfg.Server)
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(gw)
	srv.Start(ls)
	t.Cleanup(func() { srv.Shutdown(); gw.Close() })
	return gatewayAddrs{app: ls.App.Addr().String(), callback: ls.Callback.Addr().String(), admin: ls.Admin.Addr().String()}, logs
}

// rawExchange writes raw to addr and reads the whole answer until the server closes or 5 s pass.
func rawExchange(t *testing.T, addr, raw string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return out
}

// rawStatus writes one request to addr and parses the status and body of the first answer.
func rawStatus(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	out := rawExchange(t, addr, raw)
	var status int
	if _, err := fmt.Sscanf(string(out), "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("no HTTP answer to %q: %q", raw, out)
	}
	_, body, _ := strings.Cut(string(out), "\r\n\r\n")
	return status, body
}

// TestRequestTargetMustBeAPath: an absolute-form target or a #fragment would be signed as written
// but sent altered; every listener refuses both with a 400 naming the problem.
func TestRequestTargetMustBeAPath(t *testing.T) {
	e := startEnv(t, nil)
	addrs, _ := startLoggedGateway(t, e.cfg)
	for _, tc := range []struct{ listener, addr, target string }{
		{"app", addrs.app, "http://evil.example/v3/pay/transactions/id/4200?mchid=1900000001"},
		{"app", addrs.app, "/v3/pay/transactions/id/4200?mchid=1900000001#x"},
		{"app", addrs.app, "/xpay/query_order#frag"},
		{"callback", addrs.callback, "http://evil.example/callbacks/wechatpay/pk"},
		{"callback", addrs.callback, "/callbacks/wechatpay/pk#frag"},
		{"admin", addrs.admin, "http://evil.example/healthz"},
		{"admin", addrs.admin, "/healthz#frag"},
	} {
		t.Run(tc.listener+" "+tc.target, func(t *testing.T) {
			status, body := rawStatus(t, tc.addr, "GET "+tc.target+" HTTP/1.1\r\nHost: wxgate\r\nConnection: close\r\n\r\n")
			if status != 400 || !strings.Contains(body, "wxgate.bad_request") || !strings.Contains(body, "target") {
				t.Fatalf("got %d %s", status, body)
			}
		})
	}
	if status, _ := rawStatus(t, addrs.admin, "GET /healthz HTTP/1.1\r\nHost: wxgate\r\nConnection: close\r\n\r\n"); status != 200 {
		t.Fatalf("a plain path: %d", status)
	}
}

// TestCallbackBodyLimit: the callback listener reads at most callback_max_body_bytes, announced
// or chunked, and answers 413 naming the key.
func TestCallbackBodyLimit(t *testing.T) {
	e := startEnv(t, nil)
	cfg := e.configWith(func(s string) string {
		return strings.Replace(s, "[server]\n", "[server]\ncallback_max_body_bytes = 4096\n", 1)
	})
	addrs, _ := startLoggedGateway(t, cfg)
	big := strings.Repeat("x", 5000)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
	for _, tc := range []struct{ name, raw string }{
		{"announced", "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n{"},
		{"sent", "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + big},
		{"chunked", "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawStatus(t, addrs.callback, tc.raw)
			if status != 413 || !strings.Contains(body, "server.callback_max_body_bytes") {
				t.Fatalf("got %d %s", status, body)
			}
		})
	}
	// Within the limit, to its last byte, the body reaches the verification (and fails it: no
	// signature); one byte more, announced or chunked, is refused.
	exact := strings.Repeat("x", 4096)
	for _, tc := range []struct {
		name, raw string
		want      int
	}{
		{"small", "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 401},
		{"exactly the limit", "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4096\r\n\r\n" + exact, 401},
		{"the limit, chunked", fmt.Sprintf("POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", 4096, exact), 401},
		{"one byte more, chunked", fmt.Sprintf("POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%sx\r\n0\r\n\r\n", 4097, exact), 413},
	} {
		if status, body := rawStatus(t, addrs.callback, tc.raw); status != tc.want {
			t.Fatalf("%s: %d %s", tc.name, status, body)
		}
	}
}

// TestSilentCloseWhenNothingSent: a connection that sends nothing is closed at the read timeout
// without an unsolicited answer.
func TestSilentCloseWhenNothingSent(t *testing.T) {
	e := startEnv(t, nil)
	cfg := e.configWith(func(s string) string {
		return strings.Replace(s, "[server]\n", "[server]\ncallback_read_timeout = \"200ms\"\nread_timeout = \"200ms\"\n", 1)
	})
	addrs, _ := startLoggedGateway(t, cfg)
	for name, addr := range map[string]string{"callback": addrs.callback, "app": addrs.app} {
		if out := rawExchange(t, addr, ""); len(out) != 0 {
			t.Errorf("%s listener answered a connection that sent nothing: %q", name, out)
		}
	}
	// A request that started but stalled still gets its answer.
	if out := rawExchange(t, addrs.callback, "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\n"); !bytes.HasPrefix(out, []byte("HTTP/1.1 4")) {
		t.Errorf("a stalled request got %q", out)
	}
}

// TestServerLogsCarryNoRequestBytes: fasthttp's own messages about malformed or oversized
// requests never carry the request's bytes (a session_key here), and repeats are rate-limited.
func TestServerLogsCarryNoRequestBytes(t *testing.T) {
	e := startEnv(t, nil)
	addrs, logs := startLoggedGateway(t, e.cfg)
	const sessionKey, openid = "c2Vzc2lvbi1rZXktdGhhdC1tdXN0LW5vdC1sZWFr", "o-openid-that-must-not-leak"
	body := fmt.Sprintf(`{"openid":%q,"session_key":%q}`, openid, sessionKey)
	malformed := "POST /wxgate/session-keys HTTP/1.1\r\nHost: x\r\nX-Session: " + sessionKey + "\r\nbroken header line " + openid + "\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
	if status, _ := rawStatus(t, addrs.app, malformed); status != 400 {
		t.Fatalf("a malformed request: %d", status)
	}
	oversized := "POST /xpay/query_order HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n"
	for range 50 {
		if status, _ := rawStatus(t, addrs.app, oversized); status != 413 {
			t.Fatalf("an oversized request: %d", status)
		}
	}
	text := logs.String()
	for _, secret := range []string{sessionKey, openid, "X-Session"} {
		if strings.Contains(text, secret) {
			t.Fatalf("the log carries request bytes (%q):\n%s", secret, text)
		}
	}
	lines := 0
	for line := range strings.Lines(text) {
		if strings.Contains(line, "fasthttp") {
			lines++
		}
	}
	if lines == 0 || lines > 3 {
		t.Fatalf("want 1-3 rate-limited fasthttp lines for 51 bad requests, got %d:\n%s", lines, text)
	}
}

// TestReadyVerdictCached: /readyz for an app whose token fetch fails asks WeChat once per
// verdict, not once per probe.
func TestReadyVerdictCached(t *testing.T) {
	e := startEnv(t, nil)
	cfg := e.configWith(func(s string) string { return strings.Replace(s, "drama-app-secret-0b7e", "drama-wrong-secret-99", 1) })
	addrs, _ := startLoggedGateway(t, cfg)
	before := e.emu.Calls("/cgi-bin/stable_token")
	for range 10 {
		if status, body := rawStatus(t, addrs.admin, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); status != 503 || !strings.Contains(body, "drama") {
			t.Fatalf("readyz: %d %s", status, body)
		}
	}
	// One verdict: one fetch for each of the three apps (two succeed and are cached anyway).
	if got := e.emu.Calls("/cgi-bin/stable_token") - before; got > 3 {
		t.Fatalf("10 probes made %d token fetches, want at most 3", got)
	}
}

// TestCallbackConnectionsPerIP: past callback_max_conns_per_ip, a further connection from the
// same address is refused with 429 while another address is still served.
func TestCallbackConnectionsPerIP(t *testing.T) {
	e := startEnv(t, nil)
	cfg := e.configWith(func(s string) string {
		return strings.Replace(s, "[server]\n", "[server]\ncallback_max_conns_per_ip = 2\n", 1)
	})
	addrs, _ := startLoggedGateway(t, cfg)
	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addrs.callback)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Two connections from 127.0.0.3 each hold a request open (a body still to come).
	for range 2 {
		c := dial("127.0.0.3")
		io.WriteString(c, "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
	}
	third := dial("127.0.0.3")
	third.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(third, "GET /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\n\r\n")
	out, _ := io.ReadAll(third)
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 429")) {
		t.Fatalf("a third connection from one address got %q", out)
	}
	other := dial("127.0.0.4")
	other.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(other, "POST /callbacks/wechatpay/pk HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
	out, _ = io.ReadAll(other)
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 401")) {
		t.Fatalf("another address got %q", out)
	}
}
