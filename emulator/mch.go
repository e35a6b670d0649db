package emulator

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Merchant is a WeChat Pay merchant as WeChat knows it.
type Merchant struct {
	MchID string // the merchant id (mchid, mch_id)
	AppID string // the mini program bound to the merchant
	// SerialNo is the serial of the merchant API certificate; the Authorization serial_no must
	// equal it.
	SerialNo string
	// PublicKey is the merchant's public key: it verifies the APIv3 Authorization signature and
	// the wx.requestPayment paySign.
	PublicKey *rsa.PublicKey
	// APIv3Key (32 bytes) encrypts the /v3/certificates answer.
	APIv3Key string
	// APIv2Key is the APIv2 sign key; "" means the merchant has no APIv2 (every APIv2 call fails
	// its signature check).
	APIv2Key string
	// ClientCert is the merchant client certificate /secapi/ requires on the TLS connection;
	// nil rejects every /secapi/ call.
	ClientCert *x509.Certificate
	// PlatformCertificates is true for merchants that have WeChat Pay platform certificates (old
	// merchants): answers are signed with the newest platform certificate unless the request
	// names the public key in Wechatpay-Serial. False is a new merchant that only has the WeChat
	// Pay public key: answers are always signed with it and /v3/certificates answers
	// {"data":[]}.
	PlatformCertificates bool
}

// merchantState is one merchant as the emulator keeps it. The prepared keys are fixed after New
// but for the API certificates (mch_apicerts.go); the order book is guarded by mchState.mu.
type merchantState struct {
	cfg   Merchant
	certs atomic.Pointer[apiCerts] // accepted API certificates by serial, from cfg first
	aead  *signer.AEADKey          // the APIv3 key
	v2    *signer.V2Key            // the APIv2 key; nil without APIv2

	orders    map[string]*mchOrder  // by out_trade_no (shared by APIv2 and APIv3)
	byTxn     map[string]*mchOrder  // paid orders by transaction_id
	refunds   map[string]*mchRefund // by out_refund_no
	refundIDs map[string]*mchRefund // by refund_id
	bills     []*billFile           // handed-out bill download tokens, oldest first
	partner   *partnerBook          // a sub-merchant's: its service provider and order terms (mch_partner.go)
	media     []*storedMedia        // uploaded files, oldest first (mch_media.go)
}

// mchState is everything the emulator keeps for api.mch.weixin.qq.com.
type mchState struct {
	merchants map[string]*merchantState // by mchid; fixed after New
	keys      *payKeys                  // WeChat Pay's own keys (mch_keys.go)
	tls       *tlsMaterial              // the emulator CA and server certificate (mch_tls.go)

	mu      sync.Mutex                // guards every merchantState's order book and prepays
	prepays map[string]*prepay        // every prepay_id issued, APIv2 and APIv3
	subs    map[string]*merchantState // sub-merchants by sub_mchid (mch_partner.go)
	v2x     *v2Extra                  // payouts, red packets and contracts, made on first use (v2_transfers.go)
}

// newMchState validates the merchants of cfg and prepares their keys. It reports every problem.
func newMchState(cfg Config) (*mchState, []error) {
	var errs []error
	st := &mchState{
		merchants: make(map[string]*merchantState, len(cfg.Merchants)),
		prepays:   make(map[string]*prepay),
		tls:       &tlsMaterial{ca: cfg.CA},
	}
	keys, err := newPayKeys(cfg.PayKey)
	if err != nil {
		errs = append(errs, err)
	}
	st.keys = keys
	for i, m := range cfg.Merchants {
		ms, err := newMerchantState(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("merchant %d (%q): %w", i, m.MchID, err))
			continue
		}
		if _, dup := st.merchants[m.MchID]; dup {
			errs = append(errs, fmt.Errorf("merchant %d: mchid %q is configured twice", i, m.MchID))
			continue
		}
		st.merchants[m.MchID] = ms
	}
	return st, errs
}

// newMerchantState validates m and prepares its keys, reporting every problem of m at once.
func newMerchantState(m Merchant) (*merchantState, error) {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"mchid", m.MchID}, {"appid", m.AppID}, {"serial_no", m.SerialNo},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is empty", f.name))
		}
	}
	if m.PublicKey == nil {
		errs = append(errs, errors.New("public key is missing"))
	} else if m.PublicKey.N.BitLen() < 2048 {
		errs = append(errs, fmt.Errorf("public key has %d bits, want at least 2048", m.PublicKey.N.BitLen()))
	}
	aead, err := signer.NewAEADKey([]byte(m.APIv3Key))
	if err != nil {
		errs = append(errs, fmt.Errorf("APIv3 key: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ms := &merchantState{
		cfg:       m,
		aead:      aead,
		orders:    make(map[string]*mchOrder),
		byTxn:     make(map[string]*mchOrder),
		refunds:   make(map[string]*mchRefund),
		refundIDs: make(map[string]*mchRefund),
	}
	if m.APIv2Key != "" {
		ms.v2 = signer.NewV2Key(m.APIv2Key)
	}
	ms.certs.Store(&apiCerts{m.SerialNo: signer.NewRSAVerifier(m.PublicKey)})
	return ms, nil
}

// merchant returns the merchant with mchid, or nil.
func (e *Emulator) merchant(mchID string) *merchantState {
	return e.mch.merchants[mchID]
}

// mchAPI tells the api.mch.weixin.qq.com protocols apart.
type mchAPI int

const (
	mchNone mchAPI = iota // not a WeChat Pay path
	mchV3                 // APIv3: JSON, Authorization, signed answers
	mchV2                 // APIv2: XML with a sign
)

// mchAPIOf says which WeChat Pay protocol serves path.
func mchAPIOf(path string) mchAPI {
	switch {
	case strings.HasPrefix(path, "/v3/"):
		return mchV3
	case strings.HasPrefix(path, "/pay/"), strings.HasPrefix(path, "/secapi/"),
		strings.HasPrefix(path, "/mmpaymkttransfers/"), strings.HasPrefix(path, "/papay/"), strings.HasPrefix(path, sandboxPrefix):
		return mchV2
	}
	return mchNone
}

// serveMch answers one WeChat Pay request.
func (e *Emulator) serveMch(ctx *fasthttp.RequestCtx, path string, api mchAPI) {
	if api == mchV3 {
		e.serveV3(ctx, path)
		return
	}
	e.serveV2(ctx, path)
}
