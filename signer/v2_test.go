package signer

import (
	"crypto/aes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

type v2Vectors struct {
	Sign struct {
		Key                string            `json:"key"`
		Params             map[string]string `json:"params"`
		ExpectedStringA    string            `json:"expected_string_a"`
		ExpectedMD5        string            `json:"expected_md5"`
		ExpectedHMACSHA256 string            `json:"expected_hmac_sha256"`
	} `json:"sign"`
	PaySignMD5 struct {
		Key             string            `json:"key"`
		Params          map[string]string `json:"params"`
		ExpectedPaySign string            `json:"expected_paySign"`
	} `json:"miniprogram_pay_sign_md5"`
	AESECB struct {
		Key                      string `json:"key"`
		Plaintext                string `json:"plaintext"`
		ExpectedCiphertextBase64 string `json:"expected_ciphertext_base64"`
	} `json:"aes_256_ecb_pkcs7"`
}

func loadV2Vectors(t testing.TB) v2Vectors {
	t.Helper()
	var v v2Vectors
	readVectors(t, "wechatpay_v2.json", &v)
	if len(v.Sign.Params) == 0 || len(v.PaySignMD5.Params) == 0 || v.AESECB.ExpectedCiphertextBase64 == "" {
		t.Fatal("wechatpay_v2.json lacks a vector")
	}
	return v
}

// shuffled returns m as params in a random order (the JSON object has none).
func shuffled(m map[string]string) []Param {
	ps := make([]Param, 0, len(m))
	for k, v := range m {
		ps = append(ps, Param{k, v})
	}
	rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	return ps
}

func TestV2SignVector(t *testing.T) {
	v := loadV2Vectors(t).Sign
	k := NewV2Key(v.Key)
	// Extra parameters that must not change anything: empty values and a stale sign.
	params := append(shuffled(v.Params), Param{"sign", "STALE"}, Param{"attach", ""})
	if got := string(AppendStringA(nil, params)); got != v.ExpectedStringA {
		t.Fatalf("stringA = %q, want %q", got, v.ExpectedStringA)
	}
	if !slices.IsSortedFunc(params, func(a, b Param) int { return strings.Compare(a.Key, b.Key) }) {
		t.Error("AppendStringA did not sort params in place")
	}
	for _, c := range []struct{ signType, want string }{
		{"", v.ExpectedMD5},
		{V2SignMD5, v.ExpectedMD5},
		{V2SignHMACSHA256, v.ExpectedHMACSHA256},
	} {
		got, err := k.AppendSign([]byte("x"), c.signType, shuffled(v.Params))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "x"+c.want {
			t.Errorf("sign %q = %s, want %s", c.signType, got[1:], c.want)
		}
	}
}

func TestV2PaySignVector(t *testing.T) {
	v := loadV2Vectors(t).PaySignMD5
	got, err := NewV2Key(v.Key).AppendSign(nil, v.Params["signType"], shuffled(v.Params))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != v.ExpectedPaySign {
		t.Fatalf("paySign = %s, want %s", got, v.ExpectedPaySign)
	}
}

// TestV2PaySignEasyWeChat pins EasyWeChat's values of docs/protocol/wechatpay.md §9.3 (both sign
// types over the client params).
func TestV2PaySignEasyWeChat(t *testing.T) {
	k := NewV2Key("mock-v2-secret-key")
	for signType, want := range map[string]string{
		V2SignMD5:        "C52D6B09E8A039D6E8696A014BB37160",
		V2SignHMACSHA256: "BAC9240577E86EDC7753264E502196C61F78F24777E9E7CCE82A7BD97F906EED",
	} {
		params := []Param{{"timeStamp", "1601234567"}, {"nonceStr", "mock-nonce"}, {"package", "prepay_id=mock-prepay-id"},
			{"signType", signType}, {"appId", "mock-appid"}}
		got, err := k.AppendSign(nil, signType, params)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s paySign = %s, want %s", signType, got, want)
		}
	}
}

func TestV2StringA(t *testing.T) {
	// docs/protocol/wechatpay.md §9.3: queryStringLike({appid:3,mchid:2,openid:'',sign:0}) =
	// appid=3&mchid=2.
	cases := []struct {
		params []Param
		want   string
	}{
		{[]Param{{"mchid", "2"}, {"sign", "0"}, {"openid", ""}, {"appid", "3"}}, "appid=3&mchid=2"},
		{nil, ""},
		{[]Param{{"sign", "x"}}, ""},
		{[]Param{{"b", "x"}, {"a", ""}}, "b=x"},
		// Byte order: upper case before lower case; sign_type is signed, Sign is not "sign".
		{[]Param{{"appid", "1"}, {"Sign", "S"}, {"sign_type", "MD5"}, {"appId", "2"}}, "Sign=S&appId=2&appid=1&sign_type=MD5"},
		// Raw values, never URL-encoded.
		{[]Param{{"notify_url", "https://x.cn/n?a=1&b=2"}, {"body", "腾讯 充值"}}, "body=腾讯 充值&notify_url=https://x.cn/n?a=1&b=2"},
	}
	for _, c := range cases {
		if got := string(AppendStringA(nil, c.params)); got != c.want {
			t.Errorf("stringA = %q, want %q", got, c.want)
		}
	}
}

