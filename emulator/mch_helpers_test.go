package emulator

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// Test merchants: mchP has platform certificates (an old merchant) and APIv2; mchK only has the
// WeChat Pay public key (a new merchant) and no APIv2.
const (
	mchIDP   = "1900000101"
	mchIDK   = "1900000102"
	appIDP   = "wx00000000000000p1"
	appIDK   = "wx00000000000000k1"
	apiV3P   = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb" // 32 bytes
	apiV3K   = "0123456789abcdef0123456789abcdef"
	apiV2P   = "192006250b4c09247ec02edce69f6a2d"
	serialP  = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115"
	serialK  = "3775B6A45ACD588826D15E583A95F5DD00000002"
	notifyOK = "https://127.0.0.1:1/wxpay/notify"
)

// testKeys are the RSA keys of the test binary, generated once: RSA key generation is slow
// under the race detector.
type testKeys struct {
	merchantP, merchantK *rsa.PrivateKey
	pay                  *rsa.PrivateKey   // injected as Config.PayKey
	clientCert           *x509.Certificate // mchP's client certificate (self-signed with its key)
	clientTLS            tls.Certificate
	wrongTLS             tls.Certificate // another certificate with the same key
}

var (
	testKeysOnce sync.Once
	testKeySet   testKeys
)

// keys returns the test keys, generating them on first use.
func keys(t *testing.T) *testKeys {
	t.Helper()
	testKeysOnce.Do(func() {
		var wg sync.WaitGroup
		ks := make([]*rsa.PrivateKey, 3)
		for i := range ks {
			wg.Go(func() { ks[i] = mustRSAKey() })
		}
		wg.Wait()
		testKeySet.merchantP, testKeySet.merchantK, testKeySet.pay = ks[0], ks[1], ks[2]
		testKeySet.clientCert, testKeySet.clientTLS = selfSigned(ks[0], "1900000101")
		_, testKeySet.wrongTLS = selfSigned(ks[0], "1900000101")
	})
	if testKeySet.pay == nil {
		t.Fatal("test keys were not generated")
	}
	return &testKeySet
}

// selfSigned makes a client certificate for key, like a merchant's apiclient_cert.pem.
func selfSigned(key *rsa.PrivateKey, cn string) (*x509.Certificate, tls.Certificate) {
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"WeChat Pay merchant"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}
}

// testMerchant is a merchant with the private key its backend signs with.
type testMerchant struct {
	Merchant
	key *rsa.PrivateKey
}

// testMerchants returns mchP and mchK.
func testMerchants(t *testing.T) (testMerchant, testMerchant) {
	k := keys(t)
	p := testMerchant{Merchant: Merchant{
		MchID: mchIDP, AppID: appIDP, SerialNo: serialP, PublicKey: &k.merchantP.PublicKey,
		APIv3Key: apiV3P, APIv2Key: apiV2P, ClientCert: k.clientCert, PlatformCertificates: true,
	}, key: k.merchantP}
	kk := testMerchant{Merchant: Merchant{
		MchID: mchIDK, AppID: appIDK, SerialNo: serialK, PublicKey: &k.merchantK.PublicKey, APIv3Key: apiV3K,
	}, key: k.merchantK}
	return p, kk
}

// mchHarness is a running emulator with merchants, served over HTTP and TLS, with real clients.
type mchHarness struct {
	*harness
	mp, mk    testMerchant
	tlsBase   string
	tlsClient *fasthttp.Client // presents mchP's client certificate
	noCert    *fasthttp.Client // presents no certificate
	wrongCert *fasthttp.Client // presents a certificate that is not mchP's

	certMu sync.Mutex
	certs  map[string]*rsa.PublicKey // platform certificates fetched from /v3/certificates
}

