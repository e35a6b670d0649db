// Package emulator is a local stand-in for api.weixin.qq.com as far as wxgate needs it: access
// tokens (stable_token and the classic cgi-bin/token), code2Session, every mini-program virtual
// payment ("xpay") server API and the client-side wx.requestVirtualPayment. It verifies every
// signature exactly as WeChat does (pay_sig over uri + "&" + the raw body with the AppKey chosen by
// the body's env, the user-state signature with the openid's current session_key), keeps coin
// balances and orders in memory, and can inject latency and failures. A mini game (App.MiniGame)
// is served virtual payment 2.0 instead (game.go, game_client.go): /wxa/game/..., with
// sig_method checked too, and the wx.requestMidasPaymentGameItem / wx.requestMidasPayment calls.
//
// It also serves the api.mch.weixin.qq.com subset a mini-program merchant uses (mch*.go, v2*.go):
// WeChat Pay APIv3 (JSAPI orders, queries, close, refunds, platform certificates, trade bills),
// with the Authorization of every request verified and every answer signed, and the legacy
// APIv2 XML endpoints (orders, payouts, red packets, contract payments, the fund flow bill, the
// sandbox with its getsignkey), with the client certificate checked where WeChat requires it
// (/secapi/, /mmpaymkttransfers/, downloadfundflow). RequestPaymentClient
// plays the client-side wx.requestPayment.
//
// Like WeChat, it also calls back (notify*.go): signed APIv3 and APIv2 WeChat Pay
// notifications when an order is paid or a refund succeeds, and message pushes of xpay events
// to an app's PushURL, each retried on WeChat's schedule until acknowledged; Deliveries records
// them, and the Build* methods make genuine or forged callbacks on demand.
//
// Test login codes are "test:<user>" (optionally "test:<user>:<nonce>" to log the same user in
// again, since a code is single use); OpenID reports the openid such a login yields.
//
// Everything under /_emulator/ is the emulator's own control surface (token invalidation, fault
// injection, simulated client payments, health); it is never subject to injected faults.
package emulator

