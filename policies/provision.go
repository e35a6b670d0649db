package policies

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/wxgate/wxgate/signer"
)

// provision is the one step with side effects: it reads every secret (inline, env: or file:)
// and every key and certificate file, and checks the rules that need their values. It runs
// after validate has found the config well-formed; like it, it reports every problem at once
// and names the key, never a value.
func (c *Config) provision(v *validator, baseDir string) {
	if c.Upstream.CAFile != "" {
		if _, err := os.ReadFile(c.Upstream.CAFile); err != nil {
			v.add("upstream.ca_file", "cannot read: %v", err)
		}
	}
	v.secret("server.app_token", &c.Server.AppToken, baseDir)
	if t := c.Server.AppToken; t.IsSet() && len(t.Value()) < minAppTokenLen {
		v.add("server.app_token", "must be at least %d characters (for example: openssl rand -hex 32)", minAppTokenLen)
	}
	v.secret("forward.secret", &c.Forward.Secret, baseDir)
	if c.Forward.Secret.IsSet() && len(c.Forward.Secret.Value()) < 16 {
		v.add("forward.secret", "must be at least 16 characters")
	}
	if c.Store.Kind == StoreRedis {
		v.secret("store.redis_url", &c.Store.RedisURL, baseDir)
		if f := c.Store.RedisCAFile; f != "" {
			if _, err := os.ReadFile(f); err != nil {
				v.add("store.redis_ca_file", "cannot read: %v", err)
			}
		}
		if st := c.Store.RedisSentinel; st != nil {
			v.secret("store.redis_sentinel.password", &st.Password, baseDir)
		}
	}
	for i := range c.Apps {
		c.Apps[i].provision(v, fmt.Sprintf("app[%d]", i), baseDir)
	}
	for i := range c.Merchants {
		c.Merchants[i].provision(v, fmt.Sprintf("merchant[%d]", i), baseDir)
	}
}

func (a *App) provision(v *validator, key, baseDir string) {
	v.secret(key+".secret", &a.Secret, baseDir)
	if x := a.Xpay; x != nil {
		v.secret(key+".xpay.app_key", &x.AppKey, baseDir)
		v.secret(key+".xpay.sandbox_app_key", &x.SandboxAppKey, baseDir)
	}
	if p := a.Push; p != nil {
		v.secret(key+".push.token", &p.Token, baseDir)
		v.secret(key+".push.encoding_aes_key", &p.EncodingAESKey, baseDir)
		if k := p.EncodingAESKey; k.IsSet() {
			if _, err := signer.NewPushCrypter(k.Value()); err != nil { // the signer's rule, never the key in the message
				v.add(key+".push.encoding_aes_key", "must be the 43-character EncodingAESKey from the mini program console")
			}
		}
	}
}

func (m *Merchant) provision(v *validator, key, baseDir string) {
	if m.PrivateKeyFile != "" {
		if pk, err := loadPEM(baseDir, m.PrivateKeyFile, signer.ParsePrivateKey); err != nil {
			v.add(key+".private_key_file", "%v", err)
		} else {
			m.keys.PrivateKey = pk
		}
	}
	v.secret(key+".apiv3_key", &m.APIv3Key, baseDir)
	if m.APIv3Key.IsSet() && len(m.APIv3Key.Value()) != 32 {
		v.add(key+".apiv3_key", "must be exactly 32 bytes (the APIv3 key set in the merchant platform), got %d", len(m.APIv3Key.Value()))
	}
	if m.UsesPublicKey() && m.PublicKeyFile != "" {
		if pub, err := loadPEM(baseDir, m.PublicKeyFile, signer.ParsePublicKey); err != nil {
			v.add(key+".public_key_file", "%v", err)
		} else {
			m.keys.PublicKey = pub
		}
	}
	v.secret(key+".apiv2_key", &m.APIv2Key, baseDir)
	if m.APIv2Key.IsSet() && len(m.APIv2Key.Value()) != 32 {
		v.add(key+".apiv2_key", "must be the 32-character APIv2 key, got %d characters", len(m.APIv2Key.Value()))
	}
	if m.ClientCertFile != "" && m.ClientKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(resolvePath(baseDir, m.ClientCertFile), resolvePath(baseDir, m.ClientKeyFile))
		if err != nil {
			v.add(key+".client_cert_file", "cannot load the client certificate and key: %v", err)
		} else {
			m.keys.ClientCert = &cert
		}
	}
}
