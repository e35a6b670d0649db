package proxy

import (
	"fmt"
	"log/slog"
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
	// Store holds session keys and callback records; the caller opens it (store.Open) and
	// closes it after the gateway. Default: a memory store the gateway owns.
	Store store.Store
}

// Gateway holds everything the request path needs, built once at start-up: keys parsed, HMAC
// states ready, token caches and the session store. It is safe for concurrent use.
type Gateway struct {
	cfg      *policies.Config
	routes   *policies.RouteTable
	apps     map[string]*appState
	first    *appState
	weixin   *upstream
	mch      *upstream
	store    store.Store
	ownStore bool // opened by NewGateway: closed by Close
	clock    func() time.Time
	signing  *signing.Slots
	workers  *signing.Workers // compute what signing admits
	bills    *billHashes

	merchants     map[string]*merchantState
	firstMerchant *merchantState
	forwarder     *forwarder
	metrics       *metrics
	log           *slog.Logger
	rate          *rateLog               // repeated warnings, rate-limited
	unhealthy     atomic.Pointer[string] // why /healthz fails, once a listener stopped

	tokenClient *fasthttp.Client // fetches access tokens
	appToken    *appToken        // [server] app_token's check, nil when unset

	readyMu sync.Mutex
	ready   *readyVerdict // the last /readyz verdict (readyCacheFor)
}

// setUnhealthy makes /healthz fail with why (the first reason stays).
func (g *Gateway) setUnhealthy(why string) { g.unhealthy.CompareAndSwap(nil, &why) }

// appState is one configured app, ready for the request path.
type appState struct {
	name, appID string
	secret      string
	offerID     string
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
	tlsBase, err := upstreamTLS(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	wx, err := newUpstream(cfg.Upstream.Weixin, cfg.Upstream, tlsBase)
	if err != nil {
		return nil, err
	}
	mch, err := newUpstream(cfg.Upstream.Mch, cfg.Upstream, tlsBase)
	if err != nil {
		return nil, err
	}
	bills, err := newBillHashes()
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:       cfg,
		routes:    policies.NewRouteTable(cfg.Routes.Allow),
		apps:      make(map[string]*appState, len(cfg.Apps)),
		weixin:    wx,
		mch:       mch,
		clock:     opts.Clock,
		bills:     bills,
		signing:   signing.NewSlots(cfg.Server.SignConcurrency, cfg.Server.SignMaxWait),
		workers:   signing.NewWorkers(cfg.Server.SignConcurrency, signing.NewGovernor(opts.SigningProcs, opts.Logger), cfg.Server.SignPriority == policies.SignPriorityNormal),
		merchants: make(map[string]*merchantState, len(cfg.Merchants)),
		forwarder: newForwarder(cfg.Forward.Secret.Value(), cfg.Forward.Timeout, cfg.Forward.MaxConns, opts.Clock),
		store:     opts.Store,
		metrics:   newMetrics(),
		log:       opts.Logger,
		rate:      newRateLog(opts.Logger, opts.Clock),
		appToken:  newAppToken(cfg.Server.AppToken.Value()),
	}

	if g.store == nil {
		g.store, g.ownStore = store.OpenMemory(StoreOptions(cfg, opts.Clock)), true
	}
	g.tokenClient = &fasthttp.Client{
		Name:                "wxgate",
		MaxConnsPerHost:     tokenClientMaxConns,
		ReadTimeout:         cfg.Upstream.Timeout,
		WriteTimeout:        cfg.Upstream.Timeout,
		MaxIdleConnDuration: cfg.Upstream.MaxIdleDuration,
		MaxResponseBodySize: 64 << 10,
		TLSConfig:           tlsBase,
		// A connection WeChat closed while idle is noticed before a fetch is written on it.
		DialTimeout:               checkIdleTimeout(idleCheckAfter),
		RetryIfErr:                retryIdleClosed,
		MaxIdemponentCallAttempts: idleRetryAttempts(tokenClientMaxConns),
	}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		st := &appState{name: a.Name, appID: a.AppID, secret: a.Secret.Value(), forwardURL: a.ForwardURL}
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
		fetcher := &credentials.StableTokenClient{
			Client: g.tokenClient, BaseURL: cfg.Upstream.Weixin, AppID: a.AppID, Secret: a.Secret.Value(), Timeout: cfg.Upstream.Timeout,
		}
		st.tokens = credentials.NewTokens(fetcher.Fetch, credentials.TokenOptions{Clock: opts.Clock})
		g.apps[a.Name] = st
		if g.first == nil {
			g.first = st
		}
	}
	for i := range cfg.Merchants {
		m, err := g.newMerchantState(&cfg.Merchants[i], tlsBase)
		if err != nil {
			return nil, err
		}
		m.appName = g.appNameByID(m.appID)
		g.merchants[m.name] = m
		if g.firstMerchant == nil {
			g.firstMerchant = m
		}
	}
	return g, nil
}

// Close releases what the gateway holds: it stops the signing threads and closes the idle
// connections of its clients. Call it after the Server using it has shut down.
func (g *Gateway) Close() {
	g.workers.Stop()
	g.weixin.client.CloseIdleConnections()
	g.mch.client.CloseIdleConnections()
	for _, m := range g.merchants {
		if m.secapi != nil {
			m.secapi.client.CloseIdleConnections()
		}
	}
	g.tokenClient.CloseIdleConnections()
	g.forwarder.client.CloseIdleConnections()
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
func (g *Gateway) app(ctx *fasthttp.RequestCtx) (*appState, *apiError) {
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
