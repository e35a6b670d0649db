package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const minimal = `
[[app]]
name = "shop"
appid = "wx0123456789abcdef"
secret = "s3cr3t-app-secret"
[app.xpay]
app_key = "prod-app-key"
`

// examplePlaceholders are the placeholder values of config.example.toml and the keys holding them.
var examplePlaceholders = map[string]string{
	"app[0].xpay.app_key":          "replace-with-the-production-appkey",
	"app[0].xpay.sandbox_app_key":  "replace-with-the-sandbox-appkey",
	"app[0].push.token":            "replace-with-the-push-token",
	"app[0].push.encoding_aes_key": "replace-with-the-43-character-encodingaeskey",
}

// TestExampleConfigLoads: config.example.toml is refused as shipped, naming each placeholder's
// key; with the placeholders filled in, it loads as documented.
func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("WXGATE_APP_SECRET", "example-app-secret")
	t.Setenv("WXGATE_FORWARD_SECRET", "example-forward-secret-0123")
	raw, err := os.ReadFile(filepath.Join("..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Decode(raw, t.TempDir())
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("config.example.toml with its placeholders: %v, want a ValidationError", err)
	}
	named := map[string]bool{}
	for _, p := range ve.Problems {
		if !strings.Contains(p.Message, "placeholder") {
			t.Errorf("unexpected problem %s: %s", p.Key, p.Message)
		}
		named[p.Key] = true
	}
	filled := string(raw)
	for key, placeholder := range examplePlaceholders {
		if !named[key] {
			t.Errorf("the placeholder at %s is not refused: %v", key, err)
		}
		filled = strings.Replace(filled, placeholder, "", 1)
		if key == "app[0].push.encoding_aes_key" {
			filled = strings.Replace(filled, `encoding_aes_key = ""`, `encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"`, 1)
		} else {
			filled = strings.Replace(filled, `= ""`, `= "filled-`+key+`"`, 1)
		}
	}
	c, err := Parse([]byte(filled), t.TempDir())
	if err != nil {
		t.Fatalf("config.example.toml with its placeholders filled in does not load: %v", err)
	}
	a, ok := c.App("shop")
	if !ok || a.Secret.Value() != "example-app-secret" || a.Xpay == nil || a.Xpay.OfferID != "1450000000" || a.Xpay.AppKey.Value() != "filled-app[0].xpay.app_key" {
		t.Fatalf("example app not decoded as documented: %+v", a)
	}
}

