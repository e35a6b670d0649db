package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/wxgate/wxgate/internal/signing"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// runServe runs the gateway until ctx is done; SIGHUP reloads the config file.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// Caught from the start: a SIGHUP during start-up must not end the process (its default);
	// it is acted on once serving, as one reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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
	g, err := proxy.NewGateway(cfg, proxy.Options{Logger: log, Store: st, OpenFileLimit: fdLimit,
		SigningProcs: signing.SigningProcs(cfg.Server.SignConcurrency, log)})
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
	log.Info("wxgate serving", "app", ls.App.Addr().String(), "callback", ls.Callback.Addr().String(),
		"admin", ls.Admin.Addr().String(), "apps", len(cfg.Apps), "merchants", len(cfg.Merchants),
		"weixin", cfg.Upstream.Weixin, "store", cfg.Store.Kind, "open_file_limit", fdLimit)
	reload := func() { _ = g.Reload(func() (*policies.Config, error) { return policies.Load(*path) }) }
	return serveUntil(ctx, srv, log, hup, reload)
}

// serveUntil waits until ctx is done, then drains srv; a listener that stops on its own ends
// the process with an error instead, so that a supervisor restarts it. Each signal on hup
// (nil: none) calls reload, which logs its own outcome.
func serveUntil(ctx context.Context, srv *proxy.Server, log *slog.Logger, hup <-chan os.Signal, reload func()) error {
	for {
		select {
		case <-ctx.Done():
			log.Info("wxgate shutting down")
			return srv.Shutdown()
		case <-srv.Failed():
			err := srv.Err()
			_ = srv.Shutdown()
			return fmt.Errorf("a listener stopped serving, exiting so that a supervisor restarts wxgate: %w", err)
		case <-hup:
			reload()
		}
	}
}
