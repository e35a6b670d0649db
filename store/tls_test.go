package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/redistest"
)

// writeTLSFiles makes a CA and a server certificate for 127.0.0.1 signed by it, and returns
// the paths of the CA certificate, the server certificate and its key.
func writeTLSFiles(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wxgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("redis.pem", "CERTIFICATE", der), write("redis-key.pem", "PRIVATE KEY", keyDER)
}

// TestRedisTLS: rediss:// with the server's CA in redis_ca_file works; without it the unknown
// CA is refused (never a silent fall back to plain text or to no verification).
func TestRedisTLS(t *testing.T) {
	caFile, certFile, keyFile := writeTLSFiles(t)
	srv := redistest.StartTLS(t, certFile, keyFile)
	url := "rediss://" + srv.Addr()
	s := openRedisT(t, RedisOptions{URL: url, CAFile: caFile, Prefix: "t:"}, loadedOptions)
	if err := s.PutSession(bg, "wxa", "o1", "key-1"); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, "wxa", "o1", "key-1")
	if _, err := OpenRedis(RedisOptions{URL: url}, Options{Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("rediss:// without the CA: %v", err)
	}
	if _, err := OpenRedis(RedisOptions{URL: "redis://" + srv.Addr(), CAFile: caFile}, Options{}); err == nil || !strings.Contains(err.Error(), "not rediss://") {
		t.Fatalf("a CA file with redis://: %v", err)
	}
}
