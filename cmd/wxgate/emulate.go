package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// EmulatorReady is the line `wxgate emulate -json` prints once both listeners serve.
type EmulatorReady struct {
	Weixin      string `json:"weixin"`        // base URL of the emulated api.weixin.qq.com
	Mch         string `json:"mch"`           // base URL of the emulated api.mch.weixin.qq.com
	CAFile      string `json:"ca_file"`       // the CA certificate the mch listener's certificate chains to
	PublicKeyID string `json:"public_key_id"` // the WeChat Pay public key id answers are signed under
}

// runEmulate runs the WeChat emulator for the apps and merchants of a config until ctx is done.
func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("emulate", stderr)
	path := fs.String("config", "wxgate.toml", "config whose apps and merchants the emulator knows (as WeChat would)")
	listen := fs.String("listen", "127.0.0.1:9801", "address of the emulated api.weixin.qq.com (HTTP)")
	mchListen := fs.String("mch-listen", "127.0.0.1:9802", "address of the emulated api.mch.weixin.qq.com (HTTPS)")
	out := fs.String("out", "emulator-files", "folder for the emulator's CA certificate and WeChat Pay public key")
	retryScale := fs.Float64("retry-scale", 1, "multiplies WeChat's callback retry schedule (15s ... 6h); e.g. 0.01 for quick local retries")
	payKey := fs.String("pay-key", "", "PEM RSA-2048 private key WeChat Pay signs answers and notifications with (default: a new one each start)")
	asJSON := fs.Bool("json", false, "once serving, print one JSON line {weixin, mch, ca_file, public_key_id} instead of the text (for scripts: bench/ reads it)")
	callbacks := fs.String("callbacks", "", "wxgate's callback listener base URL (e.g. http://127.0.0.1:8081): message pushes go to {base}/callbacks/message/{app}, and http:// notify_url values are accepted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := policies.Load(*path)
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
	if *payKey != "" {
		pemBytes, err := os.ReadFile(*payKey)
		if err != nil {
			return fmt.Errorf("-pay-key: %w", err)
		}
		if ec.PayKey, err = signer.ParsePrivateKey(pemBytes); err != nil {
			return fmt.Errorf("-pay-key %s: %w", *payKey, err)
		}
	}
	emu, err := emulator.New(ec)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("emulator files: %w", err)
	}
	caFile, pubFile := filepath.Join(*out, "emulator-ca.pem"), filepath.Join(*out, "wechatpay-pub.pem")
	if err := os.WriteFile(caFile, emu.CACertPEM(), 0o644); err != nil {
		return fmt.Errorf("emulator files: %w", err)
	}
	if err := os.WriteFile(pubFile, emu.PayPublicKeyPEM(), 0o644); err != nil {
		return fmt.Errorf("emulator files: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("emulator listener: %w", err)
	}
	mchLn, err := net.Listen("tcp", *mchListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("emulator listener: %w", err)
	}
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
		fmt.Fprintf(stdout, "WeChat emulator for %d app(s) and %d merchant(s). Login codes: test:<user>.\n", len(cfg.Apps), len(cfg.Merchants))
		fmt.Fprintf(stdout, "  [upstream] weixin = \"http://%s\"\n  [upstream] mch    = \"https://%s\"\n  [upstream] ca_file = %q\n", ln.Addr(), mchLn.Addr(), caFile)
		fmt.Fprintf(stdout, "  merchants: public_key_id = %q, public_key_file = %q\n", emu.PayPublicKeyID(), pubFile)
	}
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
