package policies

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Problem is one thing wrong with a configuration, at a key path such as "app[0].xpay.app_key".
type Problem struct {
	Key     string
	Message string
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config has %d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", p.Key, p.Message)
	}
	return b.String()
}

// validator collects problems.
type validator struct{ problems []Problem }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

var (
	namePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)
	mchIDPattern = regexp.MustCompile(`^[0-9]{8,12}$`)
)

// IsAppID reports whether s is a mini program AppID: wx and 16 lower-case hex digits. It is the
// one rule for appids, in the config and in requests alike.
func IsAppID(s string) bool { return appIDPattern.MatchString(s) }

// IsMchID reports whether s is a WeChat Pay merchant id: 8 to 12 digits.
func IsMchID(s string) bool { return mchIDPattern.MatchString(s) }

func (c *Config) validate(v *validator, baseDir string) {
	c.validateServer(v)
	c.validateAppListen(v, baseDir)
	if c.Upstream.CAFile != "" {
		c.Upstream.CAFile = resolvePath(baseDir, c.Upstream.CAFile)
	}
	c.validateUpstream(v)
	v.positive("sessions.ttl", c.Sessions.TTL)
	if c.Sessions.MaxEntries < 0 {
		v.add("sessions.max_entries", "must be positive")
	}
	v.positive("forward.timeout", c.Forward.Timeout)
	if c.Forward.MaxConns < 1 {
		v.add("forward.max_conns", "must be positive")
	}
	c.Store.validate(v, baseDir)
	switch c.Log.Level {
	case LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError:
	default:
		v.add("log.level", `must be "debug", "info", "warn" or "error", got %q`, c.Log.Level)
	}
	switch c.Log.Format {
	case LogFormatText, LogFormatJSON:
	default:
		v.add("log.format", `must be "text" or "json", got %q`, c.Log.Format)
	}
	for i, p := range c.Routes.Allow {
		key := fmt.Sprintf("routes.allow[%d]", i)
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# ") {
			v.add(key, "must be a path such as /wxa/msg_sec_check, got %q", p)
		} else if _, builtin := lookupSigned(p); builtin {
			v.add(key, "%s is already routed with its own signatures; remove it from the allowlist", p)
		}
	}
	if len(c.Apps) == 0 {
		v.add("app", "at least one [[app]] is required")
	}
	names := map[string]string{}
	appIDs := map[string]string{}
	for i := range c.Apps {
		c.Apps[i].validate(v, fmt.Sprintf("app[%d]", i), names, appIDs)
	}
	if !c.Forward.Secret.hasRef() {
		for i, a := range c.Apps {
			if a.ForwardURL != "" {
				v.add(fmt.Sprintf("app[%d].forward_url", i), "forwarding needs forward.secret to sign events")
			}
		}
	}
	mnames := map[string]string{}
	for i := range c.Merchants {
		c.Merchants[i].validate(v, fmt.Sprintf("merchant[%d]", i), mnames, appIDs, c.Forward.Secret.hasRef())
	}
}

