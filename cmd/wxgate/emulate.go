package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
)

// runEmulate runs the WeChat emulator for the apps of a config until ctx is done.
func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("emulate", stderr)
	path := fs.String("config", "wxgate.toml", "config whose apps (appid, secret, xpay keys) the emulator knows")
	listen := fs.String("listen", "127.0.0.1:9801", "address to serve the emulated api.weixin.qq.com on")
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
	emu, err := emulator.New(ec)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("emulator listener: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- emu.Serve(ln) }()
	fmt.Fprintf(stdout, "WeChat emulator on http://%s for %d app(s); point [upstream] weixin at it. Login codes: test:<user>.\n", ln.Addr(), len(cfg.Apps))
	select {
	case <-ctx.Done():
		if err := emu.Shutdown(); err != nil {
			return fmt.Errorf("emulator shutdown: %w", err)
		}
		return <-done
	case err := <-done:
		return fmt.Errorf("emulator stopped: %w", err)
	}
}

// emulatorConfig gives the emulator the credentials WeChat would hold for each configured app and
// merchant.
func emulatorConfig(cfg *policies.Config) (emulator.Config, error) {
	return emulator.ConfigFromPolicies(cfg)
}