// newMchHarness starts an emulator serving appA, mchP and mchK, after applying the changes to
// its config.
func newMchHarness(t *testing.T, changes ...func(*Config)) *mchHarness {
	t.Helper()
	k := keys(t)
	mp, mk := testMerchants(t)
	clock := &fakeClock{t: startTime}
	cfg := Config{
		Apps:      []App{appA},
		Merchants: []Merchant{mp.Merchant, mk.Merchant},
		Clock:     clock.Now,
		PayKey:    k.pay,
	}
	for _, c := range changes {
		c(&cfg)
	}
	emu, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 2)
	go func() { served <- emu.Serve(ln) }()
	go func() { served <- emu.ServeTLS(tln) }()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(emu.CACertPEM()) {
		t.Fatal("CACertPEM holds no certificate")
	}
	tlsClient := func(certs ...tls.Certificate) *fasthttp.Client {
		return &fasthttp.Client{
			ReadTimeout:  5 * time.Second,
			WriteTimeout: 5 * time.Second,
			TLSConfig:    &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
		}
	}
	h := &mchHarness{
		harness: &harness{
			t:      t,
			emu:    emu,
			clock:  clock,
			base:   "http://" + ln.Addr().String(),
			client: &fasthttp.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, MaxConnsPerHost: 64},
			tokens: make(map[string]string),
		},
		mp: mp, mk: mk,
		tlsBase:   "https://" + tln.Addr().String(),
		tlsClient: tlsClient(k.clientTLS),
		noCert:    tlsClient(),
		wrongCert: tlsClient(k.wrongTLS),
		certs:     make(map[string]*rsa.PublicKey),
	}
	t.Cleanup(func() {
		if err := emu.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			select {
			case err := <-served:
				// ErrShutdown: this Serve began after Shutdown (the test was that quick).
				if err != nil && !errors.Is(err, ErrShutdown) {
					t.Errorf("Serve returned %v after Shutdown, want nil or ErrShutdown", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Serve did not return after Shutdown")
			}
		}
	})
	return h
}

// v3Req is an APIv3 request under construction: what is sent, and what is signed (which the
// tampering tests make differ).
type v3Req struct {
	m          testMerchant
	method     string
	uri        string // path and query, sent and (unless signURI) signed
	body       []byte
	tls        bool
	signMethod string
	signURI    string
	signBody   []byte
	signed     bool // signBody was set (it may be empty)
	skew       time.Duration
	mchID      string // the Authorization mchid; default m.MchID
	serial     string // the Authorization serial_no; default m.SerialNo
	signature  string // replaces the signature
	auth       *string
	wpSerial   string // the Wechatpay-Serial request header
	ctype      string // the Content-Type; default application/json
}

// v3Opt adjusts a v3Req.
type v3Opt func(*v3Req)

func overTLS() v3Opt                   { return func(r *v3Req) { r.tls = true } }
func signMethod(m string) v3Opt        { return func(r *v3Req) { r.signMethod = m } }
func signURI(u string) v3Opt           { return func(r *v3Req) { r.signURI = u } }
func signBody(b string) v3Opt          { return func(r *v3Req) { r.signBody, r.signed = []byte(b), true } }
func skewed(d time.Duration) v3Opt     { return func(r *v3Req) { r.skew = d } }
func authMchID(id string) v3Opt        { return func(r *v3Req) { r.mchID = id } }
func authSerial(s string) v3Opt        { return func(r *v3Req) { r.serial = s } }
func authSignature(s string) v3Opt     { return func(r *v3Req) { r.signature = s } }
func rawAuthorization(a string) v3Opt  { return func(r *v3Req) { r.auth = &a } }
func wechatpaySerial(s string) v3Opt   { return func(r *v3Req) { r.wpSerial = s } }
func signedBy(k *rsa.PrivateKey) v3Opt { return func(r *v3Req) { r.m.key = k } }
func contentType(ct string) v3Opt      { return func(r *v3Req) { r.ctype = ct } }

// v3Resp is an APIv3 answer.
type v3Resp struct {
	status int
	header map[string]string // Wechatpay-*, Request-ID, Content-Type
	body   []byte
}

