package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/credentials"
	"github.com/wxgate/wxgate/internal/signing"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
	"github.com/wxgate/wxgate/store"
)

// Header names the app uses to pick credentials.
const (
	HeaderApp      = "X-Wxgate-App"
	HeaderMerchant = "X-Wxgate-Merchant"
)

// Options are the parts of a Gateway that tests and embedders may replace.
type Options struct {
	Logger *slog.Logger     // default: discard
	Clock  func() time.Time // default time.Now
	// SigningProcs, when above the current GOMAXPROCS, is the GOMAXPROCS to run with while RSA
	// signatures are being computed (and procsIdleAfter beyond); 0 leaves GOMAXPROCS alone.
	SigningProcs int
	// AccessLog writes one info line per request on the app and callback listeners.
	AccessLog bool
	// Version is wxgate's version, shown by wxgate_build_info (commit and Go version come from
	// the binary's build information).
	Version string
	// Store holds session keys and callback records; the caller opens it (store.Open) and
	// closes it after the gateway. Default: a memory store the gateway owns.
	Store store.Store
	// OpenFileLimit, when not 0, is the process's open-file limit: Reload refuses a config that
	// may need more descriptors (DescriptorsNeeded) than that.
	OpenFileLimit uint64
}

// Gateway holds everything the request path needs: the parts a config defines (apps,
// merchants, keys, routes, upstream clients) in an immutable generation that a reload swaps
// whole (reload.go), and the long-lived parts that stay for the life of the process (store,
// signing slots and threads, metrics, logger). It is safe for concurrent use.
type Gateway struct {
	gen      atomic.Pointer[generation] // the config now served; each request loads it once
	store    store.Store
	ownStore bool // opened by NewGateway: closed by Close
	clock    func() time.Time
	signing  *signing.Slots
	workers  *signing.Workers // compute what signing admits
	bills    *billHashes

	metrics   *metrics
	log       *slog.Logger
	rate      *rateLog               // repeated warnings, rate-limited
	accessLog bool                   // [log] access
	unhealthy atomic.Pointer[string] // why /healthz fails, once a listener stopped

	readyMu sync.Mutex
	ready   *readyVerdict // the last /readyz verdict (readyCacheFor)

	reloadMu sync.Mutex // one reload at a time
	fdLimit  uint64     // Options.OpenFileLimit
}

// generation is what one config defines, ready for the request path: the config itself, the
// route table, apps and merchants with their keys parsed, and the upstream clients. It never
// changes once built: a reload builds a new one and swaps it in, and a request keeps the one
// it loaded to its end. It embeds the Gateway for the long-lived parts, so that the request
// path's methods (on *generation) reach both alike.
type generation struct {
	*Gateway
	cfg           *policies.Config
	routes        *policies.RouteTable
	apps          map[string]*appState
	first         *appState
	merchants     map[string]*merchantState
	firstMerchant *merchantState
	weixin        *upstream
	mch           *upstream
	tokenClient   *fasthttp.Client // fetches access tokens
	forwarder     *forwarder
	caPEM         []byte    // the upstream ca_file's contents, to tell whether a reload may keep the clients
	appToken      *appToken // [server] app_token's check, nil when unset
}

// current is the generation now served.
func (g *Gateway) current() *generation { return g.gen.Load() }

// setUnhealthy makes /healthz fail with why (the first reason stays).
func (g *Gateway) setUnhealthy(why string) { g.unhealthy.CompareAndSwap(nil, &why) }

// appState is one configured app, ready for the request path.
type appState struct {
	name, appID string
	secret      string
	offerID     string
	minigame    bool            // [[app]] kind = "minigame"
	prodKey     *signer.XpayKey // nil when [app.xpay] is absent
	sandboxKey  *signer.XpayKey // nil when no sandbox key is configured
	tokens      *credentials.Tokens
	forwardURL  string
	pushToken   string              // "" when [app.push] is absent
	crypter     *signer.PushCrypter // nil without an encoding_aes_key
}

