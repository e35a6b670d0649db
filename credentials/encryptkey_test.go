package credentials

import (
	"errors"
	"testing"
	"time"
)

// TestEncryptionKey: the public key wins when configured; in certificate mode the newest
// certificate is used, downloaded on first use, a rotation switches to the new one, and an
// expired one is never used.
func TestEncryptionKey(t *testing.T) {
	a, b := testCerts(t) // a ends in 5 days, b in a year

	t.Run("public key", func(t *testing.T) {
		clk := newFakeClock()
		src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a, b), nil })
		pub := &testPayKey(t, 2).PublicKey
		k := newTestPayKeys(t, clk, src, PayKeysOptions{PublicKeyID: testPubKeyID, PublicKey: pub})
		serial, key, err := k.EncryptionKey()
		if err != nil || serial != testPubKeyID || !key.Equal(pub) {
			t.Fatalf("EncryptionKey = %q, %v; want the public key %s", serial, err, testPubKeyID)
		}
		if n := src.count(); n != 0 {
			t.Fatalf("the public key mode downloaded certificates %d times", n)
		}
	})

	t.Run("newest certificate", func(t *testing.T) {
		clk := newFakeClock()
		list := func() []PlatformCert { return listAt(clk, a) }
		src := newCertSource(func(int) ([]PlatformCert, error) { return list(), nil })
		k := newTestPayKeys(t, clk, src, PayKeysOptions{RefreshEvery: 24 * time.Hour})
		serial, key, err := k.EncryptionKey()
		if err != nil || serial != a.serial || !key.Equal(&a.key.PublicKey) {
			t.Fatalf("first use: %q, %v; want %s", serial, err, a.serial)
		}
		if n := src.count(); n != 1 {
			t.Fatalf("first use downloaded %d times, want 1", n)
		}
		// b is issued; after a day the list is refreshed in the background and b is the newest.
		list = func() []PlatformCert { return listAt(clk, a, b) }
		clk.Advance(25 * time.Hour)
		k.EncryptionKey() // starts the refresh
		waitFor(t, "the background refresh", func() bool { return src.count() == 2 && !k.downloading() })
		serial, key, err = k.EncryptionKey()
		if err != nil || serial != b.serial || !key.Equal(&b.key.PublicKey) {
			t.Fatalf("after rotation: %q, %v; want the newest %s", serial, err, b.serial)
		}
	})

	t.Run("expired certificate is not used", func(t *testing.T) {
		clk := newFakeClock()
		src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a), nil })
		k := newTestPayKeys(t, clk, src, PayKeysOptions{})
		if _, _, err := k.EncryptionKey(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(6 * 24 * time.Hour) // a has expired; WeChat lists nothing valid
		if serial, key, err := k.EncryptionKey(); !errors.Is(err, ErrNoEncryptionKey) || key != nil {
			t.Fatalf("with only an expired certificate: %q, %v; want ErrNoEncryptionKey", serial, err)
		}
	})

	t.Run("download fails", func(t *testing.T) {
		clk := newFakeClock()
		src := newCertSource(func(int) ([]PlatformCert, error) { return nil, errors.New("HTTP 500") })
		k := newTestPayKeys(t, clk, src, PayKeysOptions{})
		if _, _, err := k.EncryptionKey(); !errors.Is(err, ErrNoEncryptionKey) {
			t.Fatalf("download failure: %v", err)
		}
	})

	t.Run("nothing configured", func(t *testing.T) {
		k := NewPayKeys(PayKeysOptions{})
		if _, _, err := k.EncryptionKey(); !errors.Is(err, ErrNoEncryptionKey) {
			t.Fatalf("no keys: %v", err)
		}
	})
}