// obj decodes the JSON answer.
func (r v3Resp) obj(t *testing.T) obj {
	t.Helper()
	return decode(t, r.body)
}

// v3Do signs and sends an APIv3 request as merchant m.
func (h *mchHarness) v3Do(m testMerchant, method, uri string, body []byte, opts ...v3Opt) (v3Resp, error) {
	r := &v3Req{m: m, method: method, uri: uri, body: body}
	for _, o := range opts {
		o(r)
	}
	if r.signMethod == "" {
		r.signMethod = r.method
	}
	if r.signURI == "" {
		r.signURI = r.uri
	}
	if !r.signed {
		r.signBody = r.body
	}
	if r.mchID == "" {
		r.mchID = r.m.MchID
	}
	if r.serial == "" {
		r.serial = r.m.SerialNo
	}
	ts := strconv.FormatInt(h.clock.Now().Add(r.skew).Unix(), 10)
	nonce := randomNonce(32)
	sig, err := signer.NewRSASigner(r.m.key).AppendSign(nil, signer.AppendRequestMessage(nil, r.signMethod, r.signURI, ts, nonce, r.signBody))
	if err != nil {
		return v3Resp{}, err
	}
	if r.signature != "" {
		sig = []byte(r.signature)
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	base, client := h.base, h.client
	if r.tls {
		base, client = h.tlsBase, h.tlsClient
	}
	req.SetRequestURI(base + r.uri)
	req.Header.SetMethod(r.method)
	req.Header.Set("Accept", "application/json")
	if r.auth != nil {
		if *r.auth != "" {
			req.Header.Set("Authorization", *r.auth)
		}
	} else {
		req.Header.Set("Authorization", string(signer.AppendAuthorization(nil, r.mchID, nonce, string(sig), ts, r.serial)))
	}
	if r.wpSerial != "" {
		req.Header.Set("Wechatpay-Serial", r.wpSerial)
	}
	if r.body != nil {
		req.Header.SetContentType(cmp.Or(r.ctype, "application/json"))
		req.SetBody(r.body)
	}
	if err := client.DoTimeout(req, resp, 5*time.Second); err != nil {
		return v3Resp{}, err
	}
	out := v3Resp{status: resp.StatusCode(), header: map[string]string{}, body: append([]byte(nil), resp.Body()...)}
	for _, k := range []string{"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Signature-Type", "Request-ID", "Content-Type"} {
		if v := resp.Header.Peek(k); v != nil {
			out.header[k] = string(v)
		}
	}
	return out, nil
}

// v3 sends a signed APIv3 request, fails the test on a transport error, and checks that the
// answer is signed by the key its Wechatpay-Serial names.
func (h *mchHarness) v3(m testMerchant, method, uri string, body []byte, opts ...v3Opt) v3Resp {
	h.t.Helper()
	r, err := h.v3Do(m, method, uri, body, opts...)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, uri, err)
	}
	if err := h.verifyAnswer(m, r); err != nil {
		h.t.Fatalf("%s %s: answer HTTP %d %s: %v", method, uri, r.status, r.body, err)
	}
	return r
}

// verifyAnswer checks an answer like a WeChat Pay client: timestamp within five minutes, then
// the signature with the key Wechatpay-Serial names — the public key when it is
// PayPublicKeyID, otherwise a platform certificate from /v3/certificates (fetched again once
// when the serial is unknown).
func (h *mchHarness) verifyAnswer(m testMerchant, r v3Resp) error {
	ts, err := strconv.ParseInt(r.header["Wechatpay-Timestamp"], 10, 64)
	if err != nil {
		return errors.New("no Wechatpay-Timestamp")
	}
	if d := h.clock.Now().Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("Wechatpay-Timestamp is off by " + d.String())
	}
	if r.header["Wechatpay-Nonce"] == "" || r.header["Request-ID"] == "" {
		return errors.New("Wechatpay-Nonce or Request-ID missing")
	}
	key, err := h.answerKey(m, r.header["Wechatpay-Serial"])
	if err != nil {
		return err
	}
	msg := signer.AppendResponseMessage(nil, r.header["Wechatpay-Timestamp"], r.header["Wechatpay-Nonce"], r.body)
	return signer.NewRSAVerifier(key).Verify(msg, r.header["Wechatpay-Signature"])
}

