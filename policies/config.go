// Package policies is wxgate's configuration model: the TOML file turned into validated types
// (apps, merchants, listeners, limits) and the route table that says, for each WeChat path, which
// credentials and signatures apply.
package policies

import (
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a whole wxgate configuration, validated.
type Config struct {
	Server    Server     `toml:"server"`
	Upstream  Upstream   `toml:"upstream"`
	Forward   Forward    `toml:"forward"`
	Sessions  Sessions   `toml:"sessions"`
	Store     Store      `toml:"store"`
	Routes    Routes     `toml:"routes"`
	Log       Log        `toml:"log"`
	Apps      []App      `toml:"app"`
	Merchants []Merchant `toml:"merchant"`

	baseDir string // the config file's folder, which relative paths start from
}

// The values of [server] sign_priority.
const (
	SignPriorityLow    = "low"
	SignPriorityNormal = "normal"
)

// Server holds the three listeners and the limits of wxgate's own HTTP servers.
type Server struct {
	// AppListen is where the app reaches wxgate: host:port, or unix:PATH for a Unix socket
	// (a relative PATH starts at the config file's folder).
	AppListen string `toml:"app_listen"`
	// AppSocketMode is the permission bits of the app listener's Unix socket file, in octal
	// ("0660", the default): who may connect. Only with app_listen = "unix:...".
	AppSocketMode string `toml:"app_socket_mode"`
	// AppToken, when set, must come with every request on the app listener as
	// "Authorization: Bearer <token>". It is required when app_listen is neither loopback nor a
	// Unix socket, so that a reachable app listener is never an open signing proxy.
	AppToken       Secret `toml:"app_token"`
	CallbackListen string `toml:"callback_listen"`
	AdminListen    string `toml:"admin_listen"`
	MaxBodyBytes   int    `toml:"max_body_bytes"`
	// MaxUploadBytes is the largest request body on the WeChat Pay media upload routes
	// (multipart/form-data, policies.UploadRoutes), which take it instead of MaxBodyBytes.
	MaxUploadBytes int           `toml:"max_upload_bytes"`
	MaxConns       int           `toml:"max_conns"`
	ReadTimeout    time.Duration `toml:"read_timeout"`
	WriteTimeout   time.Duration `toml:"write_timeout"`
	IdleTimeout    time.Duration `toml:"idle_timeout"`
	// CallbackMaxBodyBytes is the largest notification body the callback listener reads (WeChat's
	// are a few KiB); the body is read as it arrives, never allocated from Content-Length.
	CallbackMaxBodyBytes int `toml:"callback_max_body_bytes"`
	// CallbackMaxConns caps the callback listener's simultaneous connections.
	CallbackMaxConns int `toml:"callback_max_conns"`
	// CallbackMaxConnsPerIP caps the callback listener's connections from one address; 0 turns
	// the cap off (for a reverse proxy in front, where every connection comes from its address).
	CallbackMaxConnsPerIP int `toml:"callback_max_conns_per_ip"`
	// CallbackReadTimeout is the time a caller of the callback listener has to send its whole
	// request (headers and body).
	CallbackReadTimeout time.Duration `toml:"callback_read_timeout"`
	// SignConcurrency caps RSA signatures computed at once (default: the number of cores).
	SignConcurrency int `toml:"sign_concurrency"`
	// SignMaxWait bounds a request's wait for a signing slot (default 1s): a request joins the
	// queue when the signatures ahead should finish within three quarters of it (half while
	// refusals go on), else it is answered 503 at once, and a waiter still without a slot at nine
	// tenths of it is answered 503 then.
	SignMaxWait time.Duration `toml:"sign_max_wait"`
	// SignPriority is where RSA signatures run: SignPriorityLow (the default) on threads of
	// lowered priority, so that answers needing no signature go first on saturated cores;
	// SignPriorityNormal on the request's own goroutine, which saves the handoff to those threads
	// (bench/optimisations.md: about 30 µs of CPU per signature) at the cost of that ordering.
	SignPriority string `toml:"sign_priority"`
	// Pprof serves Go's profiler at /debug/pprof/ on the admin listener (default off).
	Pprof bool `toml:"pprof"`
}

// Upstream says where WeChat is and how wxgate's pooled client talks to it.
type Upstream struct {
	Weixin           string        `toml:"weixin"`
	Mch              string        `toml:"mch"`
	Timeout          time.Duration `toml:"timeout"`
	MaxConnsPerHost  int           `toml:"max_conns_per_host"`
	MaxIdleDuration  time.Duration `toml:"max_idle_duration"`
	MaxResponseBytes int           `toml:"max_response_bytes"`
	// CAFile adds trusted CA certificates (PEM) for upstream TLS, e.g. the emulator's or an
	// egress proxy's; the system roots stay trusted.
	CAFile string `toml:"ca_file"`
}

// Forward configures how verified callbacks are forwarded to the app.
type Forward struct {
	Secret  Secret        `toml:"secret"`
	Timeout time.Duration `toml:"timeout"`
	// MaxConns caps the connections to each app's forward_url, so the distinct events forwarded
	// at once; past it an event is refused to WeChat at once (WeChat retries it later).
	MaxConns int `toml:"max_conns"`
}

// Sessions configures the session_key store.
type Sessions struct {
	TTL        time.Duration `toml:"ttl"`
	MaxEntries int           `toml:"max_entries"`
}

// Store selects where session keys and the callback door's records live.
type Store struct {
	// Kind is "disk" (the default: a file under Dir), "redis" (shared by every instance on the
	// same Redis and Prefix) or "memory" (nothing survives a restart).
	Kind string `toml:"kind"`
	// Dir is the disk kind's folder, relative to the config file's folder.
	Dir string `toml:"dir"`
	// Prefix starts every Redis key wxgate writes.
	Prefix string `toml:"prefix"`
	// Timeout bounds each Redis operation; past it the call answers wxgate.store_unavailable.
	Timeout time.Duration `toml:"timeout"`
	// CacheTTL bounds how long a session key read from Redis is served from memory; Redis
	// invalidates the copy as soon as another instance writes the key.
	CacheTTL time.Duration `toml:"cache_ttl"`
	// RedisURL is redis://[user:password@]host:port[/db], or rediss:// for TLS. With a cluster
	// or a sentinel it gives only the credentials, TLS and db.
	RedisURL Secret `toml:"redis_url"`
	// RedisCAFile is a PEM file of CA certificates trusted for rediss://, besides the system's.
	RedisCAFile string `toml:"redis_ca_file"`
	// RedisClusterAddrs are seed nodes of a Redis Cluster.
	RedisClusterAddrs []string `toml:"redis_cluster_addrs"`
	// RedisSentinel finds the master through Sentinel.
	RedisSentinel *RedisSentinel `toml:"redis_sentinel"`
}

// RedisSentinel names a master set and the sentinels that watch it.
type RedisSentinel struct {
	Master   string   `toml:"master"`
	Addrs    []string `toml:"addrs"`
	Password Secret   `toml:"password"`
}

// The values of [log] level and format.
const (
	LogLevelDebug = "debug"
	LogLevelInfo  = "info"
	LogLevelWarn  = "warn"
	LogLevelError = "error"
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Log configures what wxgate serve logs and how.
type Log struct {
	// Level is the least severe level written: "debug", "info" (the default), "warn" or "error".
	Level string `toml:"level"`
	// Format is "text" (the default, key=value pairs) or "json" (one JSON object a line).
	Format string `toml:"format"`
	// Access writes one line per request on the app and callback listeners (default off).
	Access bool `toml:"access"`
}

// Routes extends the built-in allowlist of api.weixin.qq.com paths that get an access_token.
type Routes struct {
	Allow []string `toml:"allow"`
}

// App is one mini program.
type App struct {
	Name  string `toml:"name"`
	AppID string `toml:"appid"`
	// Kind is "miniprogram" (the default) or "minigame": it decides which virtual-payment APIs
	// (/xpay/... or /wxa/game/...) and payment-params modes the app may use.
	Kind       string `toml:"kind"`
	Secret     Secret `toml:"secret"`
	ForwardURL string `toml:"forward_url"`
	Xpay       *Xpay  `toml:"xpay"`
	Push       *Push  `toml:"push"`
}

// Xpay holds an app's virtual-payment settings.
type Xpay struct {
	OfferID       string `toml:"offer_id"`
	AppKey        Secret `toml:"app_key"`
	SandboxAppKey Secret `toml:"sandbox_app_key"`
}

// Push holds an app's message-push settings.
type Push struct {
	Token          Secret `toml:"token"`
	EncodingAESKey Secret `toml:"encoding_aes_key"`
}

// Merchant is one WeChat Pay merchant.
type Merchant struct {
	Name           string `toml:"name"`
	MchID          string `toml:"mchid"`
	AppID          string `toml:"appid"`
	SerialNo       string `toml:"serial_no"`
	PrivateKeyFile string `toml:"private_key_file"`
	APIv3Key       Secret `toml:"apiv3_key"`
	PublicKeyID    string `toml:"public_key_id"`
	PublicKeyFile  string `toml:"public_key_file"`
	APIv2Key       Secret `toml:"apiv2_key"`
	ClientCertFile string `toml:"client_cert_file"`
	ClientKeyFile  string `toml:"client_key_file"`
	ForwardURL     string `toml:"forward_url"`
	// Verify chooses how WeChat Pay's answers and notifications are verified: "public_key" (the
	// WeChat Pay public key), "certificates" (platform certificates downloaded with the APIv3 key)
	// or "both" (during a switch-over). Default: "public_key" when public_key_id is set, else
	// "certificates".
	Verify string `toml:"verify"`

	// AppIDs lists every appid that pays into the merchant (mini programs, official accounts,
	// apps): an APIv3 or APIv2 notification naming another appid is refused. AppID stays the
	// default for payment parameters and is in the list implicitly. With both empty no appid is
	// checked.
	AppIDs []string `toml:"appids"`

	keys MerchantKeys
}

// MerchantKeys is a merchant's key material, loaded and checked during validation.
type MerchantKeys struct {
	PrivateKey *rsa.PrivateKey  // signs requests and paySign
	PublicKey  *rsa.PublicKey   // the WeChat Pay public key (nil in certificates mode)
	ClientCert *tls.Certificate // for APIv2 /secapi/ (nil when not configured)
}

// PayingAppIDs returns the appids that pay into the merchant: AppID first (when set), then
// AppIDs without repeating it. Nil means the merchant checks no appid.
func (m *Merchant) PayingAppIDs() []string {
	var out []string
	if m.AppID != "" {
		out = append(out, m.AppID)
	}
	for _, a := range m.AppIDs {
		if a != m.AppID {
			out = append(out, a)
		}
	}
	return out
}

// Keys returns the merchant's loaded key material.
func (m *Merchant) Keys() MerchantKeys { return m.keys }

// UsesPublicKey reports whether answers may be verified with the WeChat Pay public key.
func (m *Merchant) UsesPublicKey() bool { return m.Verify == VerifyPublicKey || m.Verify == VerifyBoth }

// UsesCertificates reports whether platform certificates are downloaded and used.
func (m *Merchant) UsesCertificates() bool {
	return m.Verify == VerifyCertificates || m.Verify == VerifyBoth
}

// Verification modes of a merchant.
const (
	VerifyPublicKey    = "public_key"
	VerifyCertificates = "certificates"
	VerifyBoth         = "both"
)

// Merchant returns the merchant with the given name.
func (c *Config) Merchant(name string) (*Merchant, bool) {
	for i := range c.Merchants {
		if c.Merchants[i].Name == name {
			return &c.Merchants[i], true
		}
	}
	return nil, false
}

// Defaults for every optional key.
const (
	DefaultAppListen      = "127.0.0.1:8080"
	DefaultAppSocketMode  = "0660"
	DefaultCallbackListen = "0.0.0.0:8081"
	DefaultAdminListen    = "127.0.0.1:9090"
	DefaultMaxBodyBytes   = 1 << 20
	// DefaultMaxUploadBytes is WeChat Pay's largest documented media file (5 MiB, a video) plus
	// UploadOverheadBytes for the multipart framing (docs/media.md).
	DefaultMaxUploadBytes = 5<<20 + UploadOverheadBytes
	// UploadOverheadBytes is the room left for an upload's multipart framing beyond the file:
	// boundaries, part headers and the meta JSON take well under 1 KiB; 16 KiB leaves room for
	// long part headers.
	UploadOverheadBytes     = 16 << 10
	DefaultMaxConns         = 10000
	DefaultReadTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultWeixin           = "https://api.weixin.qq.com"
	DefaultMch              = "https://api.mch.weixin.qq.com"
	DefaultUpstreamTimeout  = 5 * time.Second
	DefaultMaxConnsPerHost  = 512
	DefaultMaxIdleDuration  = 30 * time.Second // below the 60 s idle timeouts of common front ends
	DefaultMaxResponseBytes = 16 << 20
	DefaultForwardTimeout   = 4 * time.Second
	DefaultSessionTTL       = 72 * time.Hour
	DefaultSessionEntries   = 2_000_000
	DefaultStoreKind        = "disk"
	DefaultAppKind          = AppKindMiniProgram
	DefaultStoreDir         = "wxgate-data"
	DefaultStorePrefix      = "wxgate:"
	DefaultStoreTimeout     = 500 * time.Millisecond
	DefaultStoreCacheTTL    = 10 * time.Second
	// DefaultSignMaxWait is a second: long beside a signature (1–3 ms), so that a closed loop
	// of hundreds of clients waits its turn, and short beside what a payment call has anyway
	// (WeChat Pay answers in 100–300 ms, [upstream] timeout is 5 s); docs/operations.md.
	DefaultSignMaxWait = time.Second

	DefaultCallbackMaxBodyBytes  = 64 << 10
	DefaultCallbackMaxConns      = 4096
	DefaultCallbackMaxConnsPerIP = 128
	DefaultCallbackReadTimeout   = 5 * time.Second
	DefaultForwardMaxConns       = 256
)

// Load reads, decodes and validates the TOML file at path. Every problem found is reported at once
// in a *ValidationError.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path: %w", err)
	}
	return Parse(raw, filepath.Dir(abs))
}

