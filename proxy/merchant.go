package proxy

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/credentials"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// merchantState is one configured WeChat Pay merchant, ready for the request path: keys parsed,
// signer and AEAD built, verification keys loaded.
type merchantState struct {
	name, mchID, appID string
	appIDs             []string // every appid that pays into the merchant (appID first); nil: none checked
	serialNo           string
	publicKeyID        string // sent as Wechatpay-Serial when the public key is used
	signer             *signer.RSASigner
	aead               *signer.AEADKey // nil without an APIv3 key
	v2                 *signer.V2Key   // nil without an APIv2 key
	secapi             *upstream       // mch upstream with the client certificate; nil without one
	sandbox            *v2SandboxKey   // the APIv2 sandbox key, fetched on first use (outbound_v2_sandbox.go)
	keys               *credentials.PayKeys
	forwardURL         string
	appName            string // the configured app with appid, named on forwarded events; "" when none
}

// newMerchantState prepares a merchant; the certificate download goes through mch, and the
// client certificate's /secapi/ client is built with the settings of u.
func (g *Gateway) newMerchantState(m *policies.Merchant, mch *upstream, u policies.Upstream, tlsBase *tls.Config) (*merchantState, error) {
	k := m.Keys()
	st := &merchantState{
		name: m.Name, mchID: m.MchID, appID: m.AppID, appIDs: m.PayingAppIDs(), serialNo: m.SerialNo,
		signer:     signer.NewRSASigner(k.PrivateKey),
		forwardURL: m.ForwardURL,
		sandbox:    &v2SandboxKey{},
	}
	if m.APIv3Key.IsSet() {
		aead, err := signer.NewAEADKey([]byte(m.APIv3Key.Value()))
		if err != nil {
			return nil, fmt.Errorf("merchant %q apiv3_key: %w", m.Name, err)
		}
		st.aead = aead
	}
	if m.APIv2Key.IsSet() {
		st.v2 = signer.NewV2Key(m.APIv2Key.Value())
	}
	if k.ClientCert != nil {
		cfg := tlsBase.Clone()
		cfg.Certificates = []tls.Certificate{*k.ClientCert}
		up, err := newUpstream(u.Mch, u, cfg)
		if err != nil {
			return nil, err
		}
		st.secapi = up
	}
	opts := credentials.PayKeysOptions{Clock: g.clock}
	if m.UsesPublicKey() {
		opts.PublicKeyID, opts.PublicKey = m.PublicKeyID, k.PublicKey
		st.publicKeyID = m.PublicKeyID
	}
	if m.UsesCertificates() {
		opts.Fetch = func() ([]credentials.PlatformCert, error) { return g.downloadCertificates(mch, st) }
	}
	st.keys = credentials.NewPayKeys(opts)
	return st, nil
}

// merchant picks the merchant named by X-Wxgate-Merchant, or the first configured one.
func (g *generation) merchant(ctx *fasthttp.RequestCtx) (*merchantState, *apiError) {
	if g.firstMerchant == nil {
		return nil, newError(fasthttp.StatusBadRequest, CodeMerchantNotConfigured,
			"no [[merchant]] is configured; add the WeChat Pay merchant (mchid, serial_no, private_key_file...) to the config")
	}
	name := ctx.Request.Header.Peek(HeaderMerchant)
	if len(name) == 0 {
		return g.firstMerchant, nil
	}
	if m, ok := g.merchants[string(name)]; ok {
		return m, nil
	}
	return nil, newError(fasthttp.StatusBadRequest, CodeUnknownMerchant,
		fmt.Sprintf("%s names no configured merchant (%q); use the name of a [[merchant]] or leave the header out for the first one", HeaderMerchant, truncate(name, 40)))
}

// rsaSign signs message with the merchant key inside a signing slot.
func (g *Gateway) rsaSign(m *merchantState, dst, message []byte) ([]byte, *apiError) {
	if err := g.signing.Acquire(); err != nil {
		g.metrics.overloaded.Inc()
		return nil, newError(fasthttp.StatusServiceUnavailable, CodeOverloaded, err.Error())
	}
	held := time.Now()
	out, err := g.workers.Sign(m.signer, dst, message)
	g.signing.Release(time.Since(held))
	if err != nil {
		return nil, newError(fasthttp.StatusInternalServerError, CodeInternal, "RSA signing failed: "+err.Error())
	}
	return out, nil
}