// answerKey returns the public key an answer's serial names.
func (h *mchHarness) answerKey(m testMerchant, serial string) (*rsa.PublicKey, error) {
	if serial == h.emu.PayPublicKeyID() {
		return signer.ParsePublicKey(h.emu.PayPublicKeyPEM())
	}
	h.certMu.Lock()
	key := h.certs[serial]
	h.certMu.Unlock()
	if key != nil {
		return key, nil
	}
	if err := h.fetchCertificates(m); err != nil {
		return nil, err
	}
	h.certMu.Lock()
	defer h.certMu.Unlock()
	if key = h.certs[serial]; key == nil {
		return nil, errors.New("unknown Wechatpay-Serial " + serial)
	}
	return key, nil
}

// certificatesBody is the answer of /v3/certificates as a client reads it.
type certificatesBody struct {
	Data []struct {
		SerialNo           string `json:"serial_no"`
		EffectiveTime      string `json:"effective_time"`
		ExpireTime         string `json:"expire_time"`
		EncryptCertificate struct {
			Algorithm      string `json:"algorithm"`
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		} `json:"encrypt_certificate"`
	} `json:"data"`
}

// fetchCertificates downloads and decrypts m's platform certificates, as a client bootstraps:
// decrypt first, then verify the answer with the certificates it carried.
func (h *mchHarness) fetchCertificates(m testMerchant) error {
	r, err := h.v3Do(m, "GET", "/v3/certificates", nil)
	if err != nil {
		return err
	}
	if r.status != fasthttp.StatusOK {
		return errors.New("/v3/certificates: HTTP " + strconv.Itoa(r.status) + " " + string(r.body))
	}
	list, err := decryptCertificates(m, r.body)
	if err != nil {
		return err
	}
	h.certMu.Lock()
	for serial, c := range list {
		h.certs[serial] = c.PublicKey.(*rsa.PublicKey)
	}
	h.certMu.Unlock()
	if r.header["Wechatpay-Serial"] == h.emu.PayPublicKeyID() {
		return h.verifyAnswer(m, r)
	}
	if list[r.header["Wechatpay-Serial"]] == nil {
		return errors.New("/v3/certificates is signed by a certificate it does not list")
	}
	return h.verifyAnswer(m, r)
}

// decryptCertificates decrypts a /v3/certificates answer with m's APIv3 key, checking every
// entry's algorithm, associated data, nonce length and serial.
func decryptCertificates(m testMerchant, body []byte) (map[string]*x509.Certificate, error) {
	var cb certificatesBody
	if err := json.Unmarshal(body, &cb); err != nil {
		return nil, err
	}
	aead, err := signer.NewAEADKey([]byte(m.APIv3Key))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*x509.Certificate)
	for _, d := range cb.Data {
		ec := d.EncryptCertificate
		if ec.Algorithm != "AEAD_AES_256_GCM" || ec.AssociatedData != "certificate" || len(ec.Nonce) != 12 {
			return nil, errors.New("unexpected encrypt_certificate " + ec.Algorithm + " " + ec.AssociatedData + " " + ec.Nonce)
		}
		pemBytes, err := aead.Open(nil, ec.Nonce, ec.AssociatedData, ec.Ciphertext)
		if err != nil {
			return nil, err
		}
		c, serial, err := signer.ParseCertificate(pemBytes)
		if err != nil {
			return nil, err
		}
		if serial != d.SerialNo || len(serial) != 40 {
			return nil, errors.New("serial_no " + d.SerialNo + " does not match the certificate's " + serial)
		}
		if d.EffectiveTime != rfc3339(c.NotBefore) || d.ExpireTime != rfc3339(c.NotAfter) {
			return nil, errors.New("effective/expire time do not match the certificate")
		}
		out[serial] = c
	}
	return out, nil
}