func TestV2SignErrors(t *testing.T) {
	k := NewV2Key("192006250b4c09247ec02edce69f6a2d")
	for _, st := range []string{"md5", "SHA256", "HMAC_SHA256", "RSA", " MD5"} {
		if got, err := k.AppendSign([]byte("keep"), st, []Param{{"a", "1"}}); err == nil || string(got) != "keep" {
			t.Errorf("AppendSign(%q) = %q, %v; want an error and dst unchanged", st, got, err)
		}
	}
	var zero V2Key
	if _, err := zero.AppendSign(nil, "", nil); err == nil {
		t.Error("zero V2Key signed")
	}
	if err := zero.Verify("", []Param{{"sign", "x"}}); err == nil {
		t.Error("zero V2Key verified")
	}
	if _, err := zero.DecryptRefundInfo("AAAAAAAAAAAAAAAAAAAAAA=="); err == nil {
		t.Error("zero V2Key decrypted")
	}
}

func TestV2Verify(t *testing.T) {
	v := loadV2Vectors(t).Sign
	k := NewV2Key(v.Key)
	with := func(extra ...Param) []Param { return append(shuffled(v.Params), extra...) }
	ok := []struct {
		name     string
		signType string
		params   []Param
	}{
		{"MD5 by default", "", with(Param{"sign", v.ExpectedMD5})},
		{"MD5 by argument", V2SignMD5, with(Param{"sign", v.ExpectedMD5})},
		{"HMAC by argument", V2SignHMACSHA256, with(Param{"sign", v.ExpectedHMACSHA256})},
		{"empty params ignored", "", with(Param{"sign", v.ExpectedMD5}, Param{"attach", ""})},
	}
	for _, c := range ok {
		if err := k.Verify(c.signType, c.params); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	// sign_type is itself signed, so a message that carries it needs its own sign.
	hmacParams := with(Param{"sign_type", V2SignHMACSHA256})
	hmacSign, _ := k.AppendSign(nil, V2SignHMACSHA256, slices.Clone(hmacParams))
	md5Params := with(Param{"sign_type", V2SignMD5})
	md5Sign, _ := k.AppendSign(nil, V2SignMD5, slices.Clone(md5Params))
	if err := k.Verify("", append(slices.Clone(hmacParams), Param{"sign", string(hmacSign)})); err != nil {
		t.Errorf("sign_type HMAC-SHA256 from the params: %v", err)
	}
	if err := k.Verify("", append(slices.Clone(md5Params), Param{"sign", string(md5Sign)})); err != nil {
		t.Errorf("sign_type MD5 from the params: %v", err)
	}

	invalid := []struct {
		name     string
		signType string
		params   []Param
	}{
		{"tampered value", "", append(shuffled(map[string]string{"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test!", "nonce_str": "ibuaiVcKdpRxkhJA"}), Param{"sign", v.ExpectedMD5})},
		{"added param", "", with(Param{"sign", v.ExpectedMD5}, Param{"total_fee", "1"})},
		{"wrong key", "", with(Param{"sign", v.ExpectedMD5})}, // checked with another key below
		{"lower-case sign", "", with(Param{"sign", strings.ToLower(v.ExpectedMD5)})},
		{"MD5 sign, HMAC argument", V2SignHMACSHA256, with(Param{"sign", v.ExpectedMD5})},
		{"HMAC sign, default MD5", "", with(Param{"sign", v.ExpectedHMACSHA256})},
		{"argument beats sign_type", V2SignMD5, append(slices.Clone(hmacParams), Param{"sign", string(hmacSign)})},
		{"truncated sign", "", with(Param{"sign", v.ExpectedMD5[:31]})},
		{"overlong sign", "", with(Param{"sign", v.ExpectedHMACSHA256 + "00"})},
	}
	for _, c := range invalid {
		key := k
		if c.name == "wrong key" {
			key = NewV2Key(v.Key + "x")
		}
		if err := key.Verify(c.signType, c.params); !errors.Is(err, ErrSignatureInvalid) {
			t.Errorf("%s: Verify = %v, want ErrSignatureInvalid", c.name, err)
		}
	}

	other := []struct {
		name     string
		signType string
		params   []Param
	}{
		{"no sign", "", with()},
		{"empty sign", "", with(Param{"sign", ""})},
		{"unknown sign_type param", "", with(Param{"sign_type", "SHA1"}, Param{"sign", v.ExpectedMD5})},
		{"unknown argument", "md5", with(Param{"sign", v.ExpectedMD5})},
		{"repeated sign", "", with(Param{"sign", v.ExpectedMD5}, Param{"sign", "X"})},
		{"repeated param", "", with(Param{"sign", v.ExpectedMD5}, Param{"appid", "wxd930ea5d5a258f4f"})},
	}
	for _, c := range other {
		if err := k.Verify(c.signType, c.params); err == nil {
			t.Errorf("%s: verified", c.name)
		}
	}

	// Verify leaves the caller's params in their order.
	params := []Param{{"sign", v.ExpectedMD5}, {"nonce_str", "ibuaiVcKdpRxkhJA"}, {"mch_id", "10000100"}, {"device_info", "1000"}, {"body", "test"}, {"appid", "wxd930ea5d5a258f4f"}}
	before := slices.Clone(params)
	if err := k.Verify("", params); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(params, before) {
		t.Errorf("Verify reordered params: %v", params)
	}
}

// TestAESECBVector checks the ECB helpers against the official PHP SDK vector, whose key is used
// as it is (no MD5 derivation).
func TestAESECBVector(t *testing.T) {
	v := loadV2Vectors(t).AESECB
	block, err := aes.NewCipher([]byte(v.Key))
	if err != nil {
		t.Fatal(err)
	}
	ct := ecbEncrypt(block, []byte(v.Plaintext))
	if got := base64.StdEncoding.EncodeToString(ct); got != v.ExpectedCiphertextBase64 {
		t.Fatalf("ECB encrypt = %s, want %s", got, v.ExpectedCiphertextBase64)
	}
	pt, err := ecbDecrypt(block, ct)
	if err != nil || string(pt) != v.Plaintext {
		t.Fatalf("ECB decrypt = %q, %v", pt, err)
	}
}

// refundReqInfo is docs/protocol/wechatpay.md §9.3: a real refund notification's req_info
// (go-pay/gopay test data) under APIv2 key ziR0QKsTUfMOuochC9RfCdmfHECorQAP.
const refundReqInfo = "YYwp8C48th0wnQzTqeI+41pflB26v+smFj9z6h9RPBgxTyZyxc+4YNEz7QEgZNWj/6rIb2MfyWMZmCc41CfjKSssoSZPXxOhUayb6KvNSZ1p6frOX1PDWzhyruXK7ouNND+gDsG4yZ0XXzsL4/pYNwLLba/71QrnkJ/BHcByk4EXnglju5DLup9pJQSnTxjomI9Rxu57m9jg5lLQFxMWXyeASZJNvof0ulnHlWJswS4OxKOkmW7VEyKyLGV6npoOm03Qsx2wkRxLsSa9gPpg4hdaReeUqh1FMbm7aWjyrVYT/MEZWg98p4GomEIYvz34XfDncTezX4bf/ZiSLXt79aE1/YTZrYfymXeCrGjlbe0rg/T2ezJHAC870u2vsVbY1/KcE2A443N+DEnAziXlBQ1AeWq3Rqk/O6/TMM0lomzgctAOiAMg+bh5+Gu1ubA9O3E+vehULydD5qx2o6i3+qA9ORbH415NyRrQdeFq5vmCiRikp5xYptWiGZA0tkoaLKMPQ4ndE5gWHqiBbGPfULZWokI+QjjhhBmwgbd6J0VqpRorwOuzC/BHdkP72DCdNcm7IDUpggnzBIy0+seWIkcHEryKjge3YDHpJeQCqrAH0CgxXHDt1xtbQbST1VqFyuhPhUjDXMXrknrGPN/oE1t0rLRq+78cI+k8xe5E6seeUXQsEe8r3358mpcDYSmXWSXVZxK6er9EF98APqHwcndyEJD2YyCh/mMVhERuX+7kjlRXSiNUWa/Cv/XAKFQuvUYA5ea2eYWtPRHa4DpyuF1SNsaqVKfgqKXZrJHfAgslVpSVqUpX4zkKszHF4kwMZO3M7J1P94Mxa7Tm9mTOJePOoHPXeEB+m9rX6pSfoi3mJDQ5inJ+Vc4gOkg/Wd/lqiy6TTyP/dHDN6/v+AuJx5AXBo/2NDD3fWhHjkqEKIuARr2ClZt9ZRQO4HkXdZo7CN06sGCHk48Tg8PmxnxKcMZm7Aoquv5yMIM2gWSWIRJhwJ8cUpafIHc+GesDlbF6Zbt+/KXkafJAQq2RklEN+WvZ/zFz113EPgWPjp16TwBoziq96MMekvWKY/vdhjol8VFtGH9F61Oy1Xwf6DJtPw=="

func TestDecryptRefundInfoReal(t *testing.T) {
	const apiKey = "ziR0QKsTUfMOuochC9RfCdmfHECorQAP"
	if sum := md5.Sum([]byte(apiKey)); hex.EncodeToString(sum[:]) != "a1fdc4d1da9fb443b1091d34bcee9493" {
		t.Fatal("md5 of the key differs from the spec")
	}
	pt, err := NewV2Key(apiKey).DecryptRefundInfo(refundReqInfo)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(refundReqInfo); len(raw)-len(pt) != 12 {
		t.Errorf("padding = %d bytes, want 12", len(raw)-len(pt))
	}
	params, err := ParseXML(pt)
	if err != nil {
		t.Fatalf("ParseXML(req_info): %v\n%s", err, pt)
	}
	for key, want := range map[string]string{
		"out_refund_no":      "50fd012ed1b311e7af7800163e32c503",
		"refund_fee":         "6",
		"refund_id":          "50000404922017112502468056157",
		"refund_status":      "SUCCESS",
		"success_time":       "2017-11-25 15:36:17",
		"transaction_id":     "4200000015201711256947025404",
		"refund_recv_accout": "支付用户零钱",
	} {
		if got, _ := ParamValue(params, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if _, err := NewV2Key(apiKey + "x").DecryptRefundInfo(refundReqInfo); err == nil {
		t.Error("decrypted with another key") // (the padding check catches it, almost surely)
	}
}

func TestRefundInfoRoundTripAndErrors(t *testing.T) {
	k := NewV2Key("exposed_your_key_here_have_risks")
	// docs/protocol/wechatpay.md §9.3: the AES key is md5("exposed_your_key_here_have_risks") in
	// lower-case hex.
	block, _ := aes.NewCipher([]byte("4ad14ac334ab13540eb6c5479512a8e8"))
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 1000} {
		pt := []byte(strings.Repeat("r", n))
		ct := k.EncryptRefundInfo(pt)
		raw, _ := base64.StdEncoding.DecodeString(ct)
		if len(raw) != (n/16+1)*16 {
			t.Errorf("%d bytes encrypt to %d", n, len(raw))
		}
		if want := base64.StdEncoding.EncodeToString(ecbEncrypt(block, pt)); ct != want {
			t.Errorf("%d bytes: the key is not md5 hex of the API key", n)
		}
		got, err := k.DecryptRefundInfo(ct)
		if err != nil || string(got) != string(pt) {
			t.Errorf("round trip of %d bytes: %q, %v", n, got, err)
		}
	}
	// Ciphertexts whose plaintext has bad padding, made with the raw block cipher.
	rawECB := func(pt []byte) string {
		out := append([]byte(nil), pt...)
		for i := 0; i < len(out); i += 16 {
			block.Encrypt(out[i:i+16], out[i:i+16])
		}
		return base64.StdEncoding.EncodeToString(out)
	}
	block16 := func(tail ...byte) []byte { return append([]byte(strings.Repeat("x", 16-len(tail))), tail...) }
	bad := map[string]string{
		"empty":                "",
		"not base64":           "!!!!",
		"not a block":          base64.StdEncoding.EncodeToString(make([]byte, 15)),
		"block and a half":     base64.StdEncoding.EncodeToString(make([]byte, 24)),
		"pad 0":                rawECB(block16(0)),
		"pad 17":               rawECB(block16(17)),
		"pad 255":              rawECB(block16(255)),
		"pad 3, mismatched":    rawECB(block16(2, 3, 3)),
		"pad 16, one wrong":    rawECB(append([]byte{15}, []byte(strings.Repeat("\x10", 15))...)),
		"pad 32 over 2 blocks": rawECB([]byte(strings.Repeat("\x20", 32))),
	}
	for name, ct := range bad {
		if pt, err := k.DecryptRefundInfo(ct); err == nil {
			t.Errorf("%s: decrypted to %q", name, pt)
		}
	}
	if got, err := k.DecryptRefundInfo(rawECB([]byte(strings.Repeat("\x10", 16)))); err != nil || len(got) != 0 {
		t.Errorf("a whole pad block: %q, %v", got, err)
	}
}
