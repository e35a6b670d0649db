package emulator

import (
	"crypto/x509"
	"fmt"

	"github.com/wxgate/wxgate/policies"
)

// ConfigFromPolicies gives the emulator what WeChat knows of each app and merchant of a wxgate
// config: AppSecrets and AppKeys, message-push tokens and keys (safe mode with an EncodingAESKey,
// else plaintext), merchant public keys (from their private keys), certificate serials, API keys
// and client certificates. Push URLs are left for the caller.
func ConfigFromPolicies(cfg *policies.Config) (Config, error) {
	ec := Config{OtherAPIs: cfg.Routes.Allow}
	for _, a := range cfg.Apps {
		app := App{AppID: a.AppID, Secret: a.Secret.Value(), MiniGame: a.IsMiniGame()}
		if x := a.Xpay; x != nil {
			app.OfferID, app.AppKey, app.SandboxAppKey = x.OfferID, x.AppKey.Value(), x.SandboxAppKey.Value()
		}
		if p := a.Push; p != nil {
			// The push URL is where the caller serves callbacks; it fills PushURL itself.
			app.PushToken, app.PushAESKey, app.PushMode = p.Token.Value(), p.EncodingAESKey.Value(), "safe"
			if !p.EncodingAESKey.IsSet() {
				app.PushMode = "plain"
			}
		}
		ec.Apps = append(ec.Apps, app)
	}
	for i := range cfg.Merchants {
		m := &cfg.Merchants[i]
		k := m.Keys()
		if k.PrivateKey == nil {
			return Config{}, fmt.Errorf("merchant %q has no private key loaded", m.Name)
		}
		em := Merchant{
			MchID: m.MchID, AppID: m.AppID, SerialNo: m.SerialNo, PublicKey: &k.PrivateKey.PublicKey,
			APIv3Key: m.APIv3Key.Value(), APIv2Key: m.APIv2Key.Value(), PlatformCertificates: m.UsesCertificates(),
		}
		if k.ClientCert != nil && len(k.ClientCert.Certificate) > 0 {
			c, err := x509.ParseCertificate(k.ClientCert.Certificate[0])
			if err != nil {
				return Config{}, fmt.Errorf("merchant %q client certificate: %w", m.Name, err)
			}
			em.ClientCert = c
		}
		ec.Merchants = append(ec.Merchants, em)
	}
	return ec, nil
}
