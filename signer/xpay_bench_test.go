package signer

import "testing"

var benchBody = []byte(`{"openid":"oUrsf0000000000000000000000","env":0,"user_ip":"127.0.0.1","amount":10,"order_id":"order-000000001","payitem":"[]","remark":""}`)

func BenchmarkPaySig(b *testing.B) {
	k := NewXpayKey("app-key-0123456789abcdef")
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		dst = k.AppendPaySig(dst[:0], "/xpay/currency_pay", benchBody)
	}
}

func BenchmarkClientPaySig(b *testing.B) {
	k := NewXpayKey("app-key-0123456789abcdef")
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		dst = k.AppendClientPaySig(dst[:0], benchBody)
	}
}

func BenchmarkUserSignature(b *testing.B) {
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		dst = AppendUserSignature(dst[:0], "9hAb/NEYUlkaMBEsmFgzig==", benchBody)
	}
}

func TestSignersDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items); CI also runs without -race")
	}
	k := NewXpayKey("app-key-0123456789abcdef")
	dst := make([]byte, 0, 64)
	keyBytes := []byte("9hAb/NEYUlkaMBEsmFgzig==")
	userSig := AppendUserSignature(nil, keyBytes, benchBody)
	cases := map[string]func(){
		"pay_sig":              func() { dst = k.AppendPaySig(dst[:0], "/xpay/currency_pay", benchBody) },
		"client_pay_sig":       func() { dst = k.AppendClientPaySig(dst[:0], benchBody) },
		"user_signature":       func() { dst = AppendUserSignature(dst[:0], "9hAb/NEYUlkaMBEsmFgzig==", benchBody) },
		"user_signature_bytes": func() { dst = AppendUserSignature(dst[:0], keyBytes, benchBody) },
		"verify_pay_sig":       func() { k.VerifyPaySig(dst, "/xpay/currency_pay", benchBody) },
		"verify_user_signature": func() {
			if !VerifyUserSignature(userSig, "9hAb/NEYUlkaMBEsmFgzig==", benchBody) {
				t.Fatal("own user signature refused")
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
