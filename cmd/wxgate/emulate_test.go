package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

var (
	emuKeysOnce sync.Once
	emuKeys     [2]*rsa.PrivateKey // a WeChat Pay key and a merchant key
)

// emulateKeys returns two RSA keys, made once per test binary (key generation is slow).
func emulateKeys(t *testing.T) [2]*rsa.PrivateKey {
	t.Helper()
	emuKeysOnce.Do(func() {
		for i := range emuKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			emuKeys[i] = k
		}
	})
	return emuKeys
}

// writeKey writes key as a PKCS#1 PEM file.
func writeKey(t *testing.T, path string, key *rsa.PrivateKey) {
	t.Helper()
	der := x509.MarshalPKCS1PrivateKey(key)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// emuAppConfig is a config with one app, enough for the emulator.
const emuAppConfig = `
[[app]]
name = "emu"
appid = "wx00000000000000e1"
secret = "emu-secret"
`

// writeEmuConfig writes body as wxgate.toml in a new folder and returns its path.
func writeEmuConfig(t *testing.T, body string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "wxgate.toml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startEmulate runs `wxgate emulate -json` in-process with args on free ports (unless args
// name them) and returns its ready line; stop stops it and reports how it ended.
func startEmulate(t *testing.T, args ...string) (ready EmulatorReady, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	full := append([]string{"-json", "-listen", "127.0.0.1:0", "-mch-listen", "127.0.0.1:0"}, args...)
	go func() {
		done <- runEmulate(ctx, full, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		cancel()
		t.Fatalf("no ready line: %v (%v); stderr %s", err, <-done, stderr.String())
	}
	if err := json.Unmarshal(line, &ready); err != nil || ready.Weixin == "" || ready.Mch == "" || ready.CAFile == "" || ready.PublicKeyID == "" {
		t.Fatalf("ready line %q: %+v, %v", line, ready, err)
	}
	go io.Copy(io.Discard, pr)
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return ready, stop
}

// fileState is a file's bytes and modification time.
type fileState struct {
	data  string
	mtime time.Time
	mode  os.FileMode
}

// snapshot returns the state of every file in dir (nil when dir does not exist).
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]fileState{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fileState{string(b), info.ModTime(), info.Mode()}
	}
	return m
}

func fileNames(m map[string]fileState) []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// sameFiles fails unless a and b hold the same files with the same bytes and times.
func sameFiles(t *testing.T, what string, a, b map[string]fileState) {
	t.Helper()
	if strings.Join(fileNames(a), ",") != strings.Join(fileNames(b), ",") {
		t.Fatalf("%s: files %v became %v", what, fileNames(a), fileNames(b))
	}
	for n, s := range a {
		if b[n] != s {
			t.Errorf("%s: %s changed (bytes equal %v, mtime %v -> %v)", what, n, b[n].data == s.data, s.mtime, b[n].mtime)
		}
	}
}

// tlsGet makes a GET over TLS trusting only the CA certificate in caFile.
func tlsGet(t *testing.T, caFile, url string) error {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// TestEmulateJSONWithPayKey: `wxgate emulate -pay-key K -json` prints one JSON line with
// addresses that serve, and WeChat Pay's public key it writes is K's.
func TestEmulateJSONWithPayKey(t *testing.T) {
	dir := t.TempDir()
	key := emulateKeys(t)[0]
	keyFile := filepath.Join(dir, "pay.pem")
	writeKey(t, keyFile, key)
	cfg := writeEmuConfig(t, emuAppConfig)
	ready, stop := startEmulate(t, "-config", cfg, "-pay-key", keyFile, "-out", filepath.Join(dir, "files"))
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
	if err := stop(); err != nil {
		t.Fatalf("emulate after cancel: %v", err)
	}
}

// TestEmulateKeepsIdentityAcrossRestarts: with -pay-key K and without it (the key kept in -out),
// a restarted emulator signs under the same public key id and serves HTTPS with a certificate
// of the same CA, whose file is left untouched: a wxgate config written for the first run still
// fits the second.
func TestEmulateKeepsIdentityAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pay.pem")
	writeKey(t, keyFile, emulateKeys(t)[0])
	cfg := writeEmuConfig(t, emuAppConfig)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"pay-key", []string{"-pay-key", keyFile, "-out", "with-flag"}},
		{"kept key", []string{"-out", "kept"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-config", cfg}, tt.args...)
			first, stop := startEmulate(t, args...)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			out := filepath.Dir(first.CAFile)
			before := snapshot(t, out)
			second, stop := startEmulate(t, args...)
			defer stop()
			if second.PublicKeyID != first.PublicKeyID {
				t.Errorf("public key id changed on restart: %s -> %s", first.PublicKeyID, second.PublicKeyID)
			}
			if second.CAFile != first.CAFile {
				t.Errorf("CA file moved: %s -> %s", first.CAFile, second.CAFile)
			}
			sameFiles(t, "restart", before, snapshot(t, out))
			if err := tlsGet(t, first.CAFile, second.Mch+"/v3/certificates"); err != nil {
				t.Fatalf("the restarted emulator's HTTPS is not trusted with the first run's CA file: %v", err)
			}
		})
	}
}

