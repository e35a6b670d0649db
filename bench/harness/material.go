package harness

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// appCreds are one generated mini program's credentials.
type appCreds struct {
	Name, AppID, Secret, AppKey, PushToken, AESKey string
}

// material is everything generated once per harness run: merchant and WeChat Pay keys, their
// files, and app credentials.
type material struct {
	dir            string
	merchantKey    *rsa.PrivateKey
	merchantSerial string
	merchantFile   string // PKCS#8 PEM
	payKey         *rsa.PrivateKey
	payKeyFile     string // what WeChat Pay signs with (wxgate emulate -pay-key)
	payPubFile     string // what wxgate verifies with
	apiv3Key       string
	forwardSecret  string
	apps           []appCreds
	signPriority   string // [server] sign_priority of the configs; "" leaves wxgate's default
}

// Merchant facts of the generated config.
const (
	mchID        = "1900000109"
	merchantName = "bench"
)

// merchantCreds are one generated WeChat Pay merchant's credentials.
type merchantCreds struct {
	Name, MchID, Serial string
	KeyFile             string // PKCS#8 PEM of the merchant API private key
	APIv3Key            string
}

// mainMerchant is the merchant every scenario but the merchants growth run uses.
func (m *material) mainMerchant() merchantCreds {
	return merchantCreds{Name: merchantName, MchID: mchID, Serial: m.merchantSerial, KeyFile: m.merchantFile, APIv3Key: m.apiv3Key}
}

// moreMerchants returns n merchants besides the main one, each with an RSA-2048 key of its own
// (generated on every core, about 60 ms a key here), an API certificate serial and an APIv3
// key, their key files written under the material's folder.
func (m *material) moreMerchants(n int) ([]merchantCreds, error) {
	out := make([]merchantCreds, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				key, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					errs[i] = err
					continue
				}
				c := merchantCreds{
					Name: fmt.Sprintf("mch%d", i+1), MchID: fmt.Sprintf("18%08d", i+1), Serial: strings.ToUpper(randomHex(20)),
					KeyFile: filepath.Join(m.dir, fmt.Sprintf("merchant%d_key.pem", i+1)), APIv3Key: randomHex(16),
				}
				errs[i] = writePrivateKey(c.KeyFile, key)
				out[i] = c
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

// newMaterial generates keys and nApps app credentials into dir.
func newMaterial(dir string, nApps int) (*material, error) {
	m := &material{dir: dir, apiv3Key: randomHex(16), forwardSecret: randomHex(16)}
	var err error
	if m.merchantKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if m.payKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	m.merchantSerial = strings.ToUpper(new(big.Int).SetBytes([]byte(randomHex(10))).Text(16))
	m.merchantFile = filepath.Join(dir, "merchant_key.pem")
	m.payKeyFile = filepath.Join(dir, "wechatpay_key.pem")
	m.payPubFile = filepath.Join(dir, "wechatpay_pub.pem")
	if err := writePrivateKey(m.merchantFile, m.merchantKey); err != nil {
		return nil, err
	}
	if err := writePrivateKey(m.payKeyFile, m.payKey); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&m.payKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(m.payPubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return nil, err
	}
	for i := range nApps {
		key := make([]byte, 32)
		rand.Read(key)
		m.apps = append(m.apps, appCreds{
			Name: fmt.Sprintf("app%d", i), AppID: "wx" + randomHex(8), Secret: randomHex(16), AppKey: randomHex(16),
			PushToken: randomHex(8), AESKey: strings.TrimRight(base64.StdEncoding.EncodeToString(key), "="),
		})
	}
	return m, nil
}

func writePrivateKey(path string, key *rsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// placeholderKeyID stands in for the emulator's public key ID in the emulator's own config (the
// emulator chooses the real one).
const placeholderKeyID = "PUB_KEY_ID_0000000000000000000000000000000000"

// gateConfig is one generated wxgate config.
type gateConfig struct {
	AppListen, CallbackListen, AdminListen string
	Weixin, Mch, CAFile, PublicKeyID       string
	ForwardURL                             string // the harness app's event endpoint
	Apps                                   []appCreds
	Merchants                              []merchantCreds // nil: the main merchant alone
	// Store is the body of the [store] section; "" is storeMemory. wxgate's own default kind is
	// "disk" (a bbolt file under the config's folder, an fsync per login): every scenario but
	// "store" runs on the memory kind, so its numbers stay comparable with runs made before the
	// store existed, and the store scenario compares the kinds side by side.
	Store string
}

// storeMemory is the [store] body of every generated config that does not say otherwise.
const storeMemory = `kind = "memory"`

// render writes the config as TOML.
func (m *material) render(c gateConfig) string {
	var b strings.Builder
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	fmt.Fprintf(&b, "[server]\napp_listen = %s\ncallback_listen = %s\nadmin_listen = %s\n", q(c.AppListen), q(c.CallbackListen), q(c.AdminListen))
	// The profiler answers on the admin listener only; it costs nothing until asked.
	b.WriteString("pprof = true\n")
	// No sign_max_wait: every section runs wxgate's default (1 s), which the closed loops of
	// sections 2, 2c and 7 must pass without a 503, and whose overload section 2b shows the refusals
	// of (it opens enough connections for the queue that bound admits).
	if m.signPriority != "" {
		fmt.Fprintf(&b, "sign_priority = %s\n", q(m.signPriority))
	}
	fmt.Fprintf(&b, "\n[upstream]\nweixin = %s\nmch = %s\ntimeout = \"5s\"\n", q(c.Weixin), q(c.Mch))
	if c.CAFile != "" {
		fmt.Fprintf(&b, "ca_file = %s\n", q(c.CAFile))
	}
	fmt.Fprintf(&b, "\n[forward]\nsecret = %s\ntimeout = \"4s\"\n", q(m.forwardSecret))
	st := c.Store
	if st == "" {
		st = storeMemory
	}
	fmt.Fprintf(&b, "\n[store]\n%s\n", strings.TrimSpace(st))
	for _, a := range c.Apps {
		fmt.Fprintf(&b, "\n[[app]]\nname = %s\nappid = %s\nsecret = %s\nforward_url = %s\n", q(a.Name), q(a.AppID), q(a.Secret), q(c.ForwardURL))
		fmt.Fprintf(&b, "[app.push]\ntoken = %s\nencoding_aes_key = %s\n", q(a.PushToken), q(a.AESKey))
		fmt.Fprintf(&b, "[app.xpay]\noffer_id = \"1450000001\"\napp_key = %s\n", q(a.AppKey))
	}
	merchants := c.Merchants
	if merchants == nil {
		merchants = []merchantCreds{m.mainMerchant()}
	}
	// Every merchant is bound to the first app and verifies answers with the one WeChat Pay public
	// key the emulator signs with.
	for _, mc := range merchants {
		fmt.Fprintf(&b, "\n[[merchant]]\nname = %s\nmchid = %s\nappid = %s\nserial_no = %s\nprivate_key_file = %s\n",
			q(mc.Name), q(mc.MchID), q(c.Apps[0].AppID), q(mc.Serial), q(mc.KeyFile))
		fmt.Fprintf(&b, "apiv3_key = %s\npublic_key_id = %s\npublic_key_file = %s\nforward_url = %s\n",
			q(mc.APIv3Key), q(c.PublicKeyID), q(m.payPubFile), q(c.ForwardURL))
	}
	return b.String()
}
