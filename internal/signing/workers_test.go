package signing

import (
	"crypto/rsa"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/wxgate/wxgate/signer"
)

// testMerchant is a merchant's signing key (testdata/merchant_key.pem) and its RSA key.
func testMerchant(t *testing.T) (*signer.RSASigner, *rsa.PrivateKey) {
	t.Helper()
	pemBytes, err := os.ReadFile("testdata/merchant_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := signer.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return signer.NewRSASigner(key), key
}

// TestSignWorkersSignConcurrentlyAndStop: signatures from many goroutines come back valid,
// each to its own caller, on the workers and inline alike, and after stop a signature fails at
// once instead of hanging.
func TestSignWorkersSignConcurrentlyAndStop(t *testing.T) {
	m, key := testMerchant(t)
	for _, inline := range []bool{false, true} {
		w := NewWorkers(2, nil, inline)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := []byte{'m', byte('0' + i)}
				sig, err := w.Sign(m, nil, msg)
				if err != nil {
					t.Errorf("inline %v, sign %d: %v", inline, i, err)
					return
				}
				if err := signer.NewRSAVerifier(&key.PublicKey).Verify(msg, string(sig)); err != nil {
					t.Errorf("inline %v, sign %d: signature does not verify over its own message: %v", inline, i, err)
				}
			}()
		}
		wg.Wait()
		if signed, _ := w.Counted(); signed != 8 {
			t.Errorf("inline %v: %d signatures counted, want 8", inline, signed)
		}
		w.Stop()
		w.Stop() // twice is harmless
		if _, err := w.Sign(m, nil, []byte("late")); !errors.Is(err, ErrStopped) {
			t.Fatalf("inline %v: sign after stop: %v, want ErrStopped", inline, err)
		}
	}
}