// TestExampleConfigShowsTrueDefaults: every "# key = value" line of config.example.toml's
// settings sections (all but [[app]] and [[merchant]]), uncommented alone, decodes to exactly
// the config that leaving it out gives: the example shows the true defaults. Lines ending in
// "# example" show keys without a default and are skipped. Every key of those sections is shown,
// and none but forward.secret is set uncommented.
func TestExampleConfigShowsTrueDefaults(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want, err := Decode([]byte(minimal), dir)
	if err != nil {
		t.Fatal(err)
	}
	setOK := map[string]bool{"forward.secret": true} // no default, needed by the example's forward_url
	header := regexp.MustCompile(`^(# )?\[([a-z_.]+)\](.*)$`)
	keyLine := regexp.MustCompile(`^(# )?([a-z_0-9]+) = (.*)$`)
	seen := map[string]bool{}
	table, exampleTable, checked := "", false, 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "[[") {
			break // the apps and merchants: required values, no defaults
		}
		if m := header.FindStringSubmatch(line); m != nil {
			table, exampleTable = m[2], strings.Contains(m[3], "# example")
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := table + "." + m[2]
		seen[key] = true
		if m[1] == "" {
			if !setOK[key] {
				t.Errorf("%s is set in the example; show its default commented out (# %s)", key, line)
			}
			continue
		}
		if exampleTable || strings.Contains(m[3], "# example") {
			continue
		}
		checked++
		got, err := Decode([]byte("["+table+"]\n"+m[2]+" = "+m[3]+"\n"+minimal), dir)
		if err != nil {
			t.Errorf("%s = %s does not decode: %v", key, m[3], err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("config.example.toml shows %s = %s, which is not the default", key, m[3])
		}
	}
	if checked < 20 {
		t.Fatalf("only %d default lines checked: the parser no longer reads the example", checked)
	}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "app" || tag == "merchant" {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			name := strings.TrimPrefix(prefix+"."+tag, ".")
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Secret{}) && ft != reflect.TypeOf(time.Duration(0)) {
				walk(name, ft)
				continue
			}
			if !seen[name] {
				t.Errorf("config.example.toml does not show %s", name)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]byte(minimal), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.AppListen != DefaultAppListen || c.Upstream.Weixin != DefaultWeixin || c.Sessions.TTL != DefaultSessionTTL ||
		c.Store.Kind != StoreDisk || c.Store.Dir != filepath.Join(dir, DefaultStoreDir) || c.Upstream.MaxConnsPerHost != DefaultMaxConnsPerHost || c.Server.SignPriority != SignPriorityLow ||
		c.Server.SignMaxWait != DefaultSignMaxWait ||
		c.Log != (Log{Level: LogLevelInfo, Format: LogFormatText}) {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

// TestEveryProblemAtOnce checks that one bad file yields all of its problems, each at its key path.
func TestEveryProblemAtOnce(t *testing.T) {
	bad := `
[server]
app_listen = "localhost"
sign_priority = "high"
[upstream]
weixin = "ftp://x"
timeout = "-1s"
[store]
kind = "etcd"
[log]
level = "verbose"
format = "xml"
[routes]
allow = ["wxa/nope", "/xpay/currency_pay"]
[[app]]
name = "Shop!"
appid = "abc"
secret = ""
colour = "blue"
[app.xpay]
app_key = "env:WXGATE_TEST_SURELY_UNSET"
[app.push]
token = "t"
encoding_aes_key = "short"
[[app]]
name = "two"
appid = "wx0123456789abcdef"
secret = "x"
forward_url = "http://127.0.0.1:1/e"
[[app]]
name = "two"
appid = "wx0123456789abcdef"
secret = "x"
`
	_, err := Parse([]byte(bad), t.TempDir())
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []string{
		"server.app_listen", "server.sign_priority", "upstream.weixin", "upstream.timeout", "store.kind", "log.level", "log.format", "routes.allow[0]", "routes.allow[1]",
		"app[0].name", "app[0].appid", "app[0].secret", "app.colour", "app[0].xpay.app_key", "app[0].push.encoding_aes_key",
		"app[1].forward_url", "app[2].name", "app[2].appid",
	}
	got := map[string]bool{}
	for _, p := range ve.Problems {
		got[p.Key] = true
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("no problem reported at %s; got %v", k, ve.Problems)
		}
	}
	if !strings.Contains(err.Error(), "WXGATE_TEST_SURELY_UNSET") {
		t.Errorf("error does not name the missing variable: %v", err)
	}
}

func TestSecretSources(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key.txt"), []byte("from-file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WXGATE_TEST_SECRET", "from-env-secret")
	cfg := strings.Replace(minimal, `"s3cr3t-app-secret"`, `"env:WXGATE_TEST_SECRET"`, 1)
	cfg = strings.Replace(cfg, `"prod-app-key"`, `"file:key.txt"`, 1)
	c, err := Parse([]byte(cfg), dir)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if a.Secret.Value() != "from-env-secret" || a.Xpay.AppKey.Value() != "from-file-key" {
		t.Fatalf("secrets not resolved: env=%v file=%v", a.Secret.Source(), a.Xpay.AppKey.Source())
	}
	if a.Secret.Source() != "env:WXGATE_TEST_SECRET" || a.Xpay.AppKey.Source() != "file:key.txt" {
		t.Fatalf("sources: %s %s", a.Secret.Source(), a.Xpay.AppKey.Source())
	}
	_, err = Parse([]byte(strings.Replace(minimal, `"prod-app-key"`, `"file:missing.txt"`, 1)), dir)
	if err == nil || !strings.Contains(err.Error(), "app[0].xpay.app_key") {
		t.Fatalf("missing secret file not reported at its key: %v", err)
	}
}

// TestSecretNeverPrinted checks every way a Secret can be printed or encoded.
func TestSecretNeverPrinted(t *testing.T) {
	c, err := Parse([]byte(minimal), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		fmt.Sprint(c.Apps[0].Secret), fmt.Sprintf("%v|%+v|%#v|%s|%q|%x", c.Apps[0], c.Apps[0], c.Apps[0], c.Apps[0].Secret, c.Apps[0].Secret, c.Apps[0].Secret),
		fmt.Sprintf("%+v", *c.Apps[0].Xpay), string(js),
	}
	for _, out := range outputs {
		for _, secret := range []string{"s3cr3t-app-secret", "prod-app-key", "73336372"} {
			if strings.Contains(out, secret) {
				t.Fatalf("secret %q printed in %s", secret, out)
			}
		}
	}
	if !strings.Contains(string(js), redacted) {
		t.Fatalf("JSON does not show the mask: %s", js)
	}
}

func TestInvalidTOML(t *testing.T) {
	_, err := Parse([]byte("[[app]\nname="), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("want a TOML error with a line number, got %v", err)
	}
}

func TestRouteTable(t *testing.T) {
	rt := NewRouteTable([]string{"/wxa/custom"})
	tests := []struct {
		path    string
		kind    RouteKind
		userSig bool
		found   bool
	}{
		{"/xpay/query_user_balance", RouteXpay, true, true},
		{"/xpay/currency_pay", RouteXpay, true, true},
		{"/xpay/cancel_currency_pay", RouteXpay, true, true},
		{"/xpay/present_currency", RouteXpay, false, true},
		{"/xpay/query_order", RouteXpay, false, true},
		{"/sns/jscode2session", RouteCode2Session, false, true},
		{"/wxa/msg_sec_check", RouteAccessToken, false, true},
		{"/wxa/custom", RouteAccessToken, false, true},
		{"/cgi-bin/stable_token", 0, false, false},
		{"/xpay/unknown", 0, false, false},
		{"/", 0, false, false},
	}
	for _, tt := range tests {
		r, ok := rt.Lookup([]byte(tt.path))
		if ok != tt.found || r.Kind != tt.kind || r.UserSignature != tt.userSig {
			t.Errorf("Lookup(%s) = %+v, %v; want kind %v usersig %v found %v", tt.path, r, ok, tt.kind, tt.userSig, tt.found)
		}
	}
	var userSigned int
	for _, r := range rt.All() {
		if r.UserSignature && !r.MiniGame {
			userSigned++
		}
	}
	if userSigned != 3 {
		t.Errorf("%d mini-program routes need the user signature, want exactly 3", userSigned)
	}
}

// TestSyntaxErrorsNameLineAndKeyNotValue: a TOML syntax error says where (line and key) but never
// echoes the text it choked on, which may be a secret written without quotes.
func TestSyntaxErrorsNameLineAndKeyNotValue(t *testing.T) {
	for _, tc := range []struct {
		name, text, secret, want string
	}{
		{"unquoted string", "[[app]]\nname = \"a\"\nsecret = APPKEY0123456789secret\n", "APPKEY", `line 3, key "app.secret"`},
		{"number out of range", "[[app]]\nname = \"a\"\nsecret = 98765432109876543210987\n", "98765432109876543210987", `line 3, key "app.secret"`},
		{"unterminated string", "[forward]\nsecret = \"s3cr3t-forward-value\n", "s3cr3t", `line 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), t.TempDir())
			if err == nil {
				t.Fatal("want a syntax error")
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error echoes the value: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error does not say %q: %v", tc.want, err)
			}
		})
	}
}

// TestSingleRules: each rule on its own, against a config that is otherwise valid; its boundary
// value passes.
func TestSingleRules(t *testing.T) {
	const base = `
[server]
%s
[forward]
secret = "%s"
[[app]]
name = "shop"
appid = "wx0123456789abcdef"
secret = "app-secret"
forward_url = "http://127.0.0.1:1/events"
`
	for _, tc := range []struct {
		name, server, secret, key string // key "" means valid
	}{
		{"forward secret of 15 characters", "", "123456789012345", "forward.secret"},
		{"forward secret of 16 characters", "", "1234567890123456", ""},
		{"callback body limit below 1 KiB", "callback_max_body_bytes = 1023", "1234567890123456", "server.callback_max_body_bytes"},
		{"callback body limit of 1 KiB", "callback_max_body_bytes = 1024", "1234567890123456", ""},
		{"callback connections 0", "callback_max_conns = -1", "1234567890123456", "server.callback_max_conns"},
		{"per-IP cap negative", "callback_max_conns_per_ip = -1", "1234567890123456", "server.callback_max_conns_per_ip"},
		{"per-IP cap off", "callback_max_conns_per_ip = 0", "1234567890123456", ""},
		{"callback read timeout negative", `callback_read_timeout = "-1s"`, "1234567890123456", "server.callback_read_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(fmt.Sprintf(base, tc.server, tc.secret)), t.TempDir())
			if tc.key == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Key != tc.key {
				t.Fatalf("want exactly one problem at %s, got %v (config %+v)", tc.key, err, c)
			}
		})
	}
}

// TestCallbackDefaults: the callback listener's limits default as documented, and an explicit
// per-IP cap of 0 (off) is kept.
func TestCallbackDefaults(t *testing.T) {
	const cfg = "[[app]]\nname = \"shop\"\nappid = \"wx0123456789abcdef\"\nsecret = \"s\"\n"
	c, err := Parse([]byte(cfg), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if s.CallbackMaxBodyBytes != 64<<10 || s.CallbackMaxConns != 4096 || s.CallbackMaxConnsPerIP != 128 || s.CallbackReadTimeout != 5*time.Second || c.Forward.MaxConns != 256 {
		t.Fatalf("defaults: %+v, forward.max_conns %d", s, c.Forward.MaxConns)
	}
	c, err = Parse([]byte("[server]\ncallback_max_conns_per_ip = 0\n"+cfg), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.CallbackMaxConnsPerIP != 0 {
		t.Fatalf("an explicit 0 became %d", c.Server.CallbackMaxConnsPerIP)
	}
}

// TestIDRules: the one home of the appid and mchid rules, used by the config and the helpers.
func TestIDRules(t *testing.T) {
	for _, tc := range []struct {
		s            string
		appID, mchID bool
	}{
		{"wx0123456789abcdef", true, false},
		{"wx0123456789ABCDEF", false, false},
		{"wx0123456789abcde", false, false},
		{"wx0123456789abcdefa", false, false},
		{"xx0123456789abcdef", false, false},
		{"1900000001", false, true},
		{"1234567", false, false},
		{"12345678", false, true},
		{"123456789012", false, true},
		{"1234567890123", false, false},
		{"19000000a1", false, false},
	} {
		if got := IsAppID(tc.s); got != tc.appID {
			t.Errorf("IsAppID(%q) = %v", tc.s, got)
		}
		if got := IsMchID(tc.s); got != tc.mchID {
			t.Errorf("IsMchID(%q) = %v", tc.s, got)
		}
	}
}

// TestDecodeHasNoSideEffects: Decode reads no secret, key or file (a config naming ones that do
// not exist decodes), and Provision then reports each one by key, at once.
func TestDecodeHasNoSideEffects(t *testing.T) {
	const text = `
[upstream]
ca_file = "no-such-ca.pem"
[forward]
secret = "env:WXGATE_TEST_UNSET_FORWARD"
[[app]]
name = "shop"
appid = "wx0123456789abcdef"
secret = "file:no-such-secret.txt"
forward_url = "http://127.0.0.1:1/events"
[[merchant]]
name = "main"
mchid = "1900000001"
serial_no = "0123456789ABCDEF"
private_key_file = "no-such-key.pem"
apiv3_key = "env:WXGATE_TEST_UNSET_APIV3"
`
	c, err := Decode([]byte(text), t.TempDir())
	if err != nil {
		t.Fatalf("Decode read something: %v", err)
	}
	if c.Forward.Secret.IsSet() || c.Apps[0].Secret.IsSet() || c.Merchants[0].Keys().PrivateKey != nil {
		t.Fatal("Decode resolved a secret or loaded a key")
	}
	err = c.Provision()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Provision: want *ValidationError, got %v", err)
	}
	got := map[string]bool{}
	for _, p := range ve.Problems {
		got[p.Key] = true
	}
	for _, k := range []string{"upstream.ca_file", "forward.secret", "app[0].secret", "merchant[0].private_key_file", "merchant[0].apiv3_key"} {
		if !got[k] {
			t.Errorf("Provision did not report %s: %v", k, ve.Problems)
		}
	}
}

// TestLimitBoundaries: each limit's smallest accepted value passes and the one below it is
// refused at its key. (A 0 means "the default" for these keys, so it is not a boundary.)
func TestLimitBoundaries(t *testing.T) {
	const app = "[[app]]\nname = \"shop\"\nappid = \"wx0123456789abcdef\"\nsecret = \"s\"\n"
	for _, tc := range []struct {
		section, key string
		ok, bad      string // the smallest accepted value, and the largest refused one
	}{
		{"server", "max_body_bytes", "1024", "1023"},
		{"server", "max_upload_bytes", "1024", "1023"},
		{"server", "max_conns", "1", "-1"},
		{"server", "callback_max_conns", "1", "-1"},
		{"server", "sign_concurrency", "1", "-1"},
		{"upstream", "max_conns_per_host", "1", "-1"},
		{"upstream", "max_response_bytes", "1024", "1023"},
		{"forward", "max_conns", "1", "-1"},
		{"sessions", "max_entries", "1", "-1"},
		{"upstream", "timeout", `"1ns"`, `"-1ns"`},
	} {
		for _, v := range []struct {
			value string
			valid bool
		}{{tc.ok, true}, {tc.bad, false}} {
			text := fmt.Sprintf("[%s]\n%s = %s\n%s", tc.section, tc.key, v.value, app)
			_, err := Parse([]byte(text), t.TempDir())
			var ve *ValidationError
			switch {
			case v.valid && err != nil:
				t.Errorf("%s.%s = %s refused: %v", tc.section, tc.key, v.value, err)
			case !v.valid && (!errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Key != tc.section+"."+tc.key):
				t.Errorf("%s.%s = %s: want one problem at that key, got %v", tc.section, tc.key, v.value, err)
			}
		}
	}
	long := strings.Repeat("o", 64)
	for _, tc := range []struct {
		offer string
		valid bool
	}{{long, true}, {long + "o", false}} {
		_, err := Parse([]byte(app+"[app.xpay]\napp_key = \"k\"\noffer_id = \""+tc.offer+"\"\n"), t.TempDir())
		if (err == nil) != tc.valid {
			t.Errorf("offer_id of %d characters: %v", len(tc.offer), err)
		}
	}
}

// TestRouteLookupNeedsMoreThanThePrefix: a prefix route matches paths under it, never the bare
// prefix, and All lists routes sorted by path.
func TestRouteLookupNeedsMoreThanThePrefix(t *testing.T) {
	rt := NewRouteTable(nil)
	for _, p := range []string{PayV3Prefix, PayV2Prefix, PayV2SecurePrefix} {
		if _, ok := rt.Lookup([]byte(p)); ok {
			t.Errorf("the bare prefix %s is routed", p)
		}
		if _, ok := rt.Lookup([]byte(p + "x")); !ok {
			t.Errorf("%sx is not routed", p)
		}
	}
	all := rt.All()
	for i := 1; i < len(all); i++ {
		if all[i-1].Path >= all[i].Path {
			t.Fatalf("All is not sorted by path: %s before %s", all[i-1].Path, all[i].Path)
		}
	}
}

// TestSecretString: an unset secret prints as nothing, a set one as [redacted], never its value.
func TestSecretString(t *testing.T) {
	var unset Secret
	set := Secret{ref: "env:X", value: "the-value", set: true}
	if unset.String() != "" || set.String() != "[redacted]" || fmt.Sprint(set) != "[redacted]" {
		t.Fatalf("unset %q, set %q", unset.String(), set.String())
	}
}

// TestStoreConfig: each store kind's keys, and the mistakes a user makes with them.
func TestStoreConfig(t *testing.T) {
	t.Setenv("WXGATE_TEST_REDIS_URL", "redis://:pw@10.0.0.5:6379/1")
	cases := []struct {
		name    string
		store   string
		problem string // the key named in the error; "" when valid
		check   func(t *testing.T, s Store)
	}{
		{"disk default dir", "", "", func(t *testing.T, s Store) {
			if s.Kind != StoreDisk || !filepath.IsAbs(s.Dir) || filepath.Base(s.Dir) != DefaultStoreDir {
				t.Fatalf("store %+v", s)
			}
		}},
		{"disk absolute dir", "kind = \"disk\"\ndir = \"/var/lib/wxgate\"", "", func(t *testing.T, s Store) {
			if s.Dir != "/var/lib/wxgate" {
				t.Fatalf("dir %q", s.Dir)
			}
		}},
		{"memory", "kind = \"memory\"", "", nil},
		{"redis url from env", "kind = \"redis\"\nredis_url = \"env:WXGATE_TEST_REDIS_URL\"", "", func(t *testing.T, s Store) {
			if s.RedisURL.Value() != "redis://:pw@10.0.0.5:6379/1" || s.Prefix != DefaultStorePrefix || s.Timeout != DefaultStoreTimeout || s.CacheTTL != DefaultStoreCacheTTL {
				t.Fatalf("store %+v", s)
			}
		}},
		{"redis cluster", "kind = \"redis\"\nredis_cluster_addrs = [\"10.0.0.1:6379\", \"10.0.0.2:6379\"]\nprefix = \"shop:\"", "", func(t *testing.T, s Store) {
			if len(s.RedisClusterAddrs) != 2 || s.Prefix != "shop:" {
				t.Fatalf("store %+v", s)
			}
		}},
		{"redis sentinel", "kind = \"redis\"\n[store.redis_sentinel]\nmaster = \"m\"\naddrs = [\"10.0.0.1:26379\"]", "", func(t *testing.T, s Store) {
			if s.RedisSentinel == nil || s.RedisSentinel.Master != "m" {
				t.Fatalf("store %+v", s)
			}
		}},
		{"redis without address", "kind = \"redis\"", "store.redis_url", nil},
		{"cluster and sentinel", "kind = \"redis\"\nredis_cluster_addrs = [\"a:1\"]\n[store.redis_sentinel]\nmaster = \"m\"\naddrs = [\"b:2\"]", "store.redis_cluster_addrs", nil},
		{"cluster addr without port", "kind = \"redis\"\nredis_cluster_addrs = [\"10.0.0.1\"]", "store.redis_cluster_addrs[0]", nil},
		{"sentinel without master", "kind = \"redis\"\n[store.redis_sentinel]\naddrs = [\"b:2\"]", "store.redis_sentinel.master", nil},
		{"sentinel without addrs", "kind = \"redis\"\n[store.redis_sentinel]\nmaster = \"m\"", "store.redis_sentinel.addrs", nil},
		{"bad prefix", "kind = \"redis\"\nredis_url = \"redis://a:1\"\nprefix = \"has space\"", "store.prefix", nil},
		{"zero timeout", "kind = \"redis\"\nredis_url = \"redis://a:1\"\ntimeout = \"-1s\"", "store.timeout", nil},
		{"redis settings on disk", "kind = \"disk\"\nredis_url = \"redis://a:1\"", "store.kind", nil},
		{"unknown kind", "kind = \"etcd\"", "store.kind", nil},
		{"missing CA file", "kind = \"redis\"\nredis_url = \"rediss://a:1\"\nredis_ca_file = \"no-such-ca.pem\"", "store.redis_ca_file", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := minimal + "\n[store]\n" + c.store + "\n"
			cfg, err := Parse([]byte(raw), t.TempDir())
			if c.problem == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.check != nil {
					c.check(t, cfg.Store)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.problem+":") {
				t.Fatalf("error %v, want one at %s", err, c.problem)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error shows the redis_url: %v", err)
			}
		})
	}
}

// TestPlaceholdersRefused: a value starting with replace-with- is refused at its key path, in
// any section, array or case, and a secret's text is not echoed.
func TestPlaceholdersRefused(t *testing.T) {
	tests := []struct {
		name, doc, key string
	}{
		{"app secret", strings.Replace(minimal, "s3cr3t-app-secret", "replace-with-your-appsecret", 1), "app[0].secret"},
		{"second app", minimal + "[[app]]\nname = \"b\"\nappid = \"wx0123456789abcde0\"\nsecret = \"REPLACE-WITH-secret\"\n", "app[1].secret"},
		{"forward secret", "[forward]\nsecret = \"replace-with-a-long-random-string\"\n" + minimal, "forward.secret"},
		{"in an array", "[routes]\nallow = [\"/wxa/x\", \"replace-with-a-path\"]\n" + minimal, "routes.allow[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc), t.TempDir())
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			found := false
			for _, p := range ve.Problems {
				found = found || (p.Key == tt.key && strings.Contains(p.Message, "placeholder"))
			}
			if !found {
				t.Fatalf("no placeholder problem at %s: %v", tt.key, err)
			}
			if strings.Contains(err.Error(), "a-long-random-string") || strings.Contains(err.Error(), "your-appsecret") {
				t.Fatalf("the value is echoed: %v", err)
			}
		})
	}
}

// TestForwardURLs: an app's forward_url must be an absolute http or https URL with a host.
func TestForwardURLs(t *testing.T) {
	const base = "[forward]\nsecret = \"1234567890123456\"\n[[app]]\nname = \"shop\"\nappid = \"wx0123456789abcdef\"\nsecret = \"s\"\nforward_url = %q\n"
	for _, tc := range []struct {
		url   string
		valid bool
	}{
		{"https://app.example.com/wechat/events", true},
		{"http://10.0.0.7:8000/events", true},
		{"ftp://app.example.com/events", false},
		{"https:///events", false},
		{"/events", false},
		{"http://[::1", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := Parse([]byte(fmt.Sprintf(base, tc.url)), t.TempDir())
			if tc.valid {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Key != "app[0].forward_url" {
				t.Fatalf("want one problem at app[0].forward_url, got %v", err)
			}
		})
	}
}
