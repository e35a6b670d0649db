package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// writeClientCert writes a self-signed client certificate and its key (PEM) into dir.
func writeClientCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "1900000001"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "apiclient_cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "apiclient_key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// TestAPIv2ThroughProcesses runs `wxgate emulate` and a built `wxgate serve` on one config and
// makes a payout (client certificate, unsigned answer marked) and a sandbox order (sandbox key
// fetched with getsignkey) through the process; neither the APIv2 key nor the sandbox key
// appears in its logs.
func TestAPIv2ThroughProcesses(t *testing.T) {
	bin := wxgateBinary(t)
	keys := emulateKeys(t)
	dir := t.TempDir()
	writeKey(t, filepath.Join(dir, "merchant_key.pem"), keys[1])
	writeClientCert(t, dir)
	const apiv2Key = "proc-apiv2-key-0123456789abcdefg"
	os.WriteFile(filepath.Join(dir, "apiv2.txt"), []byte(apiv2Key+"\n"), 0o600)
	appPort, adminPort, cbPort := freePort(t), freePort(t), freePort(t)
	body := func(weixin, mch, pubID string) string {
		return fmt.Sprintf(`
[server]
app_listen = "127.0.0.1:%d"
admin_listen = "127.0.0.1:%d"
callback_listen = "127.0.0.1:%d"
[upstream]
weixin = %q
mch = %q
ca_file = "emulator-files/emulator-ca.pem"
`, appPort, adminPort, cbPort, weixin, mch) + emuAppConfig + fmt.Sprintf(`
[[merchant]]
name = "main"
mchid = "1900000001"
appid = "wx00000000000000e1"
serial_no = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
private_key_file = "merchant_key.pem"
apiv3_key = "0123456789abcdef0123456789abcdef"
public_key_id = %q
public_key_file = "emulator-files/wechatpay-pub.pem"
apiv2_key = "file:apiv2.txt"
client_cert_file = "apiclient_cert.pem"
client_key_file = "apiclient_key.pem"
`, pubID)
	}
	cfg := filepath.Join(dir, "wxgate.toml")
	os.WriteFile(cfg, []byte(body("https://api.weixin.qq.com", "https://api.mch.weixin.qq.com", "PUB_KEY_ID_0000000000000000000000000000000001")), 0o600)
	ready, _ := startEmulate(t, "-config", cfg)
	os.WriteFile(cfg, []byte(body(ready.Weixin, ready.Mch, ready.PublicKeyID)), 0o600)

	cmd := exec.Command(bin, "serve", "-config", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := make(chan string, 1000)
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			logs <- sc.Text()
			if !once && strings.Contains(sc.Text(), "wxgate serving") {
				close(started)
				once = true
			}
		}
		close(logs)
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("wxgate serve did not start")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	post := func(path, doc string) (*http.Response, string) {
		resp, err := http.Post(base+path, "text/xml", strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, ans := post("/mmpaymkttransfers/promotion/transfers", `<xml><partner_trade_no>proc0001</partner_trade_no><openid>o-proc</openid><check_name>NO_CHECK</check_name><amount>100</amount><desc>prize</desc></xml>`)
	if resp.StatusCode != 200 || !strings.Contains(ans, "<payment_no>") || resp.Header.Get("X-Wxgate-Unsigned") != "true" {
		t.Fatalf("payout through the process: %d %v %s", resp.StatusCode, resp.Header, ans)
	}
	resp, ans = post("/sandboxnew/pay/unifiedorder", `<xml><body>t</body><out_trade_no>proc-sbx</out_trade_no><total_fee>1</total_fee><spbill_create_ip>127.0.0.1</spbill_create_ip><notify_url>https://127.0.0.1:1/n</notify_url><trade_type>JSAPI</trade_type><openid>o-proc</openid></xml>`)
	if resp.StatusCode != 200 || !strings.Contains(ans, "<prepay_id>") || resp.Header.Get("X-Wxgate-Unsigned") != "" {
		t.Fatalf("sandbox order through the process: %d %s", resp.StatusCode, ans)
	}
	sandboxKey := emulatorSandboxKey(t, ready, apiv2Key)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wxgate serve did not exit cleanly: %v", err)
	}
	var all strings.Builder
	for l := range logs {
		all.WriteString(l + "\n")
	}
	for _, secret := range []string{apiv2Key, sandboxKey} {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("logs reveal a key:\n%s", all.String())
		}
	}
}

// emulatorSandboxKey asks the emulator's getsignkey for the merchant's sandbox key, as wxgate did.
func emulatorSandboxKey(t *testing.T, ready EmulatorReady, apiv2Key string) string {
	t.Helper()
	params := []signer.Param{{Key: "mch_id", Value: "1900000001"}, {Key: "nonce_str", Value: "n1"}}
	sign, _ := signer.NewV2Key(apiv2Key).AppendSign(nil, "MD5", slices.Clone(params))
	params = append(params, signer.Param{Key: "sign", Value: string(sign)})
	caPEM, err := os.ReadFile(ready.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := c.Post(ready.Mch+"/sandboxnew/pay/getsignkey", "text/xml", strings.NewReader(string(signer.AppendXML(nil, params))))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ans, err := signer.ParseXML(b)
	key, _ := signer.ParamValue(ans, "sandbox_signkey")
	if err != nil || len(key) != 32 {
		t.Fatalf("getsignkey: %s", b)
	}
	return key
}
