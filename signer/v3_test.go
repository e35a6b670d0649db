package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

type v3Vectors struct {
	RequestSignature struct {
		PrivateKeyFile    string `json:"private_key_file"`
		Method            string `json:"method"`
		URL               string `json:"url"`
		Timestamp         string `json:"timestamp"`
		Nonce             string `json:"nonce"`
		Body              string `json:"body"`
		ExpectedSignature string `json:"expected_signature"`
	} `json:"request_signature"`
	MiniprogramPaySign struct {
		PrivateKeyFile  string `json:"private_key_file"`
		AppID           string `json:"appId"`
		TimeStamp       string `json:"timeStamp"`
		NonceStr        string `json:"nonceStr"`
		Package         string `json:"package"`
		ExpectedPaySign string `json:"expected_paySign"`
	} `json:"miniprogram_pay_sign"`
	ResponseVerification struct {
		PublicKeyFile string `json:"public_key_file"`
		Timestamp     string `json:"Wechatpay-Timestamp"`
		Nonce         string `json:"Wechatpay-Nonce"`
		Serial        string `json:"Wechatpay-Serial"`
		Signature     string `json:"Wechatpay-Signature"`
		Body          string `json:"body"`
	} `json:"response_verification_public_key"`
	AEAD struct {
		Key               string              `json:"key"`
		Nonce             string              `json:"nonce"`
		AssociatedData    string              `json:"associated_data"`
		CiphertextBase64  string              `json:"ciphertext_base64"`
		ExpectedPlaintext string              `json:"expected_plaintext"`
		MustFail          []map[string]string `json:"must_fail"`
	} `json:"aead_aes_256_gcm"`
}

func loadV3Vectors(t testing.TB) v3Vectors {
	t.Helper()
	var v v3Vectors
	readVectors(t, "wechatpay_v3.json", &v)
	if v.RequestSignature.ExpectedSignature == "" || v.MiniprogramPaySign.ExpectedPaySign == "" ||
		v.ResponseVerification.Signature == "" || v.AEAD.CiphertextBase64 == "" {
		t.Fatal("wechatpay_v3.json lacks a vector")
	}
	return v
}

