package proxy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/wxgate/wxgate/policies"
)

// Reload replaces the config the gateway serves with the one load returns, without dropping a
// request: a new generation (apps, merchants, keys, certificates, secrets, routes, upstream
// clients) is built beside the running one and swapped in at once; requests already in flight
// finish on the one they started with. A config that does not load (every problem is logged),
// needs more descriptors than Options.OpenFileLimit, or cannot be built leaves the running one
// serving. Settings the running process cannot change (every [server] key but app_token, every
// [store], [sessions] and [log] key, [forward] timeout: listeners, limits, signing slots, the
// logger, the store and its claims are built once) keep their running values and are named in the
// log as needing a restart; the rest of the reload applies. It logs one line and counts the
// result in wxgate_config_reloads_total. Reloads are serialised.
func (g *Gateway) Reload(load func() (*policies.Config, error)) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	cfg, err := load()
	if err != nil {
		return g.reloadFailed(err)
	}
	cur := g.current()
	restart := keepRestartOnly(cur.cfg, cfg)
	if s := cfg.Server; !s.AppListenIsLocal() && !s.AppToken.IsSet() {
		return g.reloadFailed(fmt.Errorf("server.app_token: the running app listener %s is reachable from other hosts and keeps its address until a restart, "+
			"so its token cannot be removed by a reload", s.AppListen))
	}
	if need := DescriptorsNeeded(cfg); g.fdLimit != 0 && uint64(need) > g.fdLimit {
		return g.reloadFailed(fmt.Errorf("the open-file limit is %d, but this config may hold %d descriptors at once: "+
			"lower [upstream] max_conns_per_host or [forward] max_conns, or raise the limit and restart", g.fdLimit, need))
	}
	gen, err := g.newGeneration(cfg, cur)
	if err != nil {
		return g.reloadFailed(err)
	}
	g.gen.Store(gen)
	g.retire(cur, gen)
	g.metrics.reloadsOK.Inc()
	g.metrics.lastReload.Store(g.clock().Unix())

	d := diffGenerations(cur, gen)
	args := []any{
		"apps", len(gen.apps), "apps_added", d.appsAdded, "apps_removed", d.appsRemoved, "apps_changed", d.appsChanged,
		"merchants", len(gen.merchants), "merchants_added", d.merchantsAdded, "merchants_removed", d.merchantsRemoved,
		"merchants_changed", d.merchantsChanged, "routes_changed", d.routes, "upstream_changed", d.upstream,
		"forward_secret_changed", d.forwardSecret,
	}
	if len(restart) > 0 {
		args = append(args, "needs_restart", strings.Join(restart, ","))
		g.log.Warn("config reloaded; the settings in needs_restart keep their running values until wxgate restarts", args...)
		return nil
	}
	g.log.Info("config reloaded", args...)
	return nil
}

// reloadFailed logs and counts a refused reload and returns its error.
func (g *Gateway) reloadFailed(err error) error {
	g.metrics.reloadsFailed.Inc()
	problems := []string{err.Error()}
	var verr *policies.ValidationError
	if errors.As(err, &verr) {
		problems = problems[:0]
		for _, p := range verr.Problems {
			problems = append(problems, p.Key+": "+p.Message)
		}
	}
	g.log.Error("config reload refused; the running config keeps serving", "problems", len(problems), "errors", strings.Join(problems, "; "))
	return fmt.Errorf("reload: %w", err)
}

// retireGraceMin is the least time a replaced client's connections are left to the requests
// still using them.
const retireGraceMin = time.Second

// retire closes the idle connections of the clients cur used and next does not: at once, and
// again once every request that could still be using them has ended (four upstream or forward
// timeouts: a token fetch, the call, and after a stale token a forced fetch and the retry), so
// that no connection outlives its last request longer than that; one still busy then is closed
// by the client's own idle cleaner ([upstream] max_idle_duration) once it is released. fasthttp ends its own cleaner goroutines once a client
// holds no connection.
func (g *Gateway) retire(cur, next *generation) {
	keep := map[idleCloser]bool{}
	for _, c := range next.clients() {
		keep[c] = true
	}
	var gone []idleCloser
	for _, c := range cur.clients() {
		if !keep[c] {
			gone = append(gone, c)
			keep[c] = true // a client listed twice is closed once
		}
	}
	if len(gone) == 0 {
		return
	}
	closeAll := func() {
		for _, c := range gone {
			c.CloseIdleConnections()
		}
	}
	closeAll()
	time.AfterFunc(max(retireGraceMin, 4*max(cur.cfg.Upstream.Timeout, cur.cfg.Forward.Timeout)), closeAll)
}