func (c *Config) validateServer(v *validator) {
	s := c.Server
	listens := map[string]string{}
	for _, l := range []struct{ key, addr string }{
		{"server.app_listen", s.AppListen},
		{"server.callback_listen", s.CallbackListen},
		{"server.admin_listen", s.AdminListen},
	} {
		if strings.HasPrefix(l.addr, UnixSocketPrefix) {
			if l.key != "server.app_listen" { // the app listener's socket: validateAppListen
				v.add(l.key, "must be host:port (only server.app_listen may be a unix: socket), got %q", l.addr)
			}
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			v.add(l.key, "must be host:port, got %q", l.addr)
			continue
		}
		if other, dup := listens[l.addr]; dup && !strings.HasSuffix(l.addr, ":0") {
			v.add(l.key, "same address as %s", other)
		}
		listens[l.addr] = l.key
	}
	if s.MaxBodyBytes < 1024 {
		v.add("server.max_body_bytes", "must be at least 1024, got %d", s.MaxBodyBytes)
	}
	if s.MaxUploadBytes < 1024 {
		v.add("server.max_upload_bytes", "must be at least 1024, got %d", s.MaxUploadBytes)
	}
	if s.MaxConns < 1 {
		v.add("server.max_conns", "must be positive")
	}
	v.positive("server.read_timeout", s.ReadTimeout)
	v.positive("server.write_timeout", s.WriteTimeout)
	v.positive("server.idle_timeout", s.IdleTimeout)
	v.positive("server.callback_read_timeout", s.CallbackReadTimeout)
	if s.CallbackMaxBodyBytes < 1024 {
		v.add("server.callback_max_body_bytes", "must be at least 1024, got %d", s.CallbackMaxBodyBytes)
	}
	if s.CallbackMaxConns < 1 {
		v.add("server.callback_max_conns", "must be positive")
	}
	if s.CallbackMaxConnsPerIP < 0 {
		v.add("server.callback_max_conns_per_ip", "must be 0 (no cap) or positive")
	}
	v.positive("server.sign_max_wait", s.SignMaxWait)
	if s.SignConcurrency < 1 {
		v.add("server.sign_concurrency", "must be positive")
	}
	if s.SignPriority != SignPriorityLow && s.SignPriority != SignPriorityNormal {
		v.add("server.sign_priority", "must be %q or %q, got %q", SignPriorityLow, SignPriorityNormal, s.SignPriority)
	}
}

func (c *Config) validateUpstream(v *validator) {
	u := c.Upstream
	v.baseURL("upstream.weixin", u.Weixin)
	v.baseURL("upstream.mch", u.Mch)
	v.positive("upstream.timeout", u.Timeout)
	v.positive("upstream.max_idle_duration", u.MaxIdleDuration)
	if u.MaxConnsPerHost < 1 {
		v.add("upstream.max_conns_per_host", "must be positive")
	}
	if u.MaxResponseBytes < 1024 {
		v.add("upstream.max_response_bytes", "must be at least 1024, got %d", u.MaxResponseBytes)
	}
}

func (a *App) validate(v *validator, key string, names, appIDs map[string]string) {
	v.uniqueName(key, a.Name, "X-Wxgate-App", names)
	if !IsAppID(a.AppID) {
		v.add(key+".appid", "must look like wx followed by 16 hex digits, got %q", a.AppID)
	} else if other, dup := appIDs[a.AppID]; dup {
		v.add(key+".appid", "already used by %s", other)
	} else {
		appIDs[a.AppID] = key
	}
	v.requiredRef(key+".secret", a.Secret)
	a.validateKind(v, key)
	if a.ForwardURL != "" {
		v.httpURL(key+".forward_url", a.ForwardURL)
	}
	if x := a.Xpay; x != nil {
		v.requiredRef(key+".xpay.app_key", x.AppKey)
		if len(x.OfferID) > 64 {
			v.add(key+".xpay.offer_id", "is longer than 64 characters")
		}
	}
	if p := a.Push; p != nil {
		v.requiredRef(key+".push.token", p.Token)
	}
}