import (
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// DefaultTokenTTL is the access_token lifetime used when Config.TokenTTL is zero, as WeChat's.
const DefaultTokenTTL = 7200 * time.Second

// maxCountedPaths bounds the number of distinct paths Calls keeps counters for, so a client
// probing random URLs cannot grow the emulator's memory without limit.
const maxCountedPaths = 4096

// App is one mini-program known to the emulator.
type App struct {
	AppID         string // the mini-program appid
	Secret        string // AppSecret, checked by the token and login endpoints
	OfferID       string // virtual-payment offerId, checked by RequestVirtualPayment
	AppKey        string // production AppKey (env 0)
	SandboxAppKey string // sandbox AppKey (env 1)

	// Message push (消息推送) settings, as in the MP console (xpay.md §4.1); see notify_push.go.
	PushURL    string // where events are pushed; "" pushes nothing
	PushToken  string // the Token that signature and msg_signature are computed with
	PushAESKey string // the 43-character EncodingAESKey (safe and compat modes)
	PushFormat string // "json" (the default) or "xml"
	PushMode   string // "safe" (the default), "compat" or "plain"
	OriginalID string // the mini program's original id ("gh_..."), the ToUserName; derived from the appid when ""

	// MiniGame makes the app a mini game: it is served the virtual payment 2.0 APIs
	// (/wxa/game/..., game.go) and the Midas client calls, and refused /xpay/... .
	MiniGame bool
}

// Config configures an Emulator.
type Config struct {
	Apps     []App            // the mini-programs served; at least one
	TokenTTL time.Duration    // access_token lifetime; DefaultTokenTTL when zero
	Clock    func() time.Time // the emulator's notion of now; time.Now when nil
	// OtherAPIs are extra token-only API paths to serve (errcode 0 after the access_token check),
	// beyond the built-in mini-program APIs.
	OtherAPIs []string
	// Merchants are the WeChat Pay merchants served on the api.mch.weixin.qq.com paths.
	Merchants []Merchant
	// PayKey is the RSA-2048 key pair of the WeChat Pay public key (PayPublicKeyPEM); one is
	// generated on first use when nil. Tests inject one because key generation is slow. The
	// public key id of an injected key is derived from it (PublicKeyIDFor), so the same key
	// always signs under the same id; a generated key gets a random id.
	PayKey *rsa.PrivateKey
	// CA is the certificate authority of the HTTPS listener and the platform certificates; one
	// is created on first use when nil. `wxgate emulate` keeps one across restarts.
	CA *CA
	// RetryScale multiplies WeChat's notification retry schedule (15s, 15s, 30s, 3m, 10m, 20m,
	// 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h); 0 means 1. Tests use e.g. 0.001.
	RetryScale float64
	// AllowHTTPNotifyURL accepts http:// notify_url values on APIv3 orders and refunds (real
	// WeChat Pay requires https; APIv2 accepts http anyway). For local use only.
	AllowHTTPNotifyURL bool
	// IdleTimeout is how long a keep-alive connection may sit idle before the emulator closes it,
	// as WeChat's front ends do; 60 s when zero. Tests shorten it to make that close happen.
	IdleTimeout time.Duration
}

// Emulator is an in-memory WeChat stand-in. It is safe for concurrent use.
type Emulator struct {
	ttl   time.Duration
	clock func() time.Time
	apps  map[string]*appState // fixed after New; the states inside are guarded by mu
	// otherAPIs are Config.OtherAPIs; fixed after New.
	otherAPIs map[string]bool

	mu     sync.Mutex        // guards every appState's mutable fields and tokens
	tokens map[string]*token // every live access_token string -> its record

	statsMu sync.Mutex
	calls   map[string]int // requests received per API path
	last    map[string]Exchange

	faultMu sync.Mutex
	faults  Faults

	mch *mchState // WeChat Pay: merchants, keys, order books (mch.go)
	// sensitive holds merchant transfers and complaints (mch_sensitive.go).
	sensitive sensitiveBook

	notify          *notifier     // callbacks sent to merchants and mini programs (notify.go)
	allowHTTPNotify bool          // Config.AllowHTTPNotifyURL
	idleTimeout     time.Duration // Config.IdleTimeout, defaulted
	openConns       atomic.Int64  // connections accepted and not yet closed (all listeners)

	srvMu     sync.Mutex
	srv       *fasthttp.Server
	closeOnce sync.Once
	stopped   bool          // Shutdown was called
	done      chan struct{} // closed first by Shutdown; releases held (hang/latency) requests
	closed    chan struct{} // closed after the server shut down; stops listeners Serve still owns
}

// appState is everything the emulator knows about one app. Its mutable fields are guarded by
// Emulator.mu.
type appState struct {
	cfg  App
	keys [2]*signer.XpayKey // indexed by env: 0 production, 1 sandbox

	tokenState
	loginState
	outTradeNos map[string]struct{} // client payment outTradeNo values already used
	envs        [2]*envState        // per-env coin and order state
	biz         *bizState           // merchant-level state (bills, withdrawals, export tasks)
	push        *pushSettings       // message push settings; fixed after New
	game        [2]*gameState       // per-env mini-game state (game.go)
}

// New validates cfg and returns an Emulator with empty state. It reports every configuration
// problem at once.
func New(cfg Config) (*Emulator, error) {
	var errs []error
	if len(cfg.Apps) == 0 && len(cfg.Merchants) == 0 {
		errs = append(errs, errors.New("no apps or merchants configured"))
	}
	if cfg.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("token TTL %v is negative", cfg.TokenTTL))
	}
	if cfg.RetryScale < 0 {
		errs = append(errs, fmt.Errorf("retry scale %v is negative", cfg.RetryScale))
	}
	apps := make(map[string]*appState, len(cfg.Apps))
	for i, a := range cfg.Apps {
		if err := validateApp(a); err != nil {
			errs = append(errs, fmt.Errorf("app %d (%q): %w", i, a.AppID, err))
			continue
		}
		if _, dup := apps[a.AppID]; dup {
			errs = append(errs, fmt.Errorf("app %d: appid %q is configured twice", i, a.AppID))
			continue
		}
		push, err := newPushSettings(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("app %d (%q): %w", i, a.AppID, err))
			continue
		}
		st := newAppState(a)
		st.push = push
		apps[a.AppID] = st
	}
	mch, mchErrs := newMchState(cfg)
	errs = append(errs, mchErrs...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("emulator: invalid config: %w", errors.Join(errs...))
	}
	e := &Emulator{
		ttl:             cfg.TokenTTL,
		allowHTTPNotify: cfg.AllowHTTPNotifyURL,
		idleTimeout:     cfg.IdleTimeout,
		clock:           cfg.Clock,
		apps:            apps,
		tokens:          make(map[string]*token),
		calls:           make(map[string]int),
		last:            make(map[string]Exchange),
		otherAPIs:       make(map[string]bool, len(cfg.OtherAPIs)),
		mch:             mch,
		notify:          newNotifier(cfg.RetryScale),
		done:            make(chan struct{}),
		closed:          make(chan struct{}),
	}
	for _, p := range cfg.OtherAPIs {
		e.otherAPIs[p] = true
	}
	if e.ttl == 0 {
		e.ttl = DefaultTokenTTL
	}
	if e.idleTimeout <= 0 {
		e.idleTimeout = 60 * time.Second
	}
	if e.clock == nil {
		e.clock = time.Now
	}
	return e, nil
}

