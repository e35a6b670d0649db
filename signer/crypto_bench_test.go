package signer

import (
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
// pre-sized dst, and AEAD Open into a dst with room.
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
