package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPublicKeyIDFor: the id is WeChat Pay's format, the same for the same key (so an injected
// key keeps its id across emulators, i.e. restarts) and different for another key.
func TestPublicKeyIDFor(t *testing.T) {
	k := keys(t)
	id, err := PublicKeyIDFor(&k.pay.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^PUB_KEY_ID_\d{34}$`).MatchString(id) {
		t.Fatalf("id %q is not PUB_KEY_ID_ and 34 digits", id)
	}
	other, _ := PublicKeyIDFor(&k.merchantP.PublicKey)
	if other == id {
		t.Fatalf("two keys share the id %s", id)
	}
	for range 2 {
		emu, err := New(Config{Apps: []App{{AppID: "wx00000000000000a1", Secret: "s"}}, PayKey: k.pay})
		if err != nil {
			t.Fatal(err)
		}
		if got := emu.PayPublicKeyID(); got != id {
			t.Fatalf("emulator with the injected key signs under %s, want %s", got, id)
		}
	}
}

// TestConfigCA: an emulator given a CA serves HTTPS with a certificate that CA issued, and its
// CACertPEM is that CA's; ParseCA reads back what CertPEM and KeyPEM wrote.
func TestConfigCA(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM(), keyPEM, time.Now())
	if err != nil {
		t.Fatalf("ParseCA of CertPEM and KeyPEM: %v", err)
	}
	emu, err := New(Config{Apps: []App{{AppID: "wx00000000000000a1", Secret: "s"}}, CA: back})
	if err != nil {
		t.Fatal(err)
	}
	if string(emu.CACertPEM()) != string(ca.CertPEM()) {
		t.Fatal("CACertPEM is not the configured CA")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go emu.ServeTLS(ln)
	defer emu.Shutdown()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to the emulator, trusting only the configured CA: %v", err)
	}
	conn.Close()
}

// TestParseCARefusesDamage: every way a kept CA can be wrong is refused with the reason.
func TestParseCARefusesDamage(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := ca.KeyPEM()
	other, _ := NewCA()
	otherKey, _ := other.KeyPEM()
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}, ca.Cert, &leafKey.PublicKey, ca.Key)
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	tests := []struct {
		name      string
		cert, key []byte
		now       time.Time
		want      string
	}{
		{"empty certificate", nil, keyPEM, time.Now(), "no PEM CERTIFICATE"},
		{"truncated certificate", ca.CertPEM()[:100], keyPEM, time.Now(), "certificate"},
		{"not a CA", leafPEM, keyPEM, time.Now(), "not a CA"},
		{"expired", ca.CertPEM(), keyPEM, time.Now().Add(11 * 365 * 24 * time.Hour), "valid from"},
		{"empty key", ca.CertPEM(), nil, time.Now(), "no PEM PRIVATE KEY"},
		{"garbled key", ca.CertPEM(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")}), time.Now(), "key:"},
		{"another CA's key", ca.CertPEM(), otherKey, time.Now(), "not the certificate's key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCA(tt.cert, tt.key, tt.now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseCA: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
