package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
)

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestCheckExampleConfig: `wxgate check` refuses config.example.toml as shipped, naming every
// placeholder's key, and accepts it once they are filled in, printing the summary without a secret.
func TestCheckExampleConfig(t *testing.T) {
	t.Setenv("WXGATE_APP_SECRET", "the-app-secret-value")
	t.Setenv("WXGATE_FORWARD_SECRET", "the-forward-secret-value")
	_, _, err := runCmd(t, "check", "-config", "../../config.example.toml", "-routes")
	var ve *policies.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("check of the example with its placeholders: %v, want every problem", err)
	}
	fills := map[string]string{
		"replace-with-the-production-appkey":           "the-production-appkey",
		"replace-with-the-sandbox-appkey":              "the-sandbox-appkey",
		"replace-with-the-push-token":                  "the-push-token",
		"replace-with-the-43-character-encodingaeskey": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
	}
	for _, key := range []string{"app[0].xpay.app_key", "app[0].xpay.sandbox_app_key", "app[0].push.token", "app[0].push.encoding_aes_key"} {
		if !strings.Contains(err.Error(), key+": still holds the example's placeholder") {
			t.Errorf("check does not name the placeholder at %s:\n%v", key, err)
		}
	}
	raw, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	filled := string(raw)
	for placeholder, value := range fills {
		filled = strings.ReplaceAll(filled, placeholder, value)
	}
	path := filepath.Join(t.TempDir(), "wxgate.toml")
	if err := os.WriteFile(path, []byte(filled), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCmd(t, "check", "-config", path, "-routes")
	if err != nil {
		t.Fatalf("check of the filled-in example failed: %v", err)
	}
	for _, want := range []string{"is valid", "shop", "wx0123456789abcdef", "env:WXGATE_APP_SECRET", "/xpay/currency_pay", "user signature", "127.0.0.1:8080"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"the-app-secret-value", "the-production-appkey", "the-push-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("summary reveals a secret %q", secret)
		}
	}
}

func TestCheckReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("[server]\napp_listen = \"nope\"\n[[app]]\nname = \"A B\"\nappid = \"x\"\nsecret = \"env:WXGATE_UNSET_FOR_TEST\"\n"), 0o600)
	_, _, err := runCmd(t, "check", "-config", path)
	var ve *policies.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) < 4 {
		t.Fatalf("want every problem at once, got %v", err)
	}
	if _, _, err := runCmd(t, "check", "-config", filepath.Join(t.TempDir(), "missing.toml")); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSignCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sign", "pay-sig", "-key", "12345", "-uri", "/xpay/query_user_balance", "-body", `{"openid": "xxx", "user_ip": "127.0.0.1", "env": 0}`}, "c37809f27c6d7fd1837ad2500a04512b66b34fd793a39a385fade56dca89a4b5"},
		{[]string{"sign", "user", "-key", "o0q0otL8aEzpcZL/FT9WsQ==", "-body", `{"foo":"bar"}`}, "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"},
	}
	for _, tt := range tests {
		out, _, err := runCmd(t, tt.args...)
		if err != nil || strings.TrimSpace(out) != tt.want {
			t.Errorf("%v: %q %v, want %s", tt.args, out, err, tt.want)
		}
	}
	var ue usageError
	if _, _, err := runCmd(t, "sign", "pay-sig", "-key", "k", "-uri", "xpay/x"); !errors.As(err, &ue) {
		t.Errorf("uri without slash: want a usage error, got %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	var ue usageError
	for _, args := range [][]string{nil, {"frobnicate"}, {"check", "-nope"}, {"serve", "extra"}} {
		if _, _, err := runCmd(t, args...); !errors.As(err, &ue) {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
	if out, _, err := runCmd(t, "version"); err != nil || !strings.HasPrefix(out, "wxgate ") {
		t.Errorf("version: %q %v", out, err)
	}
}

// TestHelpExitsZero: every command's -h (and every sign kind's, and store's subcommands') prints
// its usage to stderr, nothing to stdout, and succeeds (main exits 0 when run returns nil). The
// command list is read from the top-level usage, so a new command without a -h case fails here.
func TestHelpExitsZero(t *testing.T) {
	kinds := []string{"pay-sig", "client-pay-sig", "user"}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"Usage:", "wxgate serve", "wxgate emulate"}},
		{[]string{"help"}, []string{"Usage:", "wxgate sign"}},
		{[]string{"serve", "-h"}, []string{"Usage: wxgate serve", "-config"}},
		{[]string{"emulate", "-h"}, []string{"Usage: wxgate emulate", "-pay-key", "-out", "test:<user>", "config file's folder"}},
		{[]string{"demo", "-h"}, []string{"Usage: wxgate demo"}},
		{[]string{"check", "-h"}, []string{"Usage: wxgate check", "-routes"}},
		{[]string{"check", "--help"}, []string{"Usage: wxgate check"}},
		{[]string{"store", "-h"}, []string{"wxgate store export", "wxgate store import"}},
		{[]string{"store", "export", "-h"}, []string{"wxgate store export", "-secrets"}},
		{[]string{"store", "import", "-h"}, []string{"wxgate store import", "-in"}},
		{[]string{"sign", "-h"}, append([]string{"Usage: wxgate sign KIND"}, kinds...)},
		{[]string{"sign", "pay-sig", "-h"}, append([]string{"-uri", "-key"}, kinds...)},
		{[]string{"sign", "client-pay-sig", "-h"}, append([]string{"-key"}, kinds...)},
		{[]string{"sign", "user", "-h"}, append([]string{"-body"}, kinds...)},
		{[]string{"verify-event", "-h"}, []string{"Usage: wxgate verify-event", "-signature"}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, err := runCmd(t, tt.args...)
			if err != nil {
				t.Fatalf("want success, got %v", err)
			}
			if out != "" {
				t.Errorf("help went to stdout: %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("usage lacks %q:\n%s", w, errOut)
				}
			}
		})
		if len(tt.args) == 2 && tt.args[1] == "-h" {
			covered[tt.args[0]] = true
		}
	}
	for _, line := range strings.Split(usage, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "wxgate" && f[1] != "COMMAND" && f[1] != "version" && !covered[f[1]] {
			t.Errorf("command %q of the usage has no -h case here", f[1])
		}
	}
}

// TestDemo runs `wxgate demo` in-process: every step must succeed and be printed.
func TestDemo(t *testing.T) {
	out, errOut, err := runCmd(t, "demo")
	if err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"/sns/jscode2session", "/xpay/query_user_balance", "/xpay/present_currency", "/xpay/currency_pay",
		"/xpay/cancel_currency_pay", "/xpay/query_order", "/wxgate/xpay/payment-params", "steps succeeded", "xpay_coin_pay_notify", "COMPLAINT.CREATE", "TRANSACTION.SUCCESS", "/v3/pay/transactions/jsapi", "/wxgate/v3/payment-params", "/v3/refund/domestic/refunds", "/pay/unifiedorder", "SIGNTEST",
		"xpay_subscribe_ios_refund_query_notify", `"evidence":"VIP month delivered`, "/v3/pay/partner/transactions/jsapi", "requestPayment:ok",
		"/v3/merchant-service/images/upload", "X-Wxgate-Unsigned: true",
		"/wxa/game/pay", "minigame_coin_deliver_completed", "minigame_game_pay_goods_deliver_notify", "wx.requestMidasPaymentGameItem"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`All \d+ steps succeeded`).MatchString(out) {
		t.Errorf("demo output lacks its summary line:\n%s", out)
	}
	// The partner order paid in the sub-merchant's mini program is notified to the provider.
	if !strings.Contains(out, `app received wechatpay.v3 TRANSACTION.SUCCESS (X-Wxgate-Signature verified) {"sp_appid"`) {
		t.Errorf("demo output lacks the partner TRANSACTION.SUCCESS event")
	}
	for _, want := range []string{"requestMerchantTransfer:ok", "/v3/transferdownload/signfile?token=", "application/pdf"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q (the transfer's e-receipt)", want)
		}
	}
	for _, want := range []string{"/v3/fund-app/mch-transfer/transfer-bills", "X-Wxgate-Encrypt: user_name", `WeChat Pay decrypted user_name with its private key: "张三"`, `"user_name":"张三"`} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q (the merchant transfer)", want)
		}
	}
	if strings.Contains(out, `"session_key":"`) && !strings.Contains(out, `"session_key":"[redacted]"`) {
		t.Errorf("demo prints a session_key:\n%s", out)
	}
}