// tokenClientMaxConns caps the connections of the access_token client per WeChat host.
const tokenClientMaxConns = 4

// NewGateway prepares a Gateway from a validated config.
func NewGateway(cfg *policies.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	bills, err := newBillHashes()
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		clock:     opts.Clock,
		bills:     bills,
		signing:   signing.NewSlots(cfg.Server.SignConcurrency, cfg.Server.SignMaxWait),
		store:     opts.Store,
		metrics:   newMetrics(),
		log:       opts.Logger,
		rate:      newRateLog(opts.Logger, opts.Clock),
		fdLimit:   opts.OpenFileLimit,
		accessLog: opts.AccessLog,
	}
	g.registerGauges(opts.Version)
	gen, err := g.newGeneration(cfg, nil)
	if err != nil {
		return nil, err
	}
	g.workers = signing.NewWorkers(cfg.Server.SignConcurrency, signing.NewGovernor(opts.SigningProcs, opts.Logger), cfg.Server.SignPriority == policies.SignPriorityNormal)
	if g.store == nil {
		g.store, g.ownStore = store.OpenMemory(StoreOptions(cfg, opts.Clock)), true
	}
	g.gen.Store(gen)
	g.metrics.lastReload.Store(g.clock().Unix())
	return g, nil
}

// newGeneration builds what cfg defines. Parts whose settings did not change since prev (nil
// at start) are taken over rather than rebuilt: the upstream clients and their pooled
// connections when [upstream] and its ca_file are the same, an app's access_token cache when
// its appid and secret are, a merchant whole (with its downloaded platform certificates) when
// nothing of it changed.
func (g *Gateway) newGeneration(cfg *policies.Config, prev *generation) (*generation, error) {
	caPEM, err := readCAFile(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	gen := &generation{
		Gateway:   g,
		cfg:       cfg,
		routes:    policies.NewRouteTable(cfg.Routes.Allow),
		apps:      make(map[string]*appState, len(cfg.Apps)),
		merchants: make(map[string]*merchantState, len(cfg.Merchants)),
		caPEM:     caPEM,
		appToken:  newAppToken(cfg.Server.AppToken.Value()),
	}
	sameUpstream := prev != nil && prev.cfg.Upstream == cfg.Upstream && bytes.Equal(prev.caPEM, caPEM)
	tlsBase, err := upstreamTLS(cfg.Upstream, caPEM)
	if err != nil {
		return nil, err
	}
	if sameUpstream {
		gen.weixin, gen.mch, gen.tokenClient = prev.weixin, prev.mch, prev.tokenClient
	} else {
		if gen.weixin, err = newUpstream(cfg.Upstream.Weixin, cfg.Upstream, tlsBase); err != nil {
			return nil, err
		}
		if gen.mch, err = newUpstream(cfg.Upstream.Mch, cfg.Upstream, tlsBase); err != nil {
			return nil, err
		}
		gen.tokenClient = newTokenClient(cfg.Upstream, tlsBase)
	}
	if prev != nil && prev.cfg.Forward.Timeout == cfg.Forward.Timeout && prev.cfg.Forward.MaxConns == cfg.Forward.MaxConns {
		gen.forwarder = prev.forwarder.withSecret(cfg.Forward.Secret.Value())
	} else {
		gen.forwarder = newForwarder(cfg.Forward.Secret.Value(), cfg.Forward.Timeout, cfg.Forward.MaxConns, g.clock)
	}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		st := &appState{name: a.Name, appID: a.AppID, secret: a.Secret.Value(), forwardURL: a.ForwardURL, minigame: a.IsMiniGame()}
		if p := a.Push; p != nil {
			st.pushToken = p.Token.Value()
			if p.EncodingAESKey.IsSet() {
				c, err := signer.NewPushCrypter(p.EncodingAESKey.Value())
				if err != nil {
					return nil, fmt.Errorf("app %q encoding_aes_key: %w", a.Name, err)
				}
				st.crypter = c
			}
		}
		if a.Xpay != nil {
			st.offerID = a.Xpay.OfferID
			st.prodKey = signer.NewXpayKey(a.Xpay.AppKey.Value())
			if a.Xpay.SandboxAppKey.IsSet() {
				st.sandboxKey = signer.NewXpayKey(a.Xpay.SandboxAppKey.Value())
			}
		}
		if old, ok := prev.app(a.Name); ok && sameUpstream && old.appID == st.appID && old.secret == st.secret {
			st.tokens = old.tokens // the same credentials at the same WeChat: the token stays good
		} else {
			fetcher := &credentials.StableTokenClient{
				Client: gen.tokenClient, BaseURL: cfg.Upstream.Weixin, AppID: a.AppID, Secret: a.Secret.Value(), Timeout: cfg.Upstream.Timeout,
			}
			st.tokens = credentials.NewTokens(g.loggedFetch(a.Name, fetcher), credentials.TokenOptions{Clock: g.clock})
		}
		gen.apps[a.Name] = st
		if gen.first == nil {
			gen.first = st
		}
	}
	for i := range cfg.Merchants {
		mc := &cfg.Merchants[i]
		var m *merchantState
		if old, ok := prev.merchantConfig(mc.Name); ok && sameUpstream && sameMerchant(old, mc) {
			kept := *prev.merchants[mc.Name] // keys, clients and platform certificates stay
			m = &kept
		} else if m, err = g.newMerchantState(mc, gen.mch, cfg.Upstream, tlsBase); err != nil {
			return nil, err
		}
		m.appName = gen.appNameByID(m.appID)
		gen.merchants[m.name] = m
		if gen.firstMerchant == nil {
			gen.firstMerchant = m
		}
	}
	return gen, nil
}