// jsapiBody is a JSAPI order body for merchant m.
func jsapiBody(m testMerchant, outTradeNo string, total int64) string {
	b, _ := json.Marshal(map[string]any{
		"appid": m.AppID, "mchid": m.MchID, "description": "Image形象店-深圳腾大-QQ公仔",
		"out_trade_no": outTradeNo, "notify_url": notifyOK, "attach": "a&b",
		"amount": map[string]any{"total": total, "currency": "CNY"},
		"payer":  map[string]any{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
	})
	return string(b)
}

// placeJSAPI places an APIv3 order and returns its prepay_id.
func (h *mchHarness) placeJSAPI(m testMerchant, outTradeNo string, total int64) string {
	h.t.Helper()
	r := h.v3(m, "POST", "/v3/pay/transactions/jsapi", []byte(jsapiBody(m, outTradeNo, total)))
	if r.status != fasthttp.StatusOK {
		h.t.Fatalf("jsapi: HTTP %d %s", r.status, r.body)
	}
	id := r.obj(h.t).str("prepay_id")
	if len(id) != 36 || id[:2] != "wx" {
		h.t.Fatalf("prepay_id %q", id)
	}
	return id
}

// v3Payment builds the wx.requestPayment parameters of an APIv3 prepay, signed with m's key.
func (h *mchHarness) v3Payment(m testMerchant, prepayID string) RequestPayment {
	h.t.Helper()
	req := RequestPayment{
		AppID: m.AppID, TimeStamp: strconv.FormatInt(h.clock.Now().Unix(), 10), NonceStr: randomNonce(32),
		Package: "prepay_id=" + prepayID, SignType: "RSA",
	}
	sig, err := signer.NewRSASigner(m.key).AppendSign(nil, signer.AppendPaySignMessage(nil, req.AppID, req.TimeStamp, req.NonceStr, req.Package))
	if err != nil {
		h.t.Fatal(err)
	}
	req.PaySign = string(sig)
	return req
}

// v2Payment builds the wx.requestPayment parameters of an APIv2 prepay.
func (h *mchHarness) v2Payment(m testMerchant, signType, prepayID string) RequestPayment {
	h.t.Helper()
	req := RequestPayment{
		AppID: m.AppID, TimeStamp: strconv.FormatInt(h.clock.Now().Unix(), 10), NonceStr: randomNonce(32),
		Package: "prepay_id=" + prepayID, SignType: signType,
	}
	sig, err := signer.NewV2Key(m.APIv2Key).AppendSign(nil, signType, []signer.Param{
		{Key: "appId", Value: req.AppID}, {Key: "timeStamp", Value: req.TimeStamp}, {Key: "nonceStr", Value: req.NonceStr},
		{Key: "package", Value: req.Package}, {Key: "signType", Value: signType},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	req.PaySign = string(sig)
	return req
}

// pay3 places and pays an APIv3 order; it returns the transaction_id.
func (h *mchHarness) pay3(m testMerchant, outTradeNo string, total int64) string {
	h.t.Helper()
	if msg, ok := h.emu.RequestPaymentClient(h.v3Payment(m, h.placeJSAPI(m, outTradeNo, total))); !ok {
		h.t.Fatalf("RequestPaymentClient: %s", msg)
	}
	o, _ := h.emu.Order(m.MchID, outTradeNo)
	return o.TransactionID
}

// expectV3Error checks an APIv3 error answer.
func expectV3Error(t *testing.T, r v3Resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("HTTP %d %s, want %d %s", r.status, r.body, status, code)
	}
	m := r.obj(t)
	if m.str("code") != code || m.str("message") == "" {
		t.Fatalf("answer %s, want code %s with a message", r.body, code)
	}
}

// v2Doc is an APIv2 answer.
type v2Doc struct {
	status int
	params []signer.Param
	raw    []byte
}

// get returns a parameter of the answer.
func (d v2Doc) get(key string) string {
	v, _ := signer.ParamValue(d.params, key)
	return v
}

// v2Opt adjusts an APIv2 request.
type v2Opt func(*v2Options)

// v2Options are the knobs of an APIv2 request.
type v2Options struct {
	client  *fasthttp.Client
	base    string
	key     string // the key to sign with; default the merchant's APIv2 key
	sign    string // replaces the sign
	noNonce bool   // leaves nonce_str out
}

func v2Client(c *fasthttp.Client, base string) v2Opt {
	return func(o *v2Options) { o.client, o.base = c, base }
}
func v2SignKey(k string) v2Opt { return func(o *v2Options) { o.key = k } }
func v2Sign(s string) v2Opt    { return func(o *v2Options) { o.sign = s } }
func v2NoNonce() v2Opt         { return func(o *v2Options) { o.noNonce = true } }

// v2 sends an APIv2 request for merchant m: appid, mch_id and nonce_str are added, sign_type
// when signType is not "", and the sign. A SUCCESS answer's sign must verify with the same type.
func (h *mchHarness) v2(m testMerchant, path, signType string, params []signer.Param, opts ...v2Opt) v2Doc {
	h.t.Helper()
	o := v2Options{client: h.client, base: h.base, key: m.APIv2Key}
	for _, f := range opts {
		f(&o)
	}
	ps := []signer.Param{{Key: "appid", Value: m.AppID}, {Key: "mch_id", Value: m.MchID}}
	if !o.noNonce {
		ps = append(ps, signer.Param{Key: "nonce_str", Value: randomNonce(32)})
	}
	ps = append(ps, params...)
	if signType != "" {
		ps = append(ps, signer.Param{Key: "sign_type", Value: signType})
	}
	signWith := signType
	if signWith != signer.V2SignMD5 && signWith != signer.V2SignHMACSHA256 {
		signWith = "" // an unknown sign_type under test: sign with MD5
	}
	sign, err := signer.NewV2Key(o.key).AppendSign(nil, signWith, slices.Clone(ps))
	if err != nil {
		h.t.Fatal(err)
	}
	if o.sign != "" {
		sign = []byte(o.sign)
	}
	ps = append(ps, signer.Param{Key: "sign", Value: string(sign)})
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(o.base + path)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("text/xml")
	req.SetBody(signer.AppendXML(nil, ps))
	if err := o.client.DoTimeout(req, resp, 5*time.Second); err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	d := v2Doc{status: resp.StatusCode(), raw: append([]byte(nil), resp.Body()...)}
	if string(resp.Header.ContentType()) != v2ContentType {
		return d // a file (downloadbill)
	}
	if d.params, err = signer.ParseXML(d.raw); err != nil {
		h.t.Fatalf("POST %s: answer %q: %v", path, d.raw, err)
	}
	if d.get("return_code") == "SUCCESS" {
		if err := signer.NewV2Key(m.APIv2Key).Verify(signWith, d.params); err != nil {
			h.t.Fatalf("POST %s: answer sign: %v (%s)", path, err, d.raw)
		}
		if d.get("appid") != m.AppID || d.get("mch_id") != m.MchID || d.get("nonce_str") == "" {
			h.t.Fatalf("POST %s: answer %s lacks appid, mch_id or nonce_str", path, d.raw)
		}
	} else if d.get("sign") != "" {
		h.t.Fatalf("POST %s: return_code FAIL answer is signed: %s", path, d.raw)
	}
	return d
}

// p is a shorthand for a signer.Param.
func p(k, v string) signer.Param { return signer.Param{Key: k, Value: v} }