func TestRequestSignatureVector(t *testing.T) {
	v := loadV3Vectors(t).RequestSignature
	key, err := ParsePrivateKey(readVectorFile(t, v.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	msg := AppendRequestMessage(nil, v.Method, v.URL, v.Timestamp, v.Nonce, []byte(v.Body))
	if want := v.Method + "\n" + v.URL + "\n" + v.Timestamp + "\n" + v.Nonce + "\n" + v.Body + "\n"; string(msg) != want {
		t.Fatalf("message = %q, want %q", msg, want)
	}
	s := NewRSASigner(key)
	got, err := s.AppendSign(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != v.ExpectedSignature {
		t.Fatalf("signature = %s, want %s", got, v.ExpectedSignature)
	}
	if err := NewRSAVerifier(s.PublicKey()).Verify(msg, v.ExpectedSignature); err != nil {
		t.Fatalf("Verify rejected the vector: %v", err)
	}
}

// TestCertificatesRequestSignature pins docs/protocol/wechatpay.md §9.3 (self-computed with the
// official test key, GET with an empty body).
func TestCertificatesRequestSignature(t *testing.T) {
	const want = "JNEITrKv8DWEtBJGZtxG9ARa+eIZDIn1Ht3MQM5j9jP77TtHdfCqLjpwevfWftBuaGMfEdiu2sWYtLvnZIoLW3FH10OVCBzKncid5xClTwav8JX+uDeGBBX8w64iHvFyuQj8ukZT+F1AFJii8hmXLD8Os90thnL0bfJYLo/4K237TH4dEd44NTH9ElFb/ykrvv9RBs+mCNpy5IUe2Qxhba3d3RiMqhWK2sSr3tsVzQihJ0TPMnjWqoU2W5Y/v3rBFDmLhqe0ZW6A4vyvjmiR0v/8XEI25Py4PNyZXszsdl4j0zLqelUJxGEMUBhYg1LIoDPjYMlA9HV1yKD6+JYZJA=="
	msg := AppendRequestMessage(nil, "GET", "/v3/certificates", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", nil)
	got, err := NewRSASigner(officialKey(t)).AppendSign(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

func TestMiniProgramPaySignVector(t *testing.T) {
	v := loadV3Vectors(t).MiniprogramPaySign
	key, err := ParsePrivateKey(readVectorFile(t, v.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	msg := AppendPaySignMessage(nil, v.AppID, v.TimeStamp, v.NonceStr, v.Package)
	got, err := NewRSASigner(key).AppendSign(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != v.ExpectedPaySign {
		t.Fatalf("paySign = %s, want %s", got, v.ExpectedPaySign)
	}
}

func TestResponseVerificationVector(t *testing.T) {
	v := loadV3Vectors(t).ResponseVerification
	pub, err := ParsePublicKey(readVectorFile(t, v.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	verifier := NewRSAVerifier(pub)
	msg := AppendResponseMessage(nil, v.Timestamp, v.Nonce, []byte(v.Body))
	if err := verifier.Verify(msg, v.Signature); err != nil {
		t.Fatalf("Verify rejected the official response: %v", err)
	}
	if err := verifier.VerifyBytes(msg, []byte(v.Signature)); err != nil {
		t.Fatalf("VerifyBytes rejected the official response: %v", err)
	}

	other := NewRSAVerifier(&officialKey(t).PublicKey)
	flipped := []byte(v.Signature)
	flipped[10] ^= 'A' ^ 'B' // still base64, another signature
	if flipped[10] == v.Signature[10] {
		t.Fatal("flip failed")
	}
	cases := []struct {
		name      string
		verifier  *RSAVerifier
		msg       []byte
		signature string
		probe     bool
	}{
		{"tampered body", verifier, AppendResponseMessage(nil, v.Timestamp, v.Nonce, []byte(v.Body+" ")), v.Signature, false},
		{"tampered timestamp", verifier, AppendResponseMessage(nil, "1722850422", v.Nonce, []byte(v.Body)), v.Signature, false},
		{"missing final newline", verifier, msg[:len(msg)-1], v.Signature, false},
		{"wrong key", other, msg, v.Signature, false},
		{"flipped signature", verifier, msg, string(flipped), false},
		{"probe", verifier, msg, SignTestPrefix + v.Signature, true},
		{"bare probe prefix", verifier, msg, SignTestPrefix, true},
		{"probe of the right length", verifier, msg, SignTestPrefix + v.Signature[len(SignTestPrefix):], true},
		{"garbage base64", verifier, msg, strings.Repeat("!", len(v.Signature)), false},
		{"truncated", verifier, msg, v.Signature[:len(v.Signature)-4], false},
		{"too long", verifier, msg, v.Signature + "AAAA", false},
		{"huge", verifier, msg, strings.Repeat("A", 1<<20), false},
		{"empty", verifier, msg, "", false},
		{"url-safe alphabet", verifier, msg, strings.NewReplacer("+", "-", "/", "_").Replace(v.Signature), false},
		{"nil key", NewRSAVerifier(nil), msg, v.Signature, false},
		{"zero key", NewRSAVerifier(&rsa.PublicKey{}), msg, v.Signature, false},
		{"nil verifier", nil, msg, v.Signature, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for form, err := range map[string]error{
				"Verify":      c.verifier.Verify(c.msg, c.signature),
				"VerifyBytes": c.verifier.VerifyBytes(c.msg, []byte(c.signature)),
			} {
				if !errors.Is(err, ErrSignatureInvalid) {
					t.Fatalf("%s = %v, want ErrSignatureInvalid", form, err)
				}
				if got := errors.Is(err, ErrSignatureProbe); got != c.probe {
					t.Fatalf("%s: errors.Is(%v, ErrSignatureProbe) = %v, want %v", form, err, got, c.probe)
				}
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key := generatedKey(t)
	s := NewRSASigner(key)
	v := NewRSAVerifier(s.PublicKey())
	official := NewRSAVerifier(&officialKey(t).PublicKey)
	for _, body := range []string{"", "{}", `{"amount":{"total":1}}` + "\n", strings.Repeat("长", 5000)} {
		msg := AppendRequestMessage(nil, "POST", "/v3/refund/domestic/refunds?x=1", "1700000000", "n", []byte(body))
		dst := []byte("prefix:")
		sig, err := s.AppendSign(dst, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(sig), "prefix:") {
			t.Fatalf("AppendSign lost dst: %q", sig)
		}
		b64 := string(sig[len("prefix:"):])
		if err := v.Verify(msg, b64); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if err := official.Verify(msg, b64); !errors.Is(err, ErrSignatureInvalid) {
			t.Fatalf("another key verified it: %v", err)
		}
		if err := v.Verify(append(msg, 'x'), b64); !errors.Is(err, ErrSignatureInvalid) {
			t.Fatalf("a changed message verified: %v", err)
		}
	}
	if _, err := (&RSASigner{}).AppendSign(nil, []byte("m")); err == nil {
		t.Error("a signer without key signed")
	}
	if NewRSASigner(nil).PublicKey() != nil {
		t.Error("PublicKey of a keyless signer is not nil")
	}
}

// TestMessageLayouts pins the byte layouts of docs/protocol/wechatpay.md §1.1, §1.3, §2.1 and §6
// (vectors listed in §9.3).
func TestMessageLayouts(t *testing.T) {
	cases := []struct{ name, got, want string }{
		{"GET, empty body", string(AppendRequestMessage(nil, "GET", "/v3/certificates", "1624523846", "A1B2C3D4E5F6G7", nil)),
			"GET\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\n\n"},
		{"POST body ending in newline", string(AppendRequestMessage(nil, "POST", "/v3/certificates", "1624523846", "A1B2C3D4E5F6G7", []byte("Hello World!\n"))),
			"POST\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\nHello World!\n\n"},
		{"query kept as sent", string(AppendRequestMessage(nil, "GET", "/v3/pay/transactions/id/1217752501201407033233368018?mchid=1230000109", "1", "n", nil)),
			"GET\n/v3/pay/transactions/id/1217752501201407033233368018?mchid=1230000109\n1\nn\n\n"},
		{"request(6,7,8,9)", string(AppendRequestMessage(nil, "6", "7", "8", "9", nil)), "6\n7\n8\n9\n\n"},
		{"response(9,8)", string(AppendResponseMessage(nil, "9", "8", nil)), "9\n8\n\n"},
		{"response with body", string(AppendResponseMessage(nil, "1", "NONCE1234567890", []byte("BODY"))), "1\nNONCE1234567890\nBODY\n"},
		{"pay sign", string(AppendPaySignMessage(nil, "wx1", "1554208460", "n", "prepay_id=p")), "wx1\n1554208460\nn\nprepay_id=p\n"},
		{"appends to dst", string(AppendResponseMessage([]byte("x"), "1", "2", []byte("3"))), "x1\n2\n3\n"},
		{"authorization", string(AppendAuthorization(nil, "1900009191", "593BEC0C930BF1AFEB40B4A08C8FB242", "uOVR==", "1554208460", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C")),
			`WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="uOVR==",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"`},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	want := Authorization{MchID: "1900009191", NonceStr: "593BEC0C930BF1AFEB40B4A08C8FB242",
		Signature: "uOVR+/==", Timestamp: "1554208460", SerialNo: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"}
	const (
		s  = `WECHATPAY2-SHA256-RSA2048 `
		m  = `mchid="1900009191"`
		n  = `nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242"`
		g  = `signature="uOVR+/=="`
		ts = `timestamp="1554208460"`
		sn = `serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"`
	)
	ok := []struct{ name, v string }{
		{"official order", s + m + "," + n + "," + g + "," + ts + "," + sn},
		{"Go SDK order", s + m + "," + n + "," + ts + "," + sn + "," + g},
		{"PHP order", s + m + "," + sn + "," + ts + "," + n + "," + g},
		{"reversed", s + sn + "," + ts + "," + g + "," + n + "," + m},
		{"AppendAuthorization", string(AppendAuthorization(nil, want.MchID, want.NonceStr, want.Signature, want.Timestamp, want.SerialNo))},
	}
	for _, c := range ok {
		got, err := ParseAuthorization(c.v)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if got != want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, want)
		}
	}
	bad := []struct{ name, v string }{
		{"empty", ""},
		{"scheme only", s},
		{"scheme without space", strings.TrimSpace(s)},
		{"other scheme", "Bearer " + m + "," + n + "," + g + "," + ts + "," + sn},
		{"lower-case scheme", strings.ToLower(s) + m + "," + n + "," + g + "," + ts + "," + sn},
		{"v3 RSA scheme variant", "WECHATPAY2-SHA256-RSA4096 " + m + "," + n + "," + g + "," + ts + "," + sn},
		{"two spaces", s + " " + m + "," + n + "," + g + "," + ts + "," + sn},
		{"space after comma", s + m + ", " + n + "," + g + "," + ts + "," + sn},
		{"trailing comma", s + m + "," + n + "," + g + "," + ts + "," + sn + ","},
		{"trailing space", s + m + "," + n + "," + g + "," + ts + "," + sn + " "},
		{"duplicate", s + m + "," + n + "," + g + "," + ts + "," + sn + "," + m},
		{"duplicate with other value", s + m + "," + n + "," + g + "," + ts + "," + sn + `,mchid="1"`},
		{"missing serial_no", s + m + "," + n + "," + g + "," + ts},
		{"missing signature", s + m + "," + n + "," + ts + "," + sn},
		{"unquoted", s + `mchid=1900009191,` + n + "," + g + "," + ts + "," + sn},
		{"unquoted timestamp", s + m + "," + n + "," + g + ",timestamp=1554208460," + sn},
		{"single quotes", s + `mchid='1900009191',` + n + "," + g + "," + ts + "," + sn},
		{"no closing quote", s + m + "," + n + "," + g + "," + ts + `,serial_no="1DDE`},
		{"text after value", s + m + `x,` + n + "," + g + "," + ts + "," + sn},
		{"empty value", s + `mchid="",` + n + "," + g + "," + ts + "," + sn},
		{"unknown field", s + m + "," + n + "," + g + "," + ts + "," + sn + `,extra="1"`},
		{"upper-case field", s + `MCHID="1900009191",` + n + "," + g + "," + ts + "," + sn},
		{"no equals", s + "mchid"},
		{"control character", s + "mchid=\"19\n0\"," + n + "," + g + "," + ts + "," + sn},
		{"unit separator", s + "mchid=\"19\x1f0\"," + n + "," + g + "," + ts + "," + sn},
		{"DEL", s + "mchid=\"19\x7f0\"," + n + "," + g + "," + ts + "," + sn},
	}
	for _, c := range bad {
		if got, err := ParseAuthorization(c.v); err == nil {
			t.Errorf("%s: accepted %q as %+v", c.name, c.v, got)
		}
	}
	// Only control characters are refused: a space is the first byte that is not one.
	if got, err := ParseAuthorization(s + `mchid="19 0",` + n + "," + g + "," + ts + "," + sn); err != nil || got.MchID != "19 0" {
		t.Errorf("a value with a space: %+v, %v", got, err)
	}
}

// TestAuthorizationErrorEcho: an unknown field's name is echoed whole up to 32 bytes, then cut.
func TestAuthorizationErrorEcho(t *testing.T) {
	for _, tc := range []struct{ name, echoed string }{
		{strings.Repeat("f", 31), strings.Repeat("f", 31)},
		{strings.Repeat("f", 32), strings.Repeat("f", 32)},
		{strings.Repeat("f", 33), strings.Repeat("f", 32) + "..."},
		{strings.Repeat("f", 400), strings.Repeat("f", 32) + "..."},
	} {
		_, err := ParseAuthorization("WECHATPAY2-SHA256-RSA2048 " + tc.name + `="1"`)
		want := `signer: parse Authorization: unknown field "` + tc.echoed + `"`
		if err == nil || err.Error() != want {
			t.Errorf("a %d-byte field name: %v, want %s", len(tc.name), err, want)
		}
	}
}

// pemBytes encodes der as one PEM block.
func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePrivateKey(t *testing.T) {
	official := officialKey(t)
	if official.N.BitLen() != 2048 {
		t.Fatalf("official key has %d bits", official.N.BitLen())
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(official)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePrivateKey(pemBytes("PRIVATE KEY", pkcs8))
	if err != nil {
		t.Fatalf("PKCS#8: %v", err)
	}
	if !key.Equal(official) {
		t.Fatal("PKCS#8 parse gave another key")
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(official)
	corrupt := append([]byte(nil), pkcs1...)
	corrupt[len(corrupt)/2] ^= 0xff
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: pkcs1})
	bad := []struct {
		name string
		pem  []byte
		want string // a fragment of the error
	}{
		{"empty", nil, "no PEM block"},
		{"not PEM", []byte("MIIEogIBAAKCAQEAptpm+qvIDCh/9wjU26SQCK26ogYkBhDrYxnAaw2JbbBsp1oD"), "no PEM block"},
		{"EC in PKCS#8", pemBytes("PRIVATE KEY", ecPKCS8), "want an RSA key"},
		{"EC PRIVATE KEY", pemBytes("EC PRIVATE KEY", ecSEC1), "PEM block is"},
		{"1024 bits", pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "1024 bits"},
		{"PKCS#8 labelled PKCS#1", pemBytes("RSA PRIVATE KEY", pkcs8), "PKCS#1"},
		{"PKCS#1 labelled PKCS#8", pemBytes("PRIVATE KEY", pkcs1), "PKCS#8"},
		{"corrupt DER", pemBytes("RSA PRIVATE KEY", corrupt), "PKCS#1"},
		{"encrypted", encrypted, "encrypted"},
		{"encrypted PKCS#8", pemBytes("ENCRYPTED PRIVATE KEY", pkcs8), "encrypted"},
		{"public key", readVectorFile(t, "wechatpay_public_key_example.pem"), "PEM block is"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePrivateKey(c.pem)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
			// No key material in errors: neither PEM text nor DER bytes.
			if strings.Contains(msg, "MII") || strings.Contains(msg, base64.StdEncoding.EncodeToString(pkcs1[:12])) {
				t.Errorf("error %q quotes key material", msg)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	official := &officialKey(t).PublicKey
	spki, err := x509.MarshalPKIXPublicKey(official)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{
		"SPKI":   pemBytes("PUBLIC KEY", spki),
		"PKCS#1": pemBytes("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(official)),
	} {
		key, err := ParsePublicKey(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !key.Equal(official) {
			t.Errorf("%s: another key", name)
		}
	}
	if examplePublicKey(t).N.BitLen() != 2048 {
		t.Error("example public key is not 2048 bits")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSPKI, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for name, p := range map[string][]byte{
		"empty":       nil,
		"EC":          pemBytes("PUBLIC KEY", ecSPKI),
		"private key": readVectorFile(t, "official_test_key.pem"),
		"garbage DER": pemBytes("PUBLIC KEY", []byte{0x30, 0x03, 0x01, 0x01}),
		"PKCS#1 SPKI": pemBytes("RSA PUBLIC KEY", spki),
	} {
		if _, err := ParsePublicKey(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// selfSigned returns a PEM certificate for key with the given serial.
func selfSigned(t *testing.T, serial *big.Int, pub, priv any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Tenpay.com sign", Organization: []string{"Tenpay.com"}},
		NotBefore:    time.Date(2023, 9, 19, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2028, 9, 17, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes("CERTIFICATE", der)
}

func TestParseCertificate(t *testing.T) {
	key := generatedKey(t)
	cases := []struct{ hex, want string }{
		// The Java SDK's platform certificate (docs/protocol/wechatpay.md §9.3).
		{"5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC", "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC"},
		{"5157f09efdc096de15ebe81a47057a7232f1b8e1", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"},
		{"F5765756002FDD77", "F5765756002FDD77"},
		// A leading zero nibble is dropped, as the official SDKs do (see CertificateSerial).
		{"0ABC", "ABC"},
	}
	for _, c := range cases {
		serial, _ := new(big.Int).SetString(c.hex, 16)
		cert, got, err := ParseCertificate(selfSigned(t, serial, &key.PublicKey, key))
		if err != nil {
			t.Fatalf("%s: %v", c.hex, err)
		}
		if got != c.want || CertificateSerial(cert) != c.want {
			t.Errorf("serial of %s = %s / %s, want %s", c.hex, got, CertificateSerial(cert), c.want)
		}
		if !cert.PublicKey.(*rsa.PublicKey).Equal(&key.PublicKey) {
			t.Error("certificate key differs")
		}
	}
	if CertificateSerial(nil) != "" || CertificateSerial(&x509.Certificate{}) != "" {
		t.Error("CertificateSerial of nothing is not empty")
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, p := range map[string][]byte{
		"EC certificate": selfSigned(t, big.NewInt(1), &ec.PublicKey, ec),
		"public key":     readVectorFile(t, "wechatpay_public_key_example.pem"),
		"garbage":        pemBytes("CERTIFICATE", []byte("nope")),
		"empty":          nil,
	} {
		if _, _, err := ParseCertificate(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
