// Command wxemu runs the WeChat emulator for the benchmark as its own process: api.weixin.qq.com
// over HTTP and api.mch.weixin.qq.com over TLS, for the apps and merchants of a wxgate config,
// with a WeChat Pay key the harness chose (so that notifications the harness builds with the
// same key verify against the answers this process signs).
//
// Once both listeners accept connections it prints one JSON line:
//
//	{"weixin":"http://127.0.0.1:P","mch":"https://127.0.0.1:Q","ca_file":"...","public_key_id":"PUB_KEY_ID_..."}
//
// and it runs until interrupted or terminated.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// ready is the line printed once the emulator serves.
type ready struct {
	Weixin      string `json:"weixin"`
	Mch         string `json:"mch"`
	CAFile      string `json:"ca_file"`
	PublicKeyID string `json:"public_key_id"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wxemu:", err)
		os.Exit(1)
	}
}

func run() error {
	cfgPath := flag.String("config", "", "wxgate config whose apps and merchants the emulator knows")
	payKey := flag.String("pay-key", "", "PEM private key WeChat Pay signs answers with (RSA 2048)")
	listen := flag.String("listen", "127.0.0.1:0", "address of the emulated api.weixin.qq.com (HTTP)")
	mchListen := flag.String("mch-listen", "127.0.0.1:0", "address of the emulated api.mch.weixin.qq.com (HTTPS)")
	out := flag.String("out", ".", "folder for the emulator CA certificate (emulator-ca.pem)")
	flag.Parse()
	cfg, err := policies.Load(*cfgPath)
	if err != nil {
		return err
	}
	ec, err := emulator.ConfigFromPolicies(cfg)
	if err != nil {
		return err
	}
	if *payKey != "" {
		pem, err := os.ReadFile(*payKey)
		if err != nil {
			return err
		}
		if ec.PayKey, err = signer.ParsePrivateKey(pem); err != nil {
			return err
		}
	}
	emu, err := emulator.New(ec)
	if err != nil {
		return err
	}
	caFile := filepath.Join(*out, "emulator-ca.pem")
	if err := os.WriteFile(caFile, emu.CACertPEM(), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mchLn, err := net.Listen("tcp", *mchListen)
	if err != nil {
		ln.Close()
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 2)
	go func() { done <- emu.Serve(ln) }()
	go func() { done <- emu.ServeTLS(mchLn) }()
	line, err := json.Marshal(ready{
		Weixin: "http://" + ln.Addr().String(), Mch: "https://" + mchLn.Addr().String(),
		CAFile: caFile, PublicKeyID: emu.PayPublicKeyID(),
	})
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	select {
	case <-ctx.Done():
		err := emu.Shutdown()
		<-done
		<-done
		return err
	case err := <-done:
		return errors.Join(errors.New("emulator stopped"), err, emu.Shutdown())
	}
}