// TestServeProcess builds the real binary, runs `wxgate serve` on a TOML file against an emulator,
// makes a signed call through it, and stops it with SIGTERM.
func TestServeProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wxgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	emuLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appPort, adminPort := freePort(t), freePort(t)
	cfgText := fmt.Sprintf(`
[server]
app_listen = "127.0.0.1:%d"
admin_listen = "127.0.0.1:%d"
[upstream]
weixin = "http://%s"
[[app]]
name = "proc"
appid = "wx00000000000000d4"
secret = "env:PROC_SECRET"
[app.xpay]
app_key = "file:appkey.txt"
`, appPort, adminPort, emuLn.Addr())
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "wxgate.toml"), []byte(cfgText), 0o600)
	os.WriteFile(filepath.Join(dir, "appkey.txt"), []byte("proc-app-key-1234\n"), 0o600)
	t.Setenv("PROC_SECRET", "proc-secret-5678")
	emu := emulatorFor(t, filepath.Join(dir, "wxgate.toml"))
	go emu.Serve(emuLn)

	cmd := exec.Command(bin, "serve", "-config", filepath.Join(dir, "wxgate.toml"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := make(chan string, 100)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			logs <- sc.Text()
			if !once && strings.Contains(sc.Text(), "wxgate serving") {
				close(ready)
				once = true
			}
		}
		close(logs)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("wxgate serve did not start")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	resp, err := http.Get(base + "/sns/jscode2session?js_code=test:proc")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "openid") {
		t.Fatalf("login through the process: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(base+"/xpay/query_order", "application/json", strings.NewReader(`{"env":0,"order_id":"nothing-here"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(body), "268490003") || strings.Contains(string(body), "40001") {
		t.Fatalf("signed call through the process: %d %s", resp.StatusCode, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wxgate serve did not exit cleanly on SIGTERM: %v", err)
	}
	var all strings.Builder
	for l := range logs {
		all.WriteString(l + "\n")
	}
	for _, secret := range []string{"proc-secret-5678", "proc-app-key-1234"} {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("logs reveal a secret:\n%s", all.String())
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestVerifyEventCommand(t *testing.T) {
	body := `{"id":"EV-1"}`
	now := time.Now().Unix()
	// Computed independently with crypto/hmac, as an app would.
	mac := hmac.New(sha256.New, []byte("forward-secret-for-cmd"))
	fmt.Fprintf(mac, "%d.%s", now, body)
	header := fmt.Sprintf("t=%d,v1=%s", now, hex.EncodeToString(mac.Sum(nil)))
	if out, _, err := runCmd(t, "verify-event", "-secret", "forward-secret-for-cmd", "-signature", header, "-body", body); err != nil || strings.TrimSpace(out) != "valid" {
		t.Fatalf("valid event: %q %v", out, err)
	}
	if _, _, err := runCmd(t, "verify-event", "-secret", "forward-secret-for-cmd", "-signature", header, "-body", body+" "); err == nil {
		t.Fatal("a changed body verified")
	}
}
