package main

import (
	"net"
	"strings"

	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
	"github.com/wxgate/wxgate/store"
)

// startupAttrs are the attributes of the "wxgate serving" line: everything an operator checks
// first in a fresh deployment (which binary, where it listens, what it serves, where its state
// lives), and never a secret: the Redis address is printed without its credentials.
func startupAttrs(cfg *policies.Config, ls proxy.Listeners, fdLimit uint64) []any {
	b := build()
	attrs := []any{
		"version", b.Version, "commit", b.ShortCommit(), "go", b.GoVersion,
		"app", listenerAddr(ls.App), "callback", listenerAddr(ls.Callback), "admin", listenerAddr(ls.Admin),
		"apps", names(cfg.Apps, func(a policies.App) string { return a.Name }),
		"merchants", names(cfg.Merchants, func(m policies.Merchant) string { return m.Name }),
		"store", cfg.Store.Kind,
	}
	switch cfg.Store.Kind {
	case policies.StoreDisk:
		attrs = append(attrs, "store_dir", cfg.Store.Dir)
	case policies.StoreRedis:
		attrs = append(attrs, "store_redis", store.RedisWhere(redisOptions(cfg.Store)), "store_prefix", cfg.Store.Prefix)
	}
	if cfg.Server.AppToken.IsSet() {
		attrs = append(attrs, "app_token", cfg.Server.AppToken.Source())
	}
	return append(attrs, "weixin", cfg.Upstream.Weixin, "mch", cfg.Upstream.Mch,
		"open_file_limit", fdLimit, "descriptors_needed", proxy.DescriptorsNeeded(cfg))
}

// listenerAddr is a listener's address as the config writes it: host:port, or unix:PATH.
func listenerAddr(ln net.Listener) string {
	if a, ok := ln.Addr().(*net.UnixAddr); ok {
		return "unix:" + a.Name
	}
	return ln.Addr().String()
}

// names joins the names of the config's apps or merchants with commas ("" when there are none).
func names[T any](items []T, name func(T) string) string {
	n := make([]string, len(items))
	for i, it := range items {
		n[i] = name(it)
	}
	return strings.Join(n, ",")
}
