package proxy

import (
	"crypto/rsa"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/wxgate/wxgate/signer"
)

func testMerchant(t *testing.T) (*merchantState, *rsa.PrivateKey) {
	t.Helper()
	pemBytes, err := os.ReadFile("testdata/merchant_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := signer.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return &merchantState{name: "test", signer: signer.NewRSASigner(key)}, key
}

// TestSignWorkersSignConcurrentlyAndStop: signatures from many goroutines come back valid,
// each to its own caller, on the workers and inline alike, and after stop a signature fails at
// once instead of hanging.
func TestSignWorkersSignConcurrentlyAndStop(t *testing.T) {
	m, key := testMerchant(t)
	for _, inline := range []bool{false, true} {
		w := newSignWorkers(2, nil, inline)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := []byte{'m', byte('0' + i)}
				sig, err := w.sign(m, nil, msg)
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
		if signed, _ := w.signingCPU(); signed != 8 {
			t.Errorf("inline %v: %d signatures counted, want 8", inline, signed)
		}
		w.stop()
		w.stop() // twice is harmless
		if _, err := w.sign(m, nil, []byte("late")); !errors.Is(err, errSigningStopped) {
			t.Fatalf("inline %v: sign after stop: %v, want errSigningStopped", inline, err)
		}
	}
}