func (m *Merchant) validate(v *validator, key string, names, appIDs map[string]string, forwardSecret bool) {
	v.uniqueName(key, m.Name, "X-Wxgate-Merchant", names)
	if !IsMchID(m.MchID) {
		v.add(key+".mchid", "must be the 8-12 digit merchant id, got %q", m.MchID)
	}
	if m.AppID != "" && !IsAppID(m.AppID) {
		v.add(key+".appid", "must look like wx followed by 16 hex digits, got %q", m.AppID)
	}
	m.validateAppIDs(v, key)
	if !serialPattern.MatchString(m.SerialNo) {
		v.add(key+".serial_no", "must be the merchant API certificate serial (hex, e.g. 40 characters), got %q", m.SerialNo)
	}
	if m.PrivateKeyFile == "" {
		v.add(key+".private_key_file", "is required: the merchant API private key (apiclient_key.pem)")
	}
	switch m.Verify {
	case VerifyPublicKey, VerifyBoth, VerifyCertificates:
	default:
		v.add(key+".verify", "must be \"public_key\", \"certificates\" or \"both\", got %q", m.Verify)
	}
	if m.UsesPublicKey() {
		if !publicKeyIDPattern.MatchString(m.PublicKeyID) {
			v.add(key+".public_key_id", "must be the WeChat Pay public key id PUB_KEY_ID_ followed by digits, got %q", m.PublicKeyID)
		}
		if m.PublicKeyFile == "" {
			v.add(key+".public_key_file", "is required when verifying with the WeChat Pay public key (pub_key.pem)")
		}
	}
	if m.UsesCertificates() && !m.APIv3Key.hasRef() {
		v.add(key+".apiv3_key", "is required to download platform certificates (verify = %q)", m.Verify)
	}
	if (m.ClientCertFile == "") != (m.ClientKeyFile == "") {
		v.add(key+".client_cert_file", "client_cert_file and client_key_file go together (APIv2 /secapi/ calls)")
	}
	if m.ForwardURL != "" {
		v.httpURL(key+".forward_url", m.ForwardURL)
		if !forwardSecret {
			v.add(key+".forward_url", "forwarding needs forward.secret to sign events")
		}
	}
}

// validateAppIDs checks [[merchant]] appids: each an appid, none twice. The merchant's own appid
// may be repeated in the list (it is in it anyway).
func (m *Merchant) validateAppIDs(v *validator, key string) {
	seen := make(map[string]int, len(m.AppIDs))
	for i, a := range m.AppIDs {
		k := fmt.Sprintf("%s.appids[%d]", key, i)
		switch prev, dup := seen[a]; {
		case !IsAppID(a):
			v.add(k, "must look like wx followed by 16 hex digits, got %q", a)
		case dup:
			v.add(k, "%q is already appids[%d]; list each appid once", a, prev)
		default:
			seen[a] = i
		}
	}
}

var (
	serialPattern      = regexp.MustCompile(`^[0-9A-Fa-f]{8,64}$`)
	publicKeyIDPattern = regexp.MustCompile(`^PUB_KEY_ID_[0-9]{10,40}$`)
)

// resolvePath anchors a relative path at the config file's folder.
func resolvePath(baseDir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

// loadPEM reads a PEM file and parses it; errors name the file, never its content.
func loadPEM[T any](baseDir, path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := os.ReadFile(resolvePath(baseDir, path))
	if err != nil {
		return zero, fmt.Errorf("cannot read %s: %w", path, err)
	}
	k, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// uniqueName checks the name of an [[app]] or [[merchant]]: its pattern (it is a header value and
// a callback path segment) and that no other entry has it.
func (v *validator) uniqueName(key, name, header string, names map[string]string) {
	switch other, dup := names[name]; {
	case !namePattern.MatchString(name):
		v.add(key+".name", "must be 1-32 of a-z 0-9 _ - (it is the %s header value), got %q", header, name)
	case dup:
		v.add(key+".name", "%q is already the name of %s", name, other)
	default:
		names[name] = key
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, "must be a positive duration such as \"5s\", got %s", d)
	}
}

// PlaceholderPrefix starts the values config.example.toml leaves for the operator to fill in; a
// config still holding one is refused at the key.
const PlaceholderPrefix = "replace-with-"

// placeholders reports every string under key in a decoded TOML tree that is still an example
// placeholder, by its key path (app[0].xpay.app_key).
func (v *validator) placeholders(key string, node any) {
	join := func(k string) string {
		if key == "" {
			return k
		}
		return key + "." + k
	}
	switch n := node.(type) {
	case map[string]any:
		ks := make([]string, 0, len(n))
		for k := range n {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			v.placeholders(join(k), n[k])
		}
	case []map[string]any:
		for i, m := range n {
			v.placeholders(fmt.Sprintf("%s[%d]", key, i), m)
		}
	case []any:
		for i, e := range n {
			v.placeholders(fmt.Sprintf("%s[%d]", key, i), e)
		}
	case string:
		if strings.HasPrefix(strings.ToLower(n), PlaceholderPrefix) {
			v.add(key, "still holds the example's placeholder (%s...): write the real value, inline, as env:NAME or as file:PATH", PlaceholderPrefix)
		}
	}
}

// requiredRef reports a secret that is not written at all (its value is read by provision).
func (v *validator) requiredRef(key string, s Secret) {
	if !s.hasRef() {
		v.add(key, "is required (inline, \"env:NAME\" or \"file:PATH\")")
	}
}

// secret resolves a secret's value, reporting where it cannot be read.
func (v *validator) secret(key string, s *Secret, baseDir string) {
	if err := s.resolve(baseDir); err != nil {
		v.add(key, "%v", err)
	}
}

func (v *validator) baseURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(key, "must be an http(s) URL such as https://api.weixin.qq.com, got %q", raw)
		return
	}
	if u.Path != "" || u.RawQuery != "" {
		v.add(key, "must have no path or query, got %q", raw)
	}
}