// validateApp reports the first missing field of a. AppKeys are optional: an app without virtual
// payment (or without a sandbox key) fails every pay_sig for that env, as WeChat would.
func validateApp(a App) error {
	for _, f := range []struct{ name, value string }{
		{"appid", a.AppID}, {"secret", a.Secret},
	} {
		if f.value == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
	}
	return nil
}

func newAppState(a App) *appState {
	return &appState{
		cfg:         a,
		keys:        [2]*signer.XpayKey{optionalKey(a.AppKey), optionalKey(a.SandboxAppKey)},
		loginState:  newLoginState(),
		outTradeNos: make(map[string]struct{}),
		envs:        [2]*envState{newEnvState(), newEnvState()},
		biz:         newBizState(),
		game:        [2]*gameState{newGameState(), newGameState()},
	}
}

// optionalKey prepares an AppKey, or returns nil when none is configured.
func optionalKey(k string) *signer.XpayKey {
	if k == "" {
		return nil
	}
	return signer.NewXpayKey(k)
}

// secretMatches compares an offered AppSecret with the configured one in constant time.
func (a *appState) secretMatches(secret []byte) bool {
	return subtle.ConstantTimeCompare(secret, []byte(a.cfg.Secret)) == 1
}

// Handler returns the emulator's request handler, for use with a caller-owned fasthttp.Server.
// Call Shutdown before shutting that server down, so requests held by injected faults are released.
func (e *Emulator) Handler() fasthttp.RequestHandler {
	return e.handle
}

