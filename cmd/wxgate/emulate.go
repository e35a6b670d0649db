package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// EmulatorReady is the line `wxgate emulate -json` prints once both listeners serve.
type EmulatorReady struct {
	Weixin      string `json:"weixin"`        // base URL of the emulated api.weixin.qq.com
	Mch         string `json:"mch"`           // base URL of the emulated api.mch.weixin.qq.com
	CAFile      string `json:"ca_file"`       // the CA certificate the mch listener's certificate chains to (absolute)
	PublicKeyID string `json:"public_key_id"` // the WeChat Pay public key id answers are signed under
}

// The files `wxgate emulate` keeps in its -out folder. The CA and the WeChat Pay key are reused
// on the next start, so the ca_file, public_key_id and public_key_file a wxgate config names stay
// right across emulator restarts.
const (
	emuCAFile     = "emulator-ca.pem"     // the CA certificate: wxgate's [upstream] ca_file
	emuCAKeyFile  = "emulator-ca-key.pem" // its private key
	emuPubFile    = "wechatpay-pub.pem"   // the WeChat Pay public key: a merchant's public_key_file
	emuPayKeyFile = "wechatpay-key.pem"   // the WeChat Pay private key, when -pay-key is not given
)

// runEmulate runs the WeChat emulator for the apps and merchants of a config until ctx is done.
// It reads everything first, binds both listeners, and only then writes into -out: a start that
// fails changes no file.
func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("emulate", stderr)
	path := fs.String("config", "wxgate.toml", "config whose apps and merchants the emulator knows (as WeChat would)")
	listen := fs.String("listen", "127.0.0.1:9801", "address of the emulated api.weixin.qq.com (HTTP)")
	mchListen := fs.String("mch-listen", "127.0.0.1:9802", "address of the emulated api.mch.weixin.qq.com (HTTPS)")
	out := fs.String("out", "emulator-files", "folder, relative to the config file's, where the emulator keeps its CA and WeChat Pay keys (reused on the next start)")
	retryScale := fs.Float64("retry-scale", 1, "multiplies WeChat's callback retry schedule (15s ... 6h); e.g. 0.01 for quick local retries")
	payKey := fs.String("pay-key", "", "PEM RSA-2048 private key WeChat Pay signs answers and notifications with, relative to the config file's folder; its public key id is derived from it (default: the key kept in -out, made on the first start)")
	asJSON := fs.Bool("json", false, "once serving, print one JSON line {weixin, mch, ca_file, public_key_id} instead of the text (for scripts: bench/ reads it)")
	callbacks := fs.String("callbacks", "", "wxgate's callback listener base URL (e.g. http://127.0.0.1:8081): message pushes go to {base}/callbacks/message/{app}, and http:// notify_url values are accepted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, wanted, err := loadEmulatorConfig(*path)
	if err != nil {
		return err
	}
	ec, err := emulatorConfig(cfg)
	if err != nil {
		return err
	}
	if *callbacks != "" {
		base := strings.TrimRight(*callbacks, "/")
		for i := range ec.Apps {
			if cfg.Apps[i].Push != nil {
				ec.Apps[i].PushURL = base + "/callbacks/message/" + cfg.Apps[i].Name
			}
		}
		ec.AllowHTTPNotifyURL = strings.HasPrefix(base, "http://")
	}
	ec.RetryScale = *retryScale
	files, err := readEmulatorFiles(inConfigDir(cfg, *out), inConfigDir(cfg, *payKey), *payKey != "")
	if err != nil {
		return err
	}
	ec.PayKey, ec.CA = files.payKey, files.ca
	emu, err := emulator.New(ec)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("emulator listener (-listen): %w; nothing was written to %s", err, files.dir)
	}
	mchLn, err := net.Listen("tcp", *mchListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("emulator listener (-mch-listen): %w; nothing was written to %s", err, files.dir)
	}
	if err := files.write(emu); err != nil {
		ln.Close()
		mchLn.Close()
		return err
	}
	caFile, pubFile := filepath.Join(files.dir, emuCAFile), filepath.Join(files.dir, emuPubFile)
	done := make(chan error, 2)
	go func() { done <- emu.Serve(ln) }()
	go func() { done <- emu.ServeTLS(mchLn) }()
	if *asJSON {
		line, err := json.Marshal(EmulatorReady{
			Weixin: "http://" + ln.Addr().String(), Mch: "https://" + mchLn.Addr().String(),
			CAFile: caFile, PublicKeyID: emu.PayPublicKeyID(),
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", line)
	} else {
		rel := func(p string) string {
			if r, err := filepath.Rel(cfg.Dir(), p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
			return p
		}
		fmt.Fprintf(stdout, "WeChat emulator for %d app(s) and %d merchant(s). Login codes: test:<user> (test:<user>:<nonce> to log in again).\n", len(cfg.Apps), len(cfg.Merchants))
		fmt.Fprintf(stdout, "Point wxgate at it (paths relative to the config file's folder; they stay valid across emulator restarts):\n")
		fmt.Fprintf(stdout, "  [upstream] weixin = \"http://%s\"\n  [upstream] mch    = \"https://%s\"\n  [upstream] ca_file = %q\n", ln.Addr(), mchLn.Addr(), rel(caFile))
		fmt.Fprintf(stdout, "  merchants: public_key_id = %q, public_key_file = %q\n", emu.PayPublicKeyID(), rel(pubFile))
	}
	wanted.warn(stderr, caFile, pubFile, emu.PayPublicKeyID())
	select {
	case <-ctx.Done():
		err := emu.Shutdown()
		<-done
		<-done
		return err
	case err := <-done:
		emu.Shutdown()
		return errors.Join(errors.New("emulator stopped"), err)
	}
}

// emulatorConfig gives the emulator the credentials WeChat would hold for each configured app and
// merchant.
func emulatorConfig(cfg *policies.Config) (emulator.Config, error) {
	return emulator.ConfigFromPolicies(cfg)
}

// trustSettings are the config's settings for trusting WeChat, which the emulator does not read
// (it is WeChat) but compares with what it serves.
type trustSettings struct {
	caFile      string            // [upstream] ca_file, resolved
	pubKeyIDs   map[string]string // merchant name -> public_key_id
	pubKeyFiles map[string]string // merchant name -> public_key_file, resolved
}

// loadEmulatorConfig reads the config the way the emulator needs it: what WeChat knows of each app
// and merchant (secrets, AppKeys, push keys, merchant private keys and API keys). It does not read
// wxgate's trust in WeChat (upstream.ca_file, merchants' public_key_file: files the emulator
// itself writes), the store or forward.secret, so none of them needs to exist yet.
func loadEmulatorConfig(path string) (*policies.Config, trustSettings, error) {
	var ts trustSettings
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, ts, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, ts, fmt.Errorf("config path: %w", err)
	}
	cfg, err := policies.Decode(raw, filepath.Dir(abs))
	if err != nil {
		return nil, ts, err
	}
	ts = trustSettings{caFile: cfg.Upstream.CAFile, pubKeyIDs: map[string]string{}, pubKeyFiles: map[string]string{}}
	cfg.Upstream.CAFile = ""
	for i := range cfg.Merchants {
		m := &cfg.Merchants[i]
		if m.UsesPublicKey() {
			ts.pubKeyIDs[m.Name] = m.PublicKeyID
			ts.pubKeyFiles[m.Name] = inConfigDir(cfg, m.PublicKeyFile)
		}
		m.PublicKeyFile = ""
	}
	cfg.Forward.Secret = policies.Secret{}
	cfg.Store.Kind = policies.StoreMemory
	if err := cfg.Provision(); err != nil {
		return nil, ts, err
	}
	return cfg, ts, nil
}

// warn notes on w every setting of the config that differs from what the emulator serves.
func (ts trustSettings) warn(w io.Writer, caFile, pubFile, pubKeyID string) {
	if ts.caFile != "" && ts.caFile != caFile {
		fmt.Fprintf(w, "note: the config's [upstream] ca_file is %s, the emulator's CA is %s\n", ts.caFile, caFile)
	}
	for name, id := range ts.pubKeyIDs {
		if id != pubKeyID {
			fmt.Fprintf(w, "note: merchant %q has public_key_id %q, the emulator signs under %q\n", name, id, pubKeyID)
		}
		if f := ts.pubKeyFiles[name]; f != pubFile {
			fmt.Fprintf(w, "note: merchant %q has public_key_file %s, the emulator writes %s\n", name, f, pubFile)
		}
	}
}

// inConfigDir resolves a path given on the command line or in the config against the config
// file's folder, the one folder every relative path of wxgate starts from. "" stays "".
func inConfigDir(cfg *policies.Config, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cfg.Dir(), p)
}