func (v *validator) httpURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(key, "must be an http(s) URL, got %q", raw)
	}
}

// Store kinds.
const (
	StoreDisk   = "disk"
	StoreRedis  = "redis"
	StoreMemory = "memory"
)

// storePrefixPattern keeps Redis key prefixes printable and short.
var storePrefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:{}-]{0,64}$`)

func (s *Store) validate(v *validator, baseDir string) {
	redisSet := s.RedisURL.hasRef() || len(s.RedisClusterAddrs) > 0 || s.RedisSentinel != nil || s.RedisCAFile != ""
	switch s.Kind {
	case StoreDisk:
		s.Dir = resolvePath(baseDir, s.Dir)
	case StoreMemory:
	case StoreRedis:
		if s.RedisCAFile != "" {
			s.RedisCAFile = resolvePath(baseDir, s.RedisCAFile)
		}
		v.positive("store.timeout", s.Timeout)
		v.positive("store.cache_ttl", s.CacheTTL)
		if !storePrefixPattern.MatchString(s.Prefix) {
			v.add("store.prefix", "must be at most 64 letters, digits or _.:{}- characters, got %q", s.Prefix)
		}
		if !redisSet {
			v.add("store.redis_url", `is required with kind = "redis" (or set store.redis_cluster_addrs or [store.redis_sentinel])`)
		}
		if len(s.RedisClusterAddrs) > 0 && s.RedisSentinel != nil {
			v.add("store.redis_cluster_addrs", "and [store.redis_sentinel] exclude each other: a cluster is not watched by sentinels")
		}
		for i, a := range s.RedisClusterAddrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				v.add(fmt.Sprintf("store.redis_cluster_addrs[%d]", i), "must be host:port, got %q", a)
			}
		}
		if st := s.RedisSentinel; st != nil {
			if st.Master == "" {
				v.add("store.redis_sentinel.master", "is required: the master set name the sentinels watch")
			}
			if len(st.Addrs) == 0 {
				v.add("store.redis_sentinel.addrs", "is required: host:port of at least one sentinel")
			}
			for i, a := range st.Addrs {
				if _, _, err := net.SplitHostPort(a); err != nil {
					v.add(fmt.Sprintf("store.redis_sentinel.addrs[%d]", i), "must be host:port, got %q", a)
				}
			}
		}
	default:
		v.add("store.kind", `must be "disk", "redis" or "memory", got %q`, s.Kind)
	}
	if s.Kind != StoreRedis && redisSet {
		v.add("store.kind", "is %q but Redis settings are present: set kind = \"redis\" to use them, or remove them", s.Kind)
	}
}