// newTokenClient is the client that fetches access tokens from WeChat.
func newTokenClient(u policies.Upstream, tlsBase *tls.Config) *fasthttp.Client {
	return &fasthttp.Client{
		Name:                "wxgate",
		MaxConnsPerHost:     tokenClientMaxConns,
		ReadTimeout:         u.Timeout,
		WriteTimeout:        u.Timeout,
		MaxIdleConnDuration: u.MaxIdleDuration,
		MaxResponseBodySize: 64 << 10,
		TLSConfig:           tlsBase,
		// A connection WeChat closed while idle is noticed before a fetch is written on it.
		DialTimeout:               checkIdleTimeout(idleCheckAfter),
		RetryIfErr:                retryIdleClosed,
		MaxIdemponentCallAttempts: idleRetryAttempts(tokenClientMaxConns),
	}
}

// app returns the app called name in gen (false when gen is nil or has none).
func (gen *generation) app(name string) (*appState, bool) {
	if gen == nil {
		return nil, false
	}
	a, ok := gen.apps[name]
	return a, ok
}

// merchantConfig returns the config of the merchant called name in gen (false when gen is nil
// or has none).
func (gen *generation) merchantConfig(name string) (*policies.Merchant, bool) {
	if gen == nil {
		return nil, false
	}
	return gen.cfg.Merchant(name)
}

// idleCloser is a client whose pooled connections can be closed.
type idleCloser interface{ CloseIdleConnections() }

// clients lists gen's upstream and forward clients.
func (gen *generation) clients() []idleCloser {
	out := []idleCloser{gen.weixin.client, gen.mch.client, gen.tokenClient, gen.forwarder.client, gen.forwarder.replyClient}
	for _, m := range gen.merchants {
		if m.secapi != nil {
			out = append(out, m.secapi.client)
		}
	}
	return out
}

