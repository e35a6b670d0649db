package signer

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestAEADVector(t *testing.T) {
	v := loadV3Vectors(t).AEAD
	k, err := NewAEADKey([]byte(v.Key))
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Open([]byte("dst:"), v.Nonce, v.AssociatedData, v.CiphertextBase64)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if string(got) != "dst:"+v.ExpectedPlaintext {
		t.Fatalf("Open = %q, want %q", got, "dst:"+v.ExpectedPlaintext)
	}
	got, err = k.OpenBytes([]byte("dst:"), []byte(v.Nonce), []byte(v.AssociatedData), []byte(v.CiphertextBase64))
	if err != nil || string(got) != "dst:"+v.ExpectedPlaintext {
		t.Fatalf("OpenBytes = %q, %v; want %q", got, err, "dst:"+v.ExpectedPlaintext)
	}
	sealed, err := k.Seal(v.Nonce, v.AssociatedData, []byte(v.ExpectedPlaintext))
	if err != nil {
		t.Fatal(err)
	}
	if sealed != v.CiphertextBase64 {
		t.Fatalf("Seal = %s, want %s", sealed, v.CiphertextBase64)
	}
	if len(v.MustFail) == 0 {
		t.Fatal("no must_fail cases")
	}
	for _, f := range v.MustFail {
		nonce, aad := v.Nonce, v.AssociatedData
		if s, ok := f["nonce"]; ok {
			nonce = s
		}
		if s, ok := f["associated_data"]; ok {
			aad = s
		}
		if pt, err := k.Open(nil, nonce, aad, v.CiphertextBase64); err == nil {
			t.Errorf("must_fail %v: opened to %q", f, pt)
		}
	}
}

func TestAEADFailures(t *testing.T) {
	v := loadV3Vectors(t).AEAD
	k, err := NewAEADKey([]byte(v.Key))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(v.CiphertextBase64)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	cases := []struct{ name, nonce, aad, ct string }{
		{"tampered ciphertext", v.Nonce, v.AssociatedData, flip(0)},
		{"tampered tag", v.Nonce, v.AssociatedData, flip(len(raw) - 1)},
		{"empty associated data", v.Nonce, "", v.CiphertextBase64},
		{"short nonce", v.Nonce[:11], v.AssociatedData, v.CiphertextBase64},
		{"long nonce", v.Nonce + "x", v.AssociatedData, v.CiphertextBase64},
		{"16-byte IV", "0123456789abcdef", v.AssociatedData, v.CiphertextBase64},
		{"empty nonce", "", v.AssociatedData, v.CiphertextBase64},
		{"bad base64", v.Nonce, v.AssociatedData, "!!!!" + v.CiphertextBase64[4:]},
		{"url-safe base64", v.Nonce, v.AssociatedData, strings.NewReplacer("+", "-", "/", "_").Replace(v.CiphertextBase64)},
		{"tag only, wrong", v.Nonce, v.AssociatedData, base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"shorter than the tag", v.Nonce, v.AssociatedData, base64.StdEncoding.EncodeToString(raw[:15])},
		{"empty ciphertext", v.Nonce, v.AssociatedData, ""},
		{"V5 (Go SDK, AES-128 key) ciphertext", "wCq51qZv4Yfg", "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"},
	}
	for _, c := range cases {
		dst := []byte("keep")
		got, err := k.Open(dst, c.nonce, c.aad, c.ct)
		if err == nil {
			t.Errorf("%s: opened to %q", c.name, got)
		} else if string(got) != "keep" {
			t.Errorf("%s: dst changed to %q on error", c.name, got)
		}
		if got, err := k.OpenBytes(nil, []byte(c.nonce), []byte(c.aad), []byte(c.ct)); err == nil {
			t.Errorf("%s: OpenBytes opened to %q", c.name, got)
		}
	}
	if _, err := k.Seal("short", "", []byte("x")); err == nil {
		t.Error("Seal accepted a 5-byte nonce")
	}
	var zero AEADKey
	if _, err := zero.Open(nil, v.Nonce, "", v.CiphertextBase64); err == nil {
		t.Error("zero AEADKey opened")
	}
	if _, err := zero.Seal(v.Nonce, "", nil); err == nil {
		t.Error("zero AEADKey sealed")
	}
}

func TestNewAEADKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewAEADKey(bytes.Repeat([]byte("k"), n)); err == nil {
			t.Errorf("accepted a %d-byte key", n)
		}
	}
	// The Go SDK's 16-byte test keys (docs/protocol/wechatpay.md §9.3) are AES-128: refused.
	if _, err := NewAEADKey([]byte("testAPIv3Key0000")); err == nil {
		t.Error("accepted the Go SDK's 16-byte key")
	}
}

func TestAEADRoundTrip(t *testing.T) {
	k, err := NewAEADKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ nonce, aad, pt string }{
		{"61f9c719728a", "certificate", "-----BEGIN CERTIFICATE-----\n" + strings.Repeat("MIID", 600) + "\n-----END CERTIFICATE-----\n"},
		{"fdasflkja484", "transaction", `{"mchid":"1230000109","trade_state":"SUCCESS"}`},
		{"000000000000", "", ""},
		{"中文123456", "refund", "x"}, // 12 bytes of UTF-8
	} {
		ct, err := k.Seal(c.nonce, c.aad, []byte(c.pt))
		if err != nil {
			t.Fatal(err)
		}
		pt, err := k.Open(nil, c.nonce, c.aad, ct)
		if err != nil {
			t.Fatalf("Open(Seal(%q)): %v", c.pt, err)
		}
		if string(pt) != c.pt {
			t.Fatalf("round trip gave %q, want %q", pt, c.pt)
		}
		if _, err := k.Open(nil, c.nonce, c.aad+"x", ct); err == nil {
			t.Fatal("opened with other associated data")
		}
	}
}