// emulatorFiles is what the emulator keeps in its folder, read (or made in memory) before
// anything is bound, and written only once the listeners are.
type emulatorFiles struct {
	dir       string
	ca        *emulator.CA
	caNew     bool // made now: write it
	payKey    *rsa.PrivateKey
	payKeyNew bool // made now, and kept in dir (no -pay-key): write it
}

// readEmulatorFiles loads the CA and the WeChat Pay key kept in dir, or makes new ones in memory
// when there are none. A file that is there but unreadable or damaged is refused, never replaced.
// payKeyPath, when given (fromFlag), is the key to sign with instead of the one kept in dir.
func readEmulatorFiles(dir, payKeyPath string, fromFlag bool) (*emulatorFiles, error) {
	f := &emulatorFiles{dir: dir}
	damaged := func(err error, names ...string) error {
		return fmt.Errorf("emulator files: %w\n  the files in %s are kept across restarts and never replaced: move %s away "+
			"to make new ones (a wxgate config trusting the old ones must then be given the new)", err, dir, strings.Join(names, " and "))
	}
	certPEM, certErr := os.ReadFile(filepath.Join(dir, emuCAFile))
	keyPEM, keyErr := os.ReadFile(filepath.Join(dir, emuCAKeyFile))
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		ca, err := emulator.NewCA()
		if err != nil {
			return nil, fmt.Errorf("emulator CA: %w", err)
		}
		f.ca, f.caNew = ca, true
	case certErr != nil:
		return nil, damaged(certErr, emuCAFile, emuCAKeyFile)
	case keyErr != nil:
		return nil, damaged(keyErr, emuCAFile, emuCAKeyFile)
	default:
		ca, err := emulator.ParseCA(certPEM, keyPEM, time.Now())
		if err != nil {
			return nil, damaged(fmt.Errorf("the CA in %s, %s: %w", emuCAFile, emuCAKeyFile, err), emuCAFile, emuCAKeyFile)
		}
		f.ca = ca
	}
	if fromFlag {
		b, err := os.ReadFile(payKeyPath)
		if err != nil {
			return nil, fmt.Errorf("-pay-key: %w", err)
		}
		if f.payKey, err = signer.ParsePrivateKey(b); err != nil {
			return nil, fmt.Errorf("-pay-key %s: %w", payKeyPath, err)
		}
		return f, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, emuPayKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if f.payKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("WeChat Pay key: %w", err)
		}
		f.payKeyNew = true
	case err != nil:
		return nil, damaged(err, emuPayKeyFile)
	default:
		if f.payKey, err = signer.ParsePrivateKey(b); err != nil {
			return nil, damaged(fmt.Errorf("the WeChat Pay key in %s: %w", emuPayKeyFile, err), emuPayKeyFile)
		}
	}
	return f, nil
}

// write saves what was made in memory, and the WeChat Pay public key when it changed. Files that
// already hold the same bytes are left alone (their modification time too).
func (f *emulatorFiles) write(emu *emulator.Emulator) error {
	type file struct {
		name string
		data []byte
		mode os.FileMode
	}
	var files []file
	if f.caNew {
		keyPEM, err := f.ca.KeyPEM()
		if err != nil {
			return err
		}
		files = append(files, file{emuCAKeyFile, keyPEM, 0o600}, file{emuCAFile, f.ca.CertPEM(), 0o644})
	}
	if f.payKeyNew {
		der := x509.MarshalPKCS1PrivateKey(f.payKey)
		files = append(files, file{emuPayKeyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600})
	}
	files = append(files, file{emuPubFile, emu.PayPublicKeyPEM(), 0o644})
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return fmt.Errorf("emulator files: %w", err)
	}
	for _, fl := range files {
		if err := writeIfChanged(filepath.Join(f.dir, fl.name), fl.data, fl.mode); err != nil {
			return fmt.Errorf("emulator files: %w", err)
		}
	}
	return nil
}

// writeIfChanged replaces path with data (through a temporary file and a rename, so a reader
// never sees half a file) unless it already holds exactly data.
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
