package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/signer"
)

func TestMchNewValidatesConfig(t *testing.T) {
	k := keys(t)
	mp, mk := testMerchants(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*Merchant)) Merchant {
		m := mp.Merchant
		f(&m)
		return m
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings the error must contain; nil means success
	}{
		{"ok", Config{Apps: []App{appA}, Merchants: []Merchant{mp.Merchant, mk.Merchant}, PayKey: k.pay}, nil},
		{"merchants without apps", Config{Merchants: []Merchant{mp.Merchant}}, nil},
		{"nothing configured", Config{}, []string{"no apps or merchants"}},
		{"empty mchid", Config{Merchants: []Merchant{with(func(m *Merchant) { m.MchID = "" })}}, []string{"mchid is empty"}},
		{"empty appid", Config{Merchants: []Merchant{with(func(m *Merchant) { m.AppID = "" })}}, []string{"appid is empty"}},
		{"empty serial", Config{Merchants: []Merchant{with(func(m *Merchant) { m.SerialNo = "" })}}, []string{"serial_no is empty"}},
		{"no public key", Config{Merchants: []Merchant{with(func(m *Merchant) { m.PublicKey = nil })}}, []string{"public key is missing"}},
		{"short public key", Config{Merchants: []Merchant{with(func(m *Merchant) { m.PublicKey = &small.PublicKey })}}, []string{"1024 bits"}},
		{"APIv3 key not 32 bytes", Config{Merchants: []Merchant{with(func(m *Merchant) { m.APIv3Key = "short" })}}, []string{"APIv3 key"}},
		{"duplicate mchid", Config{Merchants: []Merchant{mp.Merchant, mp.Merchant}}, []string{"configured twice"}},
		{"short pay key", Config{Merchants: []Merchant{mp.Merchant}, PayKey: small}, []string{"pay key has 1024 bits"}},
		{"every problem at once", Config{Merchants: []Merchant{
			with(func(m *Merchant) { m.MchID, m.PublicKey = "", nil }),
			with(func(m *Merchant) { m.MchID, m.APIv3Key = "2", "" }),
		}}, []string{"mchid is empty", "public key is missing", "APIv3 key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.cfg)
			if tt.wantErr == nil {
				if err != nil || e == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestV3Authorization(t *testing.T) {
	h := newMchHarness(t)
	h.placeJSAPI(h.mp, "auth_order_1", 100)
	const query = "/v3/pay/transactions/out-trade-no/auth_order_1?mchid=" + mchIDP
	const closeURI = "/v3/pay/transactions/out-trade-no/auth_order_404/close"
	closeBody := []byte(`{"mchid":"` + mchIDP + `"}`)
	other := h.mk
	tests := []struct {
		name    string
		method  string
		uri     string
		body    []byte
		opts    []v3Opt
		status  int
		message string // for 401: the expected message
	}{
		{"good GET", "GET", query, nil, nil, 200, ""},
		{"good POST", "POST", closeURI, closeBody, nil, 204, ""},
		{"timestamp 300 s ahead", "GET", query, nil, []v3Opt{skewed(300 * time.Second)}, 200, ""},
		{"timestamp 300 s behind", "GET", query, nil, []v3Opt{skewed(-300 * time.Second)}, 200, ""},
		{"timestamp 301 s ahead", "GET", query, nil, []v3Opt{skewed(301 * time.Second)}, 401, msgAuthTimestamp},
		{"timestamp 301 s behind", "GET", query, nil, []v3Opt{skewed(-301 * time.Second)}, 401, msgAuthTimestamp},
		{"tampered body", "POST", closeURI, closeBody, []v3Opt{signBody(`{"mchid":"1900000100"}`)}, 401, msgAuthSignature},
		{"body signed with a trailing newline", "POST", closeURI, closeBody, []v3Opt{signBody(string(closeBody) + "\n")}, 401, msgAuthSignature},
		{"tampered path", "GET", query, nil, []v3Opt{signURI("/v3/pay/transactions/out-trade-no/auth_order_2?mchid=" + mchIDP)}, 401, msgAuthSignature},
		{"query not signed", "GET", query, nil, []v3Opt{signURI("/v3/pay/transactions/out-trade-no/auth_order_1")}, 401, msgAuthSignature},
		{"tampered query", "GET", query, nil, []v3Opt{signURI("/v3/pay/transactions/out-trade-no/auth_order_1?mchid=1900000100")}, 401, msgAuthSignature},
		{"tampered method", "GET", query, nil, []v3Opt{signMethod("POST")}, 401, msgAuthSignature},
		{"wrong serial_no", "GET", query, nil, []v3Opt{authSerial(serialK)}, 401, msgAuthSerial},
		{"unknown mchid", "GET", query, nil, []v3Opt{authMchID("1900009999")}, 401, msgAuthMchID},
		{"another merchant's mchid", "GET", query, nil, []v3Opt{authMchID(mchIDK), authSerial(serialK)}, 401, msgAuthSignature},
		{"signed with another key", "GET", query, nil, []v3Opt{signedBy(other.key)}, 401, msgAuthSignature},
		{"garbage signature", "GET", query, nil, []v3Opt{authSignature("not base64!")}, 401, msgAuthSignature},
		{"probe signature", "GET", query, nil, []v3Opt{authSignature(signer.SignTestPrefix + "AAAA")}, 401, msgAuthSignature},
		{"no Authorization", "GET", query, nil, []v3Opt{rawAuthorization("")}, 401, msgAuthMissing},
		{"wrong scheme", "GET", query, nil, []v3Opt{rawAuthorization(`WECHATPAY2-SHA256-RSA4096 mchid="1900000101"`)}, 401, msgAuthFormat},
		{"non-numeric timestamp", "GET", query, nil, []v3Opt{rawAuthorization(string(signer.AppendAuthorization(nil, mchIDP, "n", "s", "soon", serialP)))}, 401, msgAuthFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.v3(h.mp, tt.method, tt.uri, tt.body, tt.opts...)
			if r.status != tt.status {
				t.Fatalf("HTTP %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.status != 401 {
				return
			}
			m := r.obj(t)
			if m.str("code") != "SIGN_ERROR" || m.str("message") != tt.message {
				t.Fatalf("answer %s, want SIGN_ERROR %q", r.body, tt.message)
			}
			if tt.message == msgAuthSignature && tt.method == "GET" {
				info := m.sub("detail").sub("sign_information")
				if info.str("url") != tt.uri || info.str("method") != tt.method {
					t.Errorf("sign_information %v, want url %s", info, tt.uri)
				}
			}
		})
	}
}

func TestV3AnswerKeys(t *testing.T) {
	h := newMchHarness(t)
	if !regexp.MustCompile(`^PUB_KEY_ID_\d{34}$`).MatchString(h.emu.PayPublicKeyID()) {
		t.Fatalf("PayPublicKeyID %q", h.emu.PayPublicKeyID())
	}
	pub, err := signer.ParsePublicKey(h.emu.PayPublicKeyPEM())
	if err != nil || !pub.Equal(&keys(t).pay.PublicKey) {
		t.Fatalf("PayPublicKeyPEM is not Config.PayKey: %v", err)
	}
	pems := h.emu.PlatformCertificatePEMs()
	if len(pems) != 1 {
		t.Fatalf("%d platform certificates, want 1", len(pems))
	}
	_, platform, err := signer.ParseCertificate(pems[0])
	if err != nil {
		t.Fatal(err)
	}
	pubID := h.emu.PayPublicKeyID()
	tests := []struct {
		name       string
		m          testMerchant
		uri        string
		opts       []v3Opt
		wantSerial string
	}{
		{"platform merchant", h.mp, "/v3/certificates", nil, platform},
		{"platform merchant asking for the public key", h.mp, "/v3/certificates", []v3Opt{wechatpaySerial(pubID)}, pubID},
		{"platform merchant naming a platform serial", h.mp, "/v3/certificates", []v3Opt{wechatpaySerial(platform)}, platform},
		{"platform merchant, error answer", h.mp, "/v3/pay/transactions/out-trade-no/none?mchid=" + mchIDP, nil, platform},
		{"public-key merchant", h.mk, "/v3/certificates", nil, pubID},
		{"public-key merchant naming the key", h.mk, "/v3/certificates", []v3Opt{wechatpaySerial(pubID)}, pubID},
		{"public-key merchant naming a platform serial", h.mk, "/v3/certificates", []v3Opt{wechatpaySerial(platform)}, pubID},
		{"unknown merchant", h.mp, "/v3/certificates", []v3Opt{authMchID("1900009999")}, pubID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			r := h.v3(tt.m, "GET", tt.uri, nil, tt.opts...)
			if got := r.header["Wechatpay-Serial"]; got != tt.wantSerial {
				t.Errorf("Wechatpay-Serial %q, want %q", got, tt.wantSerial)
			}
			if r.header["Wechatpay-Signature-Type"] != signer.AuthScheme {
				t.Errorf("Wechatpay-Signature-Type %q", r.header["Wechatpay-Signature-Type"])
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(r.header["Wechatpay-Nonce"]) {
				t.Errorf("Wechatpay-Nonce %q", r.header["Wechatpay-Nonce"])
			}
		})
	}
	h.t = t
	r := h.v3(h.mk, "GET", "/v3/certificates", nil)
	if string(r.body) != `{"data":[]}` {
		t.Errorf("public-key merchant certificates: %s, want {\"data\":[]}", r.body)
	}
	list, err := decryptCertificates(h.mp, h.v3(h.mp, "GET", "/v3/certificates", nil).body)
	if err != nil || len(list) != 1 || list[platform] == nil {
		t.Fatalf("platform merchant certificates: %v %v", list, err)
	}
}

func TestV3PlatformRotation(t *testing.T) {
	h := newMchHarness(t)
	h.placeJSAPI(h.mp, "rotate_order", 1)
	query := "/v3/pay/transactions/out-trade-no/rotate_order?mchid=" + mchIDP
	before := h.v3(h.mp, "GET", query, nil)
	oldSerial := before.header["Wechatpay-Serial"]
	h.clock.Advance(time.Hour)
	newSerial := h.emu.RotatePlatformCertificate()
	if newSerial == oldSerial || len(newSerial) != 40 {
		t.Fatalf("rotated serial %q (old %q)", newSerial, oldSerial)
	}
	after := h.v3(h.mp, "GET", query, nil)
	if after.header["Wechatpay-Serial"] != newSerial {
		t.Fatalf("answer signed by %q after rotation, want %q", after.header["Wechatpay-Serial"], newSerial)
	}
	list, err := decryptCertificates(h.mp, h.v3(h.mp, "GET", "/v3/certificates", nil).body)
	if err != nil || len(list) != 2 || list[oldSerial] == nil || list[newSerial] == nil {
		t.Fatalf("certificates after rotation: %v %v", list, err)
	}
	if len(h.emu.PlatformCertificatePEMs()) != 2 {
		t.Errorf("PlatformCertificatePEMs lists %d certificates, want 2", len(h.emu.PlatformCertificatePEMs()))
	}
	oldKey, err := h.answerKey(h.mp, oldSerial)
	if err != nil {
		t.Fatal(err)
	}
	msg := signer.AppendResponseMessage(nil, before.header["Wechatpay-Timestamp"], before.header["Wechatpay-Nonce"], before.body)
	if err := signer.NewRSAVerifier(oldKey).Verify(msg, before.header["Wechatpay-Signature"]); err != nil {
		t.Errorf("an answer signed by the old certificate no longer verifies: %v", err)
	}
	// The old certificate expires five years after it was issued; the new one an hour later.
	h.clock.Advance(platformCertLifetime - 30*time.Minute)
	list, err = decryptCertificates(h.mp, h.v3(h.mp, "GET", "/v3/certificates", nil).body)
	if err != nil || len(list) != 1 || list[newSerial] == nil {
		t.Fatalf("certificates after the old one expired: %v %v", list, err)
	}
	// Over HTTP too.
	m := h.getJSON("POST", "/_emulator/pay/platform/rotate", nil)
	serial := m.str("serial_no")
	if m["ok"] != true || len(serial) != 40 || serial == newSerial {
		t.Fatalf("POST /_emulator/pay/platform/rotate: %v", m)
	}
	if got := h.v3(h.mp, "GET", query, nil).header["Wechatpay-Serial"]; got != serial {
		t.Errorf("answer signed by %q, want %q", got, serial)
	}
}

func TestV3SignTest(t *testing.T) {
	h := newMchHarness(t)
	h.placeJSAPI(h.mp, "probe_order", 1)
	query := "/v3/pay/transactions/out-trade-no/probe_order?mchid=" + mchIDP
	h.v3(h.mp, "GET", "/v3/certificates", nil) // fetch the certificates before probing
	h.emu.SendSignTest(2)
	for i := range 2 {
		r, err := h.v3Do(h.mp, "GET", query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(r.header["Wechatpay-Signature"], signer.SignTestPrefix) {
			t.Fatalf("answer %d: signature %q is not a probe", i, r.header["Wechatpay-Signature"])
		}
		if err := h.verifyAnswer(h.mp, r); !errors.Is(err, signer.ErrSignatureProbe) {
			t.Fatalf("answer %d: verify = %v, want ErrSignatureProbe", i, err)
		}
		if r.status != 200 || r.obj(t).str("trade_state") != "NOTPAY" || r.header["Wechatpay-Serial"] == "" {
			t.Fatalf("answer %d: probe answers keep a real body and serial: HTTP %d %s %v", i, r.status, r.body, r.header)
		}
	}
	h.v3(h.mp, "GET", query, nil) // verifies again
	// Over HTTP, for the public-key merchant and a 204 answer.
	if m := h.getJSON("POST", "/_emulator/pay/signtest?n=1", nil); m["ok"] != true || m.num("n") != 1 {
		t.Fatalf("POST /_emulator/pay/signtest: %v", m)
	}
	r, err := h.v3Do(h.mk, "POST", "/v3/pay/transactions/out-trade-no/probe_k/close", []byte(`{"mchid":"`+mchIDK+`"}`))
	if err != nil || r.status != 204 || !strings.HasPrefix(r.header["Wechatpay-Signature"], signer.SignTestPrefix) {
		t.Fatalf("close after signtest: %v HTTP %d %v", err, r.status, r.header)
	}
	if status, _ := h.do("POST", "/_emulator/pay/signtest?n=-1", nil); status != 400 {
		t.Errorf("signtest?n=-1: HTTP %d, want 400", status)
	}
}

func TestV3RoutingErrors(t *testing.T) {
	h := newMchHarness(t)
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/no/such/api", nil), 404, "RESOURCE_NOT_EXISTS")
	expectV3Error(t, h.v3(h.mp, "DELETE", "/v3/certificates", nil), 405, "INVALID_REQUEST")
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/pay/transactions/out-trade-no/x/y?mchid="+mchIDP, nil), 404, "RESOURCE_NOT_EXISTS")
	expectV3Error(t, h.v3(h.mp, "GET", "/v3/no/such/api", nil, rawAuthorization("")), 401, "SIGN_ERROR")
}

func TestMchFaultsAndCalls(t *testing.T) {
	const id = "fault_order"
	query := "/v3/pay/transactions/out-trade-no/" + id + "?mchid=" + mchIDP
	path := "/v3/pay/transactions/out-trade-no/" + id
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, h *mchHarness)
	}{
		{"v3 system_busy is a signed SYSTEM_ERROR", Faults{FailNext: 1, Mode: FailSystemBusy}, func(t *testing.T, h *mchHarness) {
			expectV3Error(t, h.v3(h.mp, "GET", query, nil), 500, "SYSTEM_ERROR")
		}},
		{"v3 http500 is unsigned", Faults{FailNext: 1}, func(t *testing.T, h *mchHarness) {
			r, err := h.v3Do(h.mp, "GET", query, nil)
			if err != nil || r.status != 500 || r.header["Wechatpay-Signature"] != "" {
				t.Fatalf("%v HTTP %d %v", err, r.status, r.header)
			}
		}},
		{"v3 close", Faults{FailNext: 1, Mode: FailClose}, func(t *testing.T, h *mchHarness) {
			// A POST: fasthttp's client retries an idempotent GET on a closed connection.
			if _, err := h.v3Do(h.mp, "POST", path+"/close", []byte(`{"mchid":"`+mchIDP+`"}`)); err == nil {
				t.Fatal("answered, want the connection closed")
			}
		}},
		{"v3 hang then answer", Faults{FailNext: 1, Mode: FailHang, Latency: 50 * time.Millisecond}, func(t *testing.T, h *mchHarness) {
			if r := h.v3(h.mp, "GET", query, nil); r.status != 200 {
				t.Fatalf("HTTP %d", r.status)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newMchHarness(t)
			h.placeJSAPI(h.mp, id, 1)
			h.emu.SetFaults(tt.faults)
			tt.check(t, h)
			if r := h.v3(h.mp, "GET", query, nil); r.status != 200 {
				t.Fatalf("after the fault: HTTP %d %s", r.status, r.body)
			}
			if got := h.emu.Calls(path) + h.emu.Calls(path+"/close"); got != 2 {
				t.Errorf("Calls(%s) = %d, want 2", path, got)
			}
		})
	}
	t.Run("v2 system_busy", func(t *testing.T) {
		h := newMchHarness(t)
		h.emu.SetFaults(Faults{FailNext: 1, Mode: FailSystemBusy})
		d := h.v2(h.mp, "/pay/orderquery", "", []signer.Param{p("out_trade_no", "x")})
		if d.get("return_code") != "FAIL" || d.get("return_msg") != v2MsgSystemBusy {
			t.Fatalf("answer %s", d.raw)
		}
		if d := h.v2(h.mp, "/pay/orderquery", "", []signer.Param{p("out_trade_no", "x")}); d.get("err_code") != "ORDERNOTEXIST" {
			t.Fatalf("after the fault: %s", d.raw)
		}
		if got := h.emu.Calls("/pay/orderquery"); got != 2 {
			t.Errorf("Calls = %d, want 2", got)
		}
	})
}

// TestMerchantCertificateReplacement: a merchant registers a new API certificate; requests
// signed with either key under its serial are accepted (so servers can switch one by one), a
// paySign by the new key verifies, and once the old certificate is revoked it is refused.
func TestMerchantCertificateReplacement(t *testing.T) {
	h := newMchHarness(t)
	h.placeJSAPI(h.mp, "cert_order", 100)
	const query = "/v3/pay/transactions/out-trade-no/cert_order?mchid=" + mchIDP
	newKey := mustRSAKey()
	cert, _ := selfSigned(newKey, mchIDP)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})

	for _, bad := range []struct{ uri, body string }{
		{"/_emulator/pay/merchant/certificate?mchid=" + mchIDP, "not a certificate"},
		{"/_emulator/pay/merchant/certificate?mchid=1234567890", string(certPEM)},
	} {
		if status, body := h.do("POST", bad.uri, []byte(bad.body)); status != 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("POST %s with %.20q: %d %s, want 400 and an error", bad.uri, bad.body, status, body)
		}
	}
	m := h.getJSON("POST", "/_emulator/pay/merchant/certificate?mchid="+mchIDP, certPEM)
	serial := m.str("serial_no")
	if m["ok"] != true || serial != signer.CertificateSerial(cert) {
		t.Fatalf("register the new certificate: %v", m)
	}
	if r := h.v3(h.mp, "GET", query, nil, signedBy(newKey), authSerial(serial)); r.status != 200 {
		t.Fatalf("signed with the new key: HTTP %d %s", r.status, r.body)
	}
	if r := h.v3(h.mp, "GET", query, nil); r.status != 200 {
		t.Fatalf("signed with the old key before it was revoked: HTTP %d %s", r.status, r.body)
	}
	r, err := h.v3Do(h.mp, "GET", query, nil, signedBy(newKey)) // the new key under the old serial
	if err != nil {
		t.Fatal(err)
	}
	expectV3Error(t, r, 401, "SIGN_ERROR")

	if m := h.getJSON("POST", "/_emulator/pay/merchant/revoke?mchid="+mchIDP+"&serial_no="+serialP, nil); m["ok"] != true {
		t.Fatalf("revoke the old certificate: %v", m)
	}
	r, err = h.v3Do(h.mp, "GET", query, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectV3Error(t, r, 401, "SIGN_ERROR")
	if r := h.v3(h.mp, "GET", query, nil, signedBy(newKey), authSerial(serial)); r.status != 200 {
		t.Fatalf("signed with the new key after the revocation: HTTP %d %s", r.status, r.body)
	}
	if status, body := h.do("POST", "/_emulator/pay/merchant/revoke?mchid="+mchIDP+"&serial_no="+serial, nil); status != 400 {
		t.Fatalf("the only certificate was revoked: %d %s", status, body)
	}
}
