package signer

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// Benchmarks of the WeChat Pay and message-push primitives: go test -bench . -run - ./signer

var v2BenchParams = []Param{
	{"appid", "wxd930ea5d5a258f4f"}, {"mch_id", "10000100"}, {"nonce_str", "ibuaiVcKdpRxkhJA"},
	{"body", "腾讯充值中心-QQ会员充值"}, {"out_trade_no", "20150806125346"}, {"total_fee", "88"},
	{"spbill_create_ip", "123.12.12.123"}, {"notify_url", "https://www.weixin.qq.com/wxpay/pay.php"},
	{"trade_type", "JSAPI"}, {"openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, {"sign_type", "MD5"},
}

func BenchmarkRSASign(b *testing.B) {
	v := loadV3Vectors(b).RequestSignature
	s := NewRSASigner(officialKey(b))
	msg := AppendRequestMessage(nil, v.Method, v.URL, v.Timestamp, v.Nonce, []byte(v.Body))
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = s.AppendSign(dst[:0], msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRSAVerify(b *testing.B) {
	v := loadV3Vectors(b).ResponseVerification
	verifier := NewRSAVerifier(examplePublicKey(b))
	msg := AppendResponseMessage(nil, v.Timestamp, v.Nonce, []byte(v.Body))
	b.ReportAllocs()
	for b.Loop() {
		if err := verifier.Verify(msg, v.Signature); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibRSASignFloor is BenchmarkRSASign's work done by calling crypto/rsa directly (same
// key, same message, no base64): the allocations the standard library makes itself, which
// RSASigner cannot avoid. RSASigner.AppendSign adds none to them.
func BenchmarkStdlibRSASignFloor(b *testing.B) {
	v := loadV3Vectors(b).RequestSignature
	key := officialKey(b)
	key.Precompute()
	msg := AppendRequestMessage(nil, v.Method, v.URL, v.Timestamp, v.Nonce, []byte(v.Body))
	b.ReportAllocs()
	for b.Loop() {
		digest := sha256.Sum256(msg)
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibRSAVerifyFloor is BenchmarkRSAVerify's work done by calling crypto/rsa directly
// (same key, message and signature, decoded beforehand): the standard library's own allocations.
// RSAVerifier.Verify adds none to them.
func BenchmarkStdlibRSAVerifyFloor(b *testing.B) {
	v := loadV3Vectors(b).ResponseVerification
	key := examplePublicKey(b)
	msg := AppendResponseMessage(nil, v.Timestamp, v.Nonce, []byte(v.Body))
	sig, err := base64.StdEncoding.DecodeString(v.Signature)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		digest := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAEADOpen(b *testing.B) {
	k, err := NewAEADKey([]byte("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"))
	if err != nil {
		b.Fatal(err)
	}
	// A payment notification's resource: about 1 KiB of transaction JSON.
	pt := []byte(`{"mchid":"1900007291","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000001201407033233368018","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"CMC","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"},"scene_info":{"device_id":"013467007045764"},"promotion_detail":[{"coupon_id":"109519","name":"单品惠-6","scope":"SINGLE","type":"CASH","amount":100,"stock_id":"931386","wechatpay_contribute":0,"merchant_contribute":0,"other_contribute":0,"currency":"CNY","goods_detail":[{"goods_id":"M1006","quantity":1,"unit_price":100,"discount_amount":1,"goods_remark":"商品备注信息"}]}]}`)
	ct, err := k.Seal("fdasflkja484", "transaction", pt)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if dst, err = k.Open(dst[:0], "fdasflkja484", "transaction", ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkV2Sign(b *testing.B) {
	k := NewV2Key("192006250b4c09247ec02edce69f6a2d")
	for _, signType := range []string{V2SignMD5, V2SignHMACSHA256} {
		b.Run(signType, func(b *testing.B) {
			params := append([]Param(nil), v2BenchParams...)
			dst := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = k.AppendSign(dst[:0], signType, params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkV2Verify(b *testing.B) {
	k := NewV2Key("192006250b4c09247ec02edce69f6a2d")
	params := append([]Param(nil), v2BenchParams...)
	sign, err := k.AppendSign(nil, V2SignMD5, params)
	if err != nil {
		b.Fatal(err)
	}
	params = append(params, Param{"sign", string(sign)})
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Verify("", params); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPushDecrypt(b *testing.B) {
	v := loadMsgpushVectors(b).SafeModeDecrypt
	c, err := NewPushCrypter(v.EncodingAESKey)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Decrypt(v.Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseXML(b *testing.B) {
	body := AppendXML(nil, v2BenchParams)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseXML(body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHotPathsDoNotAllocate pins the allocation-free paths: APIv2 signing and verification with a
// pre-sized dst and AEAD Open.
func TestHotPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items); CI also runs without -race")
	}
	k := NewV2Key("192006250b4c09247ec02edce69f6a2d")
	params := append([]Param(nil), v2BenchParams...)
	dst := make([]byte, 0, 64)
	sign, _ := k.AppendSign(nil, V2SignMD5, params)
	signed := append(append([]Param(nil), v2BenchParams...), Param{"sign", string(sign)})
	aead, err := NewAEADKey([]byte("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"))
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := aead.Seal("fdasflkja484", "transaction", []byte(`{"trade_state":"SUCCESS"}`))
	plain := make([]byte, 0, 64)
	cases := map[string]func(){
		"aead_open": func() {
			if plain, err = aead.Open(plain[:0], "fdasflkja484", "transaction", ct); err != nil {
				t.Fatal(err)
			}
		},
		"md5":     func() { dst, _ = k.AppendSign(dst[:0], V2SignMD5, params) },
		"hmac":    func() { dst, _ = k.AppendSign(dst[:0], V2SignHMACSHA256, params) },
		"stringA": func() { dst = AppendStringA(dst[:0], params) },
		"verify": func() {
			if err := k.Verify("", signed); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, f := range cases {
		f() // warm the pools
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s allocates %.1f times per call, want 0", name, n)
		}
	}
}

// TestRSAAddsNoAllocations pins that RSASigner and RSAVerifier allocate no more than the
// crypto/rsa calls they wrap (the floor of BenchmarkStdlibRSASignFloor and -VerifyFloor).
func TestRSAAddsNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sv := loadV3Vectors(t).RequestSignature
	key := officialKey(t)
	s := NewRSASigner(key)
	signMsg := AppendRequestMessage(nil, sv.Method, sv.URL, sv.Timestamp, sv.Nonce, []byte(sv.Body))
	dst := make([]byte, 0, 512)
	vv := loadV3Vectors(t).ResponseVerification
	pub := examplePublicKey(t)
	verifier := NewRSAVerifier(pub)
	verifyMsg := AppendResponseMessage(nil, vv.Timestamp, vv.Nonce, []byte(vv.Body))
	sig, err := base64.StdEncoding.DecodeString(vv.Signature)
	if err != nil {
		t.Fatal(err)
	}
	sigB64 := []byte(vv.Signature)
	verifyFloor := func() {
		digest := sha256.Sum256(verifyMsg)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name           string
		wrapper, floor func()
	}{
		{"sign", func() {
			if dst, err = s.AppendSign(dst[:0], signMsg); err != nil {
				t.Fatal(err)
			}
		}, func() {
			digest := sha256.Sum256(signMsg)
			if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
				t.Fatal(err)
			}
		}},
		{"verify", func() {
			if err := verifier.Verify(verifyMsg, vv.Signature); err != nil {
				t.Fatal(err)
			}
		}, verifyFloor},
		{"verify bytes", func() {
			if err := verifier.VerifyBytes(verifyMsg, sigB64); err != nil {
				t.Fatal(err)
			}
		}, verifyFloor},
	} {
		c.wrapper()
		c.floor()
		got, floor := testing.AllocsPerRun(20, c.wrapper), testing.AllocsPerRun(20, c.floor)
		if got > floor {
			t.Errorf("RSA %s allocates %.1f times per call, crypto/rsa alone %.1f", c.name, got, floor)
		}
	}
}

// BenchmarkPushSignature is the safe-mode msg_signature of the spec vector (SHA-1 over token,
// timestamp, nonce and Encrypt, sorted), verified as the callback front door does.
func BenchmarkPushSignature(b *testing.B) {
	d := loadMsgpushVectors(b).SafeModeDecrypt
	sig := []byte(d.ExpectedMsgSignature)
	b.ReportAllocs()
	b.SetBytes(int64(len(d.Token) + len(d.Timestamp) + len(d.Nonce) + len(d.Encrypt)))
	for b.Loop() {
		if !VerifyPushSignature(sig, d.Token, d.Timestamp, d.Nonce, d.Encrypt) {
			b.Fatal("msg_signature does not verify")
		}
	}
}

// BenchmarkRefundInfoDecrypt opens a real APIv2 refund notification's req_info (AES-256-ECB).
func BenchmarkRefundInfoDecrypt(b *testing.B) {
	k := NewV2Key("ziR0QKsTUfMOuochC9RfCdmfHECorQAP")
	b.ReportAllocs()
	b.SetBytes(int64(len(refundReqInfo)))
	for b.Loop() {
		if _, err := k.DecryptRefundInfo(refundReqInfo); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAuthorization builds the APIv3 request message and the Authorization header
// around a signature (the signing itself is BenchmarkRSASign).
func BenchmarkAppendAuthorization(b *testing.B) {
	v := loadV3Vectors(b).RequestSignature
	body := []byte(v.Body)
	msg := make([]byte, 0, 512)
	hdr := make([]byte, 0, 512)
	sig := strings.Repeat("A", 344)
	b.ReportAllocs()
	for b.Loop() {
		msg = AppendRequestMessage(msg[:0], v.Method, v.URL, v.Timestamp, v.Nonce, body)
		hdr = AppendAuthorization(hdr[:0], "1900009191", v.Nonce, sig, v.Timestamp, "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C")
	}
}

// BenchmarkParseAuthorization parses an APIv3 Authorization header, as the emulator does for
// every request.
func BenchmarkParseAuthorization(b *testing.B) {
	v := loadV3Vectors(b).RequestSignature
	hdr := string(AppendAuthorization(nil, "1900009191", v.Nonce, strings.Repeat("A", 344), v.Timestamp, "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(hdr); err != nil {
			b.Fatal(err)
		}
	}
}
