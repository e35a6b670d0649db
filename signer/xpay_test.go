package signer

import (
	"encoding/json"
	"testing"

	"github.com/wxgate/wxgate/internal/vectors"
)

type xpayVectors struct {
	PaySig []struct {
		Name        string `json:"name"`
		AppKey      string `json:"app_key"`
		URI         string `json:"uri"`
		PostBody    string `json:"post_body"`
		ExpectedHex string `json:"expected_hex"`
	} `json:"pay_sig"`
	UserSignature []struct {
		Name        string `json:"name"`
		SessionKey  string `json:"session_key"`
		PostBody    string `json:"post_body"`
		ExpectedHex string `json:"expected_hex"`
	} `json:"user_signature"`
}

func loadXpayVectors(t *testing.T) xpayVectors {
	t.Helper()
	raw, err := vectors.Read("xpay.json")
	if err != nil {
		t.Fatal(err)
	}
	var v xpayVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("parse xpay.json: %v", err)
	}
	if len(v.PaySig) == 0 || len(v.UserSignature) == 0 {
		t.Fatal("xpay.json holds no vectors")
	}
	return v
}

func TestPaySigVectors(t *testing.T) {
	for _, v := range loadXpayVectors(t).PaySig {
		t.Run(v.Name, func(t *testing.T) {
			k := NewXpayKey(v.AppKey)
			got := string(k.AppendPaySig(nil, v.URI, []byte(v.PostBody)))
			if got != v.ExpectedHex {
				t.Fatalf("pay_sig = %s, want %s", got, v.ExpectedHex)
			}
			if !k.VerifyPaySig([]byte(v.ExpectedHex), v.URI, []byte(v.PostBody)) {
				t.Fatal("VerifyPaySig rejected the vector")
			}
			// One byte more in the body, a uri without its leading slash, or upper-case hex: rejected.
			if k.VerifyPaySig([]byte(v.ExpectedHex), v.URI, []byte(v.PostBody+" ")) {
				t.Error("VerifyPaySig accepted a changed body")
			}
			if k.VerifyPaySig([]byte(v.ExpectedHex), v.URI[1:], []byte(v.PostBody)) {
				t.Error("VerifyPaySig accepted a uri without its leading slash")
			}
			if NewXpayKey(v.AppKey+"x").VerifyPaySig([]byte(v.ExpectedHex), v.URI, []byte(v.PostBody)) {
				t.Error("VerifyPaySig accepted another AppKey")
			}
		})
	}
}

func TestUserSignatureVectors(t *testing.T) {
	for _, v := range loadXpayVectors(t).UserSignature {
		t.Run(v.Name, func(t *testing.T) {
			got := string(AppendUserSignature(nil, v.SessionKey, []byte(v.PostBody)))
			if got != v.ExpectedHex {
				t.Fatalf("signature = %s, want %s", got, v.ExpectedHex)
			}
			if !VerifyUserSignature([]byte(v.ExpectedHex), v.SessionKey, []byte(v.PostBody)) {
				t.Fatal("VerifyUserSignature rejected the vector")
			}
			if VerifyUserSignature([]byte(v.ExpectedHex), v.SessionKey, []byte(v.PostBody[1:])) {
				t.Error("VerifyUserSignature accepted a changed body")
			}
		})
	}
}

// TestClientSignatures pins the client-side values of docs/protocol/xpay.md §7.2 (derived with the
// attested algorithm; no official vector exists for requestVirtualPayment).
func TestClientSignatures(t *testing.T) {
	signData := []byte(`{"offerId":"123","buyQuantity":1,"env":0,"currencyType":"CNY","productId":"testproductId","goodsPrice":10,"outTradeNo":"xxxxxx","attach":"testdata"}`)
	k := NewXpayKey("12345")
	if got, want := string(k.AppendClientPaySig(nil, signData)), "0ce2a9fcab3532e9f78dd3beb841806c0c08a24ec26b04c366584ac06d852bb0"; got != want {
		t.Errorf("client paySig = %s, want %s", got, want)
	}
	if !k.VerifyClientPaySig([]byte("0ce2a9fcab3532e9f78dd3beb841806c0c08a24ec26b04c366584ac06d852bb0"), signData) {
		t.Error("VerifyClientPaySig rejected the value")
	}
	if got, want := string(AppendUserSignature(nil, "9hAb/NEYUlkaMBEsmFgzig==", signData)), "8e08bc05e10243e2e943385292e2063be327f8285c0db753a5c3e5db5745cb69"; got != want {
		t.Errorf("client signature = %s, want %s", got, want)
	}
	if got, want := string(AppendUserSignature(nil, "9hAb/NEYUlkaMBEsmFgzig==", nil)), "1f7605aea24c0785899e51bc4c483167a20ea7b0f5f36cfd398e89cb21c91e9c"; got != want {
		t.Errorf("checksession signature = %s, want %s", got, want)
	}
}

// TestHMACAgreesWithStdlib checks the pooled and one-shot HMACs against crypto/hmac for keys
// shorter than, equal to and longer than the SHA-256 block.
func TestHMACAgreesWithStdlib(t *testing.T) {
	msg := []byte("/xpay/currency_pay&{\"openid\":\"o1\",\"env\":0}")
	for _, n := range []int{0, 1, 24, 63, 64, 65, 200} {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte('a' + i%26)
		}
		want := stdHMACHex(key, msg)
		if got := string(AppendHMACHex(nil, string(key), msg)); got != want {
			t.Errorf("AppendHMACHex key len %d = %s, want %s", n, got, want)
		}
		if got := string(AppendHMACHex(nil, key, msg)); got != want {
			t.Errorf("AppendHMACHex []byte key len %d = %s, want %s", n, got, want)
		}
		if got := string(NewHMACKey(key).AppendHex(nil, "", "", msg)); got != want {
			t.Errorf("HMACKey.AppendHex key len %d = %s, want %s", n, got, want)
		}
	}
}