// Parse decodes, validates and provisions TOML text (Decode, then Provision); baseDir anchors
// relative file paths. Every problem of both steps is reported at once in a *ValidationError.
func Parse(raw []byte, baseDir string) (*Config, error) {
	c, v, err := decode(raw, baseDir)
	if err != nil {
		return nil, err
	}
	c.provision(&v, baseDir)
	if err := v.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode decodes and validates TOML text without side effects: it reads no secret, key or
// certificate (Provision does). Every problem is reported at once in a *ValidationError.
func Decode(raw []byte, baseDir string) (*Config, error) {
	c, v, err := decode(raw, baseDir)
	if err != nil {
		return nil, err
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Provision reads the secrets, keys and certificates a decoded config names and checks the
// rules that need their values. It reads files and the environment, nothing else.
func (c *Config) Provision() error {
	var v validator
	c.provision(&v, c.baseDir)
	return v.err()
}

// decode is Decode with the problems found so far.
func decode(raw []byte, baseDir string) (*Config, validator, error) {
	var c Config
	var v validator
	md, err := toml.Decode(string(raw), &c)
	if err != nil {
		return nil, v, tomlSyntaxError(err)
	}
	for _, k := range md.Undecoded() {
		v.add(k.String(), "unknown key (check the spelling against config.example.toml)")
	}
	var tree map[string]any
	if _, err := toml.Decode(string(raw), &tree); err == nil { // the same text decoded above
		v.placeholders("", tree)
	}
	c.baseDir = baseDir
	c.applyDefaults()
	if !md.IsDefined("server", "callback_max_conns_per_ip") { // 0 is a value: no cap
		c.Server.CallbackMaxConnsPerIP = DefaultCallbackMaxConnsPerIP
	}
	c.validate(&v, baseDir)
	return &c, v, nil
}

// tomlSyntaxError describes a TOML decoding error by line and key only: the parser's own
// message quotes the text it choked on, which may be a secret written without its quotes.
func tomlSyntaxError(err error) error {
	var perr toml.ParseError
	if !errors.As(err, &perr) {
		return fmt.Errorf("config: %w", err) // a type mismatch: it names the key and the types
	}
	where := fmt.Sprintf("line %d", perr.Position.Line)
	if perr.LastKey != "" {
		where += fmt.Sprintf(", key %q", perr.LastKey)
	}
	if strings.Contains(perr.Message, "already been defined") { // names a key, not a value
		return fmt.Errorf("config is not valid TOML: %s: %s", where, perr.Message)
	}
	return fmt.Errorf("config is not valid TOML: %s: the value does not parse (strings need double quotes; "+
		"the text is not shown, it may be a secret)", where)
}

// applyDefaults fills every optional key that was left out.
func (c *Config) applyDefaults() {
	s := &c.Server
	setString(&s.AppListen, DefaultAppListen)
	setString(&s.CallbackListen, DefaultCallbackListen)
	setString(&s.AdminListen, DefaultAdminListen)
	setInt(&s.MaxBodyBytes, DefaultMaxBodyBytes)
	setInt(&s.MaxUploadBytes, DefaultMaxUploadBytes)
	setInt(&s.MaxConns, DefaultMaxConns)
	setDuration(&s.ReadTimeout, DefaultReadTimeout)
	setDuration(&s.WriteTimeout, DefaultWriteTimeout)
	setDuration(&s.IdleTimeout, DefaultIdleTimeout)
	setInt(&s.CallbackMaxBodyBytes, DefaultCallbackMaxBodyBytes)
	setInt(&s.CallbackMaxConns, DefaultCallbackMaxConns)
	setDuration(&s.CallbackReadTimeout, DefaultCallbackReadTimeout)
	setInt(&s.SignConcurrency, runtime.NumCPU())
	setDuration(&s.SignMaxWait, DefaultSignMaxWait)
	setString(&s.SignPriority, SignPriorityLow)
	u := &c.Upstream
	setString(&u.Weixin, DefaultWeixin)
	setString(&u.Mch, DefaultMch)
	setDuration(&u.Timeout, DefaultUpstreamTimeout)
	setInt(&u.MaxConnsPerHost, DefaultMaxConnsPerHost)
	setDuration(&u.MaxIdleDuration, DefaultMaxIdleDuration)
	setInt(&u.MaxResponseBytes, DefaultMaxResponseBytes)
	setDuration(&c.Forward.Timeout, DefaultForwardTimeout)
	setInt(&c.Forward.MaxConns, DefaultForwardMaxConns)
	setDuration(&c.Sessions.TTL, DefaultSessionTTL)
	setInt(&c.Sessions.MaxEntries, DefaultSessionEntries)
	setString(&c.Log.Level, LogLevelInfo)
	setString(&c.Log.Format, LogFormatText)
	st := &c.Store
	setString(&st.Kind, DefaultStoreKind)
	for i := range c.Apps {
		setString(&c.Apps[i].Kind, DefaultAppKind)
	}
	setString(&st.Dir, DefaultStoreDir)
	setString(&st.Prefix, DefaultStorePrefix)
	setDuration(&st.Timeout, DefaultStoreTimeout)
	setDuration(&st.CacheTTL, DefaultStoreCacheTTL)
	for i := range c.Merchants {
		m := &c.Merchants[i]
		if m.Verify == "" {
			m.Verify = VerifyCertificates
			if m.PublicKeyID != "" {
				m.Verify = VerifyPublicKey
			}
		}
	}
	u.Weixin = strings.TrimRight(u.Weixin, "/")
	u.Mch = strings.TrimRight(u.Mch, "/")
}

func setString(p *string, d string) {
	if *p == "" {
		*p = d
	}
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setDuration(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

// Dir is the folder every relative path of the config starts from: the config file's folder.
func (c *Config) Dir() string { return c.baseDir }

// App returns the app with the given name.
func (c *Config) App(name string) (*App, bool) {
	for i := range c.Apps {
		if c.Apps[i].Name == name {
			return &c.Apps[i], true
		}
	}
	return nil, false
}
