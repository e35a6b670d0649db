package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// runServe runs the gateway until ctx is done.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "wxgate.toml", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := policies.Load(*path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	g, err := proxy.NewGateway(cfg, proxy.Options{Logger: log, SigningProcs: signingProcs(cfg.Server.SignConcurrency, log)})
	if err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	ls, err := proxy.Listen(cfg.Server)
	if err != nil {
		return err
	}
	srv := proxy.NewServer(g)
	srv.Start(ls)
	log.Info("wxgate serving", "app", ls.App.Addr().String(), "admin", ls.Admin.Addr().String(), "apps", len(cfg.Apps), "weixin", cfg.Upstream.Weixin)
	<-ctx.Done()
	log.Info("wxgate shutting down")
	return srv.Shutdown()
}