// Serve serves the emulator on ln until Shutdown is called, then returns nil. It may be called
// for several listeners; all share one fasthttp.Server. Called after Shutdown (a Serve started
// in a goroutine may lose that race), it closes ln and returns an error wrapping ErrShutdown.
func (e *Emulator) Serve(ln net.Listener) error {
	srv, err := e.server()
	if err != nil {
		_ = ln.Close()
		return err
	}
	// Close ln on Shutdown even if Shutdown ran before srv.Serve registered the listener, so
	// Serve can never outlive Shutdown. A closed listener makes fasthttp's Serve return nil.
	served := make(chan struct{})
	defer close(served)
	go func() {
		select {
		case <-e.closed:
			_ = ln.Close() // already closed by the server unless Serve lost the race

		case <-served:
		}
	}()
	if err := srv.Serve(ln); err != nil {
		return fmt.Errorf("emulator: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// server returns the emulator's fasthttp.Server, creating it on first use. Its limits are set
// for a test double: generous timeouts (a held "hang" request lasts up to 10 s by default),
// small bodies (WeChat's JSON bodies are a few KB) and a bounded number of connections.
func (e *Emulator) server() (*fasthttp.Server, error) {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.stopped {
		return nil, fmt.Errorf("emulator: serve after shutdown: %w", ErrShutdown)
	}
	if e.srv == nil {
		e.srv = &fasthttp.Server{
			Handler:               e.handle,
			Name:                  "wxgate-emulator",
			Concurrency:           16 * 1024,
			ReadBufferSize:        16 * 1024,
			WriteBufferSize:       16 * 1024,
			ReadTimeout:           30 * time.Second,
			WriteTimeout:          30 * time.Second,
			IdleTimeout:           e.idleTimeout,
			MaxRequestBodySize:    1 << 20,
			HeaderReceived:        mediaBodyLimit, // media uploads up to 5 MiB
			MaxRequestsPerConn:    0,              // unlimited keep-alive, like a real upstream
			CloseOnShutdown:       true,
			NoDefaultContentType:  true,
			TCPKeepalive:          true,
			TCPKeepalivePeriod:    30 * time.Second,
			MaxIdleWorkerDuration: 10 * time.Second,
			ConnState:             e.connState,
		}
	}
	return e.srv, nil
}

// OpenConnections is the number of connections the emulator's listeners hold open now (fasthttp's
// own count is off by one per extra listener).
func (e *Emulator) OpenConnections() int { return int(e.openConns.Load()) }

// connState counts the connections open.
func (e *Emulator) connState(_ net.Conn, st fasthttp.ConnState) {
	switch st {
	case fasthttp.StateNew:
		e.openConns.Add(1)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		e.openConns.Add(-1)
	}
}

// Shutdown releases held requests, stops the notification senders (pending retries are
// abandoned, requests in flight cut), stops Serve and waits for open connections to finish.
func (e *Emulator) Shutdown() error {
	e.srvMu.Lock()
	if !e.stopped {
		e.stopped = true
		close(e.done)
	}
	srv := e.srv
	e.srvMu.Unlock()
	e.notify.stop()
	var err error
	if srv != nil {
		err = srv.Shutdown()
	}
	e.closeOnce.Do(func() { close(e.closed) })
	if err != nil {
		return fmt.Errorf("emulator: shutdown: %w", err)
	}
	return nil
}

// now is the emulator's clock.
func (e *Emulator) now() time.Time { return e.clock() }

// handle routes one request.
func (e *Emulator) handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if strings.HasPrefix(path, controlPrefix) {
		if strings.HasPrefix(path, mchControlPrefix) {
			e.serveMchControl(ctx, path)
			return
		}
		e.serveControl(ctx, path)
		return
	}
	e.countCall(path)
	defer e.recordExchange(path, ctx)
	if api := mchAPIOf(path); api != mchNone && !e.isOtherAPI(path) {
		if e.applyMchFaults(ctx, api) {
			e.serveMch(ctx, path, api)
		}
		return
	}
	if !e.applyFaults(ctx) {
		return
	}
	switch {
	case path == "/cgi-bin/stable_token":
		e.serveStableToken(ctx)
	case path == "/cgi-bin/token":
		e.serveClassicToken(ctx)
	case path == "/sns/jscode2session":
		e.serveLogin(ctx)
	case strings.HasPrefix(path, "/xpay/"):
		e.serveXpay(ctx, path)
	case strings.HasPrefix(path, "/wxa/game/") && gameRoutes[path] != nil:
		e.serveGame(ctx, path)
	case e.isOtherAPI(path):
		e.serveOtherAPI(ctx)
	default:
		writeError(ctx, e.now(), errInvalidURL)
	}
}

// countCall records one request for path.
func (e *Emulator) countCall(path string) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	if _, ok := e.calls[path]; ok || len(e.calls) < maxCountedPaths {
		e.calls[path]++
	}
}

// Calls returns how many requests the emulator received for an API path (for example
// "/xpay/currency_pay"), whatever their outcome, including ones answered by an injected fault.
// Control paths under /_emulator/ are not counted.
func (e *Emulator) Calls(path string) int {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return e.calls[path]
}

// TokenFetches returns how many successful token answers (stable_token and cgi-bin/token) the
// app received — every answer carrying an access_token counts, whether it issued a new token or
// returned the current one — so a caller that caches its token shows one fetch per refresh.
func (e *Emulator) TokenFetches(appID string) int {
	a := e.apps[appID]
	if a == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return a.fetches
}