// loggedFetch is fetcher's Fetch with its failures counted and logged: WeChat's errcode and
// errmsg (40125: a wrong AppSecret; 40164: an address not in the IP allowlist) or the transport
// error. The fetcher's errors never carry the secret or a token.
func (g *Gateway) loggedFetch(app string, fetcher *credentials.StableTokenClient) credentials.FetchFunc {
	host := forwardHost(fetcher.BaseURL)
	return func(force bool) (string, time.Duration, error) {
		start := time.Now()
		tok, ttl, err := fetcher.Fetch(force)
		took := time.Since(start)
		series := g.metrics.upstreamFor(host, "/cgi-bin/stable_token")
		series.dur.Update(took.Seconds())
		if err == nil {
			return tok, ttl, nil
		}
		g.metrics.tokenFailures.Inc()
		args := []any{"app", app, "force_refresh", force, "duration_ms", millis(took)}
		kind := "token\x00" + app + "\x00"
		var we *credentials.WeChatError
		if errors.As(err, &we) {
			series.fail(g.metrics, "errcode")
			args = append(args, "errcode", we.Code, "errmsg", we.Msg)
			kind += strconv.Itoa(we.Code) // errmsg carries a request id: not part of the kind
		} else {
			class, _ := errorClass(err)
			series.fail(g.metrics, class)
			args = append(args, "error", class, "cause", err.Error())
			kind += class
		}
		g.rate.error(kind, "access_token fetch failed", args...)
		return tok, ttl, err
	}
}

// Close releases what the gateway holds: it stops the signing threads and closes the idle
// connections of its clients. Call it after the Server using it has shut down.
func (g *Gateway) Close() {
	g.workers.Stop()
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	for _, c := range g.current().clients() {
		c.CloseIdleConnections()
	}
	if g.ownStore {
		_ = g.store.Close()
	}
}

// StoreOptions are the store options cfg sets: the session TTL and cap, and a claim that
// outlives the longest forward.
func StoreOptions(cfg *policies.Config, clock func() time.Time) store.Options {
	return store.Options{
		SessionTTL:  cfg.Sessions.TTL,
		MaxSessions: cfg.Sessions.MaxEntries,
		ReplayTTL:   2 * maxClockSkew,
		ClaimTTL:    cfg.Forward.Timeout + claimMargin,
		Timeout:     cfg.Store.Timeout,
		Clock:       clock,
	}
}

// claimMargin is how long a delivery's claim outlives the forward timeout: past it, a claim
// whose holder died (kill -9) lapses and WeChat's retry is delivered.
const claimMargin = 5 * time.Second

// app picks the app named by the X-Wxgate-App header, or the first configured app.
func (g *generation) appFor(ctx *fasthttp.RequestCtx) (*appState, *apiError) {
	name := ctx.Request.Header.Peek(HeaderApp)
	if len(name) == 0 {
		return g.first, nil
	}
	if a, ok := g.apps[string(name)]; ok {
		return a, nil
	}
	return nil, newError(fasthttp.StatusBadRequest, CodeUnknownApp,
		fmt.Sprintf("%s names no configured app (%q); use the name of an [[app]] in the config or leave the header out for the first app", HeaderApp, truncate(name, 40)))
}

// xpayKey picks the AppKey for the body's env: 0 production, 1 sandbox.
func (a *appState) xpayKey(env int64) (*signer.XpayKey, *apiError) {
	if a.prodKey == nil {
		return nil, newError(fasthttp.StatusBadRequest, CodeXpayNotConfigured,
			fmt.Sprintf("app %q has no [app.xpay] section; add its offer_id and app_key to the config", a.name))
	}
	switch env {
	case 0:
		return a.prodKey, nil
	case 1:
		if a.sandboxKey == nil {
			return nil, newError(fasthttp.StatusBadRequest, CodeSandboxKeyMissing,
				fmt.Sprintf("env is 1 (sandbox) but app %q has no xpay.sandbox_app_key; add it or send env 0", a.name))
		}
		return a.sandboxKey, nil
	}
	return nil, newError(fasthttp.StatusBadRequest, CodeBadEnv, "env must be the number 0 (production) or 1 (sandbox)")
}

// truncate shortens untrusted input before it is echoed in an error message.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
