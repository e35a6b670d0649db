package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/wxgate/wxgate/signer"
)

// TestEmulateJSONWithPayKey: `wxgate emulate -pay-key K -json` prints one JSON line with
// addresses that serve, and WeChat Pay's public key it writes is K's.
func TestEmulateJSONWithPayKey(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "pay.pem")
	der := x509.MarshalPKCS1PrivateKey(key)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "wxgate.toml")
	if err := os.WriteFile(cfg, []byte(`
[[app]]
name = "emu"
appid = "wx00000000000000e1"
secret = "emu-secret"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- runEmulate(ctx, []string{"-config", cfg, "-pay-key", keyFile, "-json", "-out", filepath.Join(dir, "files"),
			"-listen", "127.0.0.1:0", "-mch-listen", "127.0.0.1:0"}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no ready line: %v; stderr %s", err, stderr.String())
	}
	var ready EmulatorReady
	if err := json.Unmarshal(line, &ready); err != nil || ready.Weixin == "" || ready.Mch == "" || ready.CAFile == "" || ready.PublicKeyID == "" {
		t.Fatalf("ready line %q: %+v, %v", line, ready, err)
	}
	resp, err := http.Get(ready.Weixin + "/cgi-bin/token?grant_type=client_credential&appid=wx00000000000000e1&secret=emu-secret")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`"access_token"`)) {
		t.Fatalf("the emulator at %s does not serve: %s", ready.Weixin, body)
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, "files", "wechatpay-pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signer.ParsePublicKey(pubPEM)
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("WeChat Pay public key written is not -pay-key's (%v)", err)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("emulate after cancel: %v", err)
	}
}
