package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/vectors"
)

// miniGameVector is testdata/minigame_vectors.json: the mini-game vector of the spec (xpay.md
// §2.4.2), which xpay.json does not carry.
type miniGameVector struct {
	AppKey     string `json:"app_key"`
	SessionKey string `json:"session_key"`
	URI        string `json:"uri"`
	PostBody   string `json:"post_body"`
	PaySig     string `json:"pay_sig"`
	Signature  string `json:"signature"`
}

func readMiniGameVector(t *testing.T) miniGameVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "minigame_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v miniGameVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMiniGameVector checks the /wxa/game/ pay_sig and user signature against the spec's
// mini-game vector, and that the vector is the one the spec folder quotes when it is present.
func TestMiniGameVector(t *testing.T) {
	v := readMiniGameVector(t)
	if got := NewXpayKey(v.AppKey).AppendPaySig(nil, v.URI, []byte(v.PostBody)); string(got) != v.PaySig {
		t.Errorf("pay_sig = %s, want %s", got, v.PaySig)
	}
	if got := AppendUserSignature(nil, v.SessionKey, []byte(v.PostBody)); string(got) != v.Signature {
		t.Errorf("signature = %s, want %s", got, v.Signature)
	}
	if !NewXpayKey(v.AppKey).VerifyPaySig([]byte(v.PaySig), v.URI, []byte(v.PostBody)) {
		t.Error("VerifyPaySig refuses the vector")
	}
	if d := vectors.SpecDir(); d != "" {
		spec, err := os.ReadFile(filepath.Join(d, "..", "xpay.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{v.PaySig, v.Signature, v.URI, v.PostBody, v.SessionKey} {
			if !strings.Contains(string(spec), s) {
				t.Errorf("shared/spec/xpay.md does not quote %q: the vendored mini-game vector drifted", s)
			}
		}
	}
}

// hmacHex is an independent HMAC-SHA256 hex, for checking the signer's message layout.
func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// TestMiniGameClientAndEventSigs pins the paySig of wx.requestMidasPaymentGameItem and the
// PayEventSig of pushed events to their documented layouts (no official vector exists for
// either): HMAC-SHA256(AppKey, "requestMidasPaymentGameItem&" + signData) and
// HMAC-SHA256(AppKey, event + "&" + payload).
func TestMiniGameClientAndEventSigs(t *testing.T) {
	k := NewXpayKey("12345")
	signData := `{"mode":"goods","offerId":"123","buyQuantity":1,"env":0,"currencyType":"CNY","platform":"android","zoneId":"1","productId":"testproductId","goodsPrice":10,"outTradeNo":"xxxxxx","attach":"testdata"}`
	want := hmacHex("12345", "requestMidasPaymentGameItem&"+signData)
	if got := k.AppendGameItemPaySig(nil, []byte(signData)); string(got) != want {
		t.Errorf("game item paySig = %s, want %s", got, want)
	}
	if !k.VerifyGameItemPaySig([]byte(want), []byte(signData)) || k.VerifyGameItemPaySig([]byte(want), []byte(signData+" ")) {
		t.Error("VerifyGameItemPaySig does not tell the signed signData from another")
	}
	if string(k.AppendClientPaySig(nil, []byte(signData))) == want {
		t.Error("the mini-program paySig equals the mini-game one: the uris must differ")
	}
	payload := `{"OpenId":"to_user_openid","OutTradeNo":"xxxxxxx","WeChatPayInfo":{"MchOrderNo":"xxxxxxx","TransactionId":"xxxxxxx"},"Env":0,"CoinInfo":{"ZoneId":"1","TotalPrice":100,"BuyQuantity":1,"OrigPrice":100}}`
	want = hmacHex("12345", "minigame_coin_deliver_completed&"+payload)
	if got := k.AppendPayEventSig(nil, "minigame_coin_deliver_completed", []byte(payload)); string(got) != want {
		t.Errorf("PayEventSig = %s, want %s", got, want)
	}
	if !k.VerifyPayEventSig([]byte(want), "minigame_coin_deliver_completed", []byte(payload)) ||
		k.VerifyPayEventSig([]byte(want), "minigame_pay_refund_succ_notify", []byte(payload)) {
		t.Error("VerifyPayEventSig does not bind the event name")
	}
}
