package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/wxgate/wxgate/internal/signing"
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
	fdLimit, err := raiseFDLimit()
	if err != nil {
		return err
	}
	if need := proxy.DescriptorsNeeded(cfg); uint64(need) > fdLimit {
		return fmt.Errorf("the open-file limit is %d, but this config may hold %d descriptors at once "+
			"(server.max_conns + server.callback_max_conns + the upstream and forward connection pools): "+
			"raise the limit (systemd LimitNOFILE=, ulimit -n) or lower those settings", fdLimit, need)
	}
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close() // after the gateway: pending writes finish first
	g, err := proxy.NewGateway(cfg, proxy.Options{Logger: log, Store: st, SigningProcs: signing.SigningProcs(cfg.Server.SignConcurrency, log)})
	if err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	defer g.Close()
	ls, err := proxy.Listen(cfg.Server)
	if err != nil {
		return err
	}
	srv := proxy.NewServer(g)
	srv.Start(ls)
	log.Info("wxgate serving", startupAttrs(cfg, ls, fdLimit)...)
	return serveUntil(ctx, srv, log)
}

// serveUntil waits until ctx is done, then drains srv; a listener that stops on its own ends
// the process with an error instead, so that a supervisor restarts it.
func serveUntil(ctx context.Context, srv *proxy.Server, log *slog.Logger) error {
	select {
	case <-ctx.Done():
		log.Info("wxgate shutting down")
		return srv.Shutdown()
	case <-srv.Failed():
		err := srv.Err()
		_ = srv.Shutdown()
		return fmt.Errorf("a listener stopped serving, exiting so that a supervisor restarts wxgate: %w", err)
	}
}
