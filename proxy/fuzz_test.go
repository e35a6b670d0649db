package proxy

import (
	"testing"

	"github.com/wxgate/wxgate/signer"
)

// FuzzDecodeV3Notification: any body either fails cleanly or yields an event of the merchant.
func FuzzDecodeV3Notification(f *testing.F) {
	key, err := signer.NewAEADKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	ct, _ := key.Seal("0123456789ab", "transaction", []byte(`{"mchid":"1900000001","appid":"wx00000000000000a1"}`))
	seeds := []string{
		`{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"0123456789ab","associated_data":"transaction","ciphertext":"` + ct + `"}}`,
		`{}`, `{"id":1}`, `[]`, `{"resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"!"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	g := &generation{Gateway: &Gateway{}, apps: map[string]*appState{}}
	m := &merchantState{name: "pk", mchID: "1900000001", appID: "wx00000000000000a1", aead: key}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := g.decodeV3Notification(m, body)
		if err == nil && (ev.ID == "" || ev.Merchant != "pk" || len(ev.Data) == 0) {
			t.Fatalf("incomplete event %+v from %s", ev, body)
		}
	})
}