// keepRestartOnly copies into next the settings of cur that a running process cannot change,
// and returns the keys whose value differed ("server.app_listen"), sorted by section.
func keepRestartOnly(cur, next *policies.Config) []string {
	var changed []string
	for _, k := range changedKeys("server", cur.Server, next.Server) {
		if k != "server.app_token" { // a secret like the others: reloaded
			changed = append(changed, k)
		}
	}
	changed = append(changed, changedKeys("store", cur.Store, next.Store)...)
	changed = append(changed, changedKeys("sessions", cur.Sessions, next.Sessions)...)
	changed = append(changed, changedKeys("log", cur.Log, next.Log)...) // the logger is built once
	if cur.Forward.Timeout != next.Forward.Timeout {
		changed = append(changed, "forward.timeout")
	}
	token := next.Server.AppToken
	next.Server, next.Store, next.Sessions, next.Log = cur.Server, cur.Store, cur.Sessions, cur.Log
	next.Server.AppToken = token
	next.Forward.Timeout = cur.Forward.Timeout
	return changed
}

// changedKeys names the fields of the structs a and b (of one type) whose values differ, by
// their TOML key under section.
func changedKeys(section string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			out = append(out, section+"."+key)
		}
	}
	return out
}

// genDiff counts what a reload changed; it names nothing secret.
type genDiff struct {
	appsAdded, appsRemoved, appsChanged                int
	merchantsAdded, merchantsRemoved, merchantsChanged int
	routes, upstream, forwardSecret                    bool
}

// diffGenerations compares the configs of two generations.
func diffGenerations(cur, next *generation) genDiff {
	var d genDiff
	for _, a := range next.cfg.Apps {
		switch old, ok := cur.cfg.App(a.Name); {
		case !ok:
			d.appsAdded++
		case !sameApp(old, &a):
			d.appsChanged++
		}
	}
	for _, a := range cur.cfg.Apps {
		if _, ok := next.cfg.App(a.Name); !ok {
			d.appsRemoved++
		}
	}
	for i := range next.cfg.Merchants {
		m := &next.cfg.Merchants[i]
		switch old, ok := cur.cfg.Merchant(m.Name); {
		case !ok:
			d.merchantsAdded++
		case !sameMerchant(old, m):
			d.merchantsChanged++
		}
	}
	for _, m := range cur.cfg.Merchants {
		if _, ok := next.cfg.Merchant(m.Name); !ok {
			d.merchantsRemoved++
		}
	}
	d.routes = !reflect.DeepEqual(cur.cfg.Routes, next.cfg.Routes)
	d.upstream = cur.weixin != next.weixin
	d.forwardSecret = cur.cfg.Forward.Secret != next.cfg.Forward.Secret
	return d
}

// sameApp reports whether two app configs are the same in every setting and secret.
func sameApp(a, b *policies.App) bool {
	return a.Name == b.Name && a.AppID == b.AppID && a.Secret == b.Secret && a.ForwardURL == b.ForwardURL &&
		reflect.DeepEqual(a.Xpay, b.Xpay) && reflect.DeepEqual(a.Push, b.Push)
}

// sameMerchant reports whether two merchant configs are the same in every setting, secret and
// key: the files named may be the same while their contents were replaced.
func sameMerchant(a, b *policies.Merchant) bool {
	if a.Name != b.Name || a.MchID != b.MchID || a.AppID != b.AppID || a.SerialNo != b.SerialNo ||
		a.PrivateKeyFile != b.PrivateKeyFile || a.APIv3Key != b.APIv3Key || a.PublicKeyID != b.PublicKeyID ||
		a.PublicKeyFile != b.PublicKeyFile || a.APIv2Key != b.APIv2Key || a.ClientCertFile != b.ClientCertFile ||
		a.ClientKeyFile != b.ClientKeyFile || a.ForwardURL != b.ForwardURL || a.Verify != b.Verify ||
		!slices.Equal(a.AppIDs, b.AppIDs) {
		return false
	}
	ka, kb := a.Keys(), b.Keys()
	if (ka.PrivateKey == nil) != (kb.PrivateKey == nil) || ka.PrivateKey != nil && !ka.PrivateKey.Equal(kb.PrivateKey) {
		return false
	}
	if (ka.PublicKey == nil) != (kb.PublicKey == nil) || ka.PublicKey != nil && !ka.PublicKey.Equal(kb.PublicKey) {
		return false
	}
	if (ka.ClientCert == nil) != (kb.ClientCert == nil) {
		return false
	}
	return ka.ClientCert == nil || reflect.DeepEqual(ka.ClientCert.Certificate, kb.ClientCert.Certificate)
}