// TestEmulateBindFailureWritesNothing: a second emulator on the ports of a running one fails
// with the bind error and changes nothing in -out (bytes, times, the list of files), nor
// creates a -out that did not exist.
func TestEmulateBindFailureWritesNothing(t *testing.T) {
	cfg := writeEmuConfig(t, emuAppConfig)
	first, _ := startEmulate(t, "-config", cfg)
	out := filepath.Dir(first.CAFile)
	before := snapshot(t, out)
	if len(before) < 4 {
		t.Fatalf("first emulator kept only %v", fileNames(before))
	}
	weixin, mch := strings.TrimPrefix(first.Weixin, "http://"), strings.TrimPrefix(first.Mch, "https://")
	otherKey := filepath.Join(t.TempDir(), "other-pay.pem")
	writeKey(t, otherKey, emulateKeys(t)[1])
	for _, tt := range []struct {
		name, out string
		ports     []string
	}{
		{"weixin port taken, existing files", out, []string{"-listen", weixin}},
		{"mch port taken, existing files", out, []string{"-mch-listen", mch}},
		{"port taken, another -pay-key", out, []string{"-mch-listen", mch, "-pay-key", otherKey}},
		{"port taken, new folder", filepath.Join(filepath.Dir(cfg), "fresh"), []string{"-listen", weixin}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"-config", cfg, "-out", tt.out, "-listen", "127.0.0.1:0", "-mch-listen", "127.0.0.1:0"}, tt.ports...)
			err := runEmulate(ctx, args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("second emulator: %v, want the bind error and that nothing was written", err)
			}
			if tt.out == out {
				sameFiles(t, "failed start", before, snapshot(t, out))
			} else if _, err := os.Stat(tt.out); !os.IsNotExist(err) {
				t.Fatalf("failed start created %s (%v)", tt.out, err)
			}
		})
	}
}

// TestEmulateRefusesDamagedFiles: a kept CA or WeChat Pay key that is damaged or half there is
// refused with a message naming the file, and left as it was (never regenerated over).
func TestEmulateRefusesDamagedFiles(t *testing.T) {
	cfg := writeEmuConfig(t, emuAppConfig)
	first, stop := startEmulate(t, "-config", cfg)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Dir(first.CAFile)
	good := snapshot(t, out)
	for _, tt := range []struct {
		name, file, data string // data "" removes the file
		want             string
	}{
		{"CA certificate damaged", "emulator-ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "emulator-ca.pem"},
		{"CA key missing", "emulator-ca-key.pem", "", "emulator-ca-key.pem"},
		{"CA key of another CA", "emulator-ca-key.pem", "swap", "not the certificate's key"},
		{"WeChat Pay key damaged", "wechatpay-key.pem", "not a key", "wechatpay-key.pem"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(out, tt.file)
			switch tt.data {
			case "":
				os.Remove(path)
			case "swap":
				other := filepath.Join(t.TempDir(), "other")
				second, stop := startEmulate(t, "-config", cfg, "-out", other)
				stop()
				b, _ := os.ReadFile(filepath.Join(filepath.Dir(second.CAFile), tt.file))
				os.WriteFile(path, b, 0o600)
			default:
				os.WriteFile(path, []byte(tt.data), 0o600)
			}
			damaged := snapshot(t, out)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := runEmulate(ctx, []string{"-config", cfg, "-listen", "127.0.0.1:0", "-mch-listen", "127.0.0.1:0"}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "never replaced") {
				t.Fatalf("emulate with %s: %v, want a refusal naming %q", tt.name, err, tt.want)
			}
			sameFiles(t, "refused start", damaged, snapshot(t, out))
			os.WriteFile(path, []byte(good[tt.file].data), good[tt.file].mode)
		})
	}
}

// TestEmulateConfigNamesItsOwnFiles: a config whose ca_file and public_key_file are the files
// the emulator is about to write, and which do not exist yet, starts the emulator; the files
// land in emulator-files/ beside the config (not in the working directory), so the same config
// then loads for wxgate serve with the emulator's public key id.
func TestEmulateConfigNamesItsOwnFiles(t *testing.T) {
	keys := emulateKeys(t)
	dir := t.TempDir()
	writeKey(t, filepath.Join(dir, "apiclient_key.pem"), keys[1])
	cfg := filepath.Join(dir, "wxgate.toml")
	body := `
[upstream]
ca_file = "emulator-files/emulator-ca.pem"
` + emuAppConfig + `
[[merchant]]
name = "main"
mchid = "1900000001"
appid = "wx00000000000000e1"
serial_no = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
private_key_file = "apiclient_key.pem"
apiv3_key = "0123456789abcdef0123456789abcdef"
public_key_id = "PUB_KEY_ID_0000000000000000000000000000000001"
public_key_file = "emulator-files/wechatpay-pub.pem"
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := policies.Load(cfg); err == nil {
		t.Fatal("the config loads before the emulator wrote its files: the test proves nothing")
	}
	ready, _ := startEmulate(t, "-config", cfg)
	if want := filepath.Join(dir, "emulator-files", "emulator-ca.pem"); ready.CAFile != want {
		t.Errorf("ca_file %s, want %s (relative to the config's folder)", ready.CAFile, want)
	}
	if _, err := os.Stat("emulator-files"); !os.IsNotExist(err) {
		t.Errorf("emulator-files/ was made in the working directory (%v)", err)
	}
	fixed := strings.Replace(body, "PUB_KEY_ID_0000000000000000000000000000000001", ready.PublicKeyID, 1)
	if err := os.WriteFile(cfg, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := policies.Load(cfg)
	if err != nil {
		t.Fatalf("the config does not load with the emulator's files: %v", err)
	}
	if err := tlsGet(t, loaded.Upstream.CAFile, ready.Mch+"/v3/certificates"); err != nil {
		t.Fatalf("the config's ca_file does not trust the emulator: %v", err)
	}
}
