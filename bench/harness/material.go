package harness

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
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
}

// render writes the config as TOML.
func (m *material) render(c gateConfig) string {
	var b strings.Builder
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	fmt.Fprintf(&b, "[server]\napp_listen = %s\ncallback_listen = %s\nadmin_listen = %s\n", q(c.AppListen), q(c.CallbackListen), q(c.AdminListen))
	// The profiler answers on the admin listener only; it costs nothing until asked.
	b.WriteString("pprof = true\n")
	// 32 connections of RSA orders queue about 40 ms of signatures on two cores: a wait bound of
	// 250 ms keeps the comparison free of 503s, and the overload run (4× the connections) past it.
	b.WriteString("sign_max_wait = \"250ms\"\n")
	if m.signPriority != "" {
		fmt.Fprintf(&b, "sign_priority = %s\n", q(m.signPriority))
	}
	fmt.Fprintf(&b, "\n[upstream]\nweixin = %s\nmch = %s\ntimeout = \"5s\"\n", q(c.Weixin), q(c.Mch))
	if c.CAFile != "" {
		fmt.Fprintf(&b, "ca_file = %s\n", q(c.CAFile))
	}
	fmt.Fprintf(&b, "\n[forward]\nsecret = %s\ntimeout = \"4s\"\n", q(m.forwardSecret))
	for _, a := range c.Apps {
		fmt.Fprintf(&b, "\n[[app]]\nname = %s\nappid = %s\nsecret = %s\nforward_url = %s\n", q(a.Name), q(a.AppID), q(a.Secret), q(c.ForwardURL))
		fmt.Fprintf(&b, "[app.push]\ntoken = %s\nencoding_aes_key = %s\n", q(a.PushToken), q(a.AESKey))
		fmt.Fprintf(&b, "[app.xpay]\noffer_id = \"1450000001\"\napp_key = %s\n", q(a.AppKey))
	}
	fmt.Fprintf(&b, "\n[[merchant]]\nname = %s\nmchid = %s\nappid = %s\nserial_no = %s\nprivate_key_file = %s\n",
		q(merchantName), q(mchID), q(c.Apps[0].AppID), q(m.merchantSerial), q(m.merchantFile))
	fmt.Fprintf(&b, "apiv3_key = %s\npublic_key_id = %s\npublic_key_file = %s\nforward_url = %s\n",
		q(m.apiv3Key), q(c.PublicKeyID), q(m.payPubFile), q(c.ForwardURL))
	return b.String()
}
