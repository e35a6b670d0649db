package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// tlsLifetime is how long the emulator CA and server certificate are valid. TLS clients check
// them against the real time, so they are dated with time.Now, not the emulator clock.
const tlsLifetime = 10 * 365 * 24 * time.Hour

// tlsMaterial is the emulator's certificate authority and the server certificate it issued,
// created once on first use (ECDSA P-256: quick to generate, unlike RSA).
type tlsMaterial struct {
	once   sync.Once
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	server tls.Certificate
}

// get creates the CA and server certificate on first use.
func (m *tlsMaterial) get() *tlsMaterial {
	m.once.Do(func() {
		if err := m.create(); err != nil {
			// Only a broken crypto/rand or a programming error gets here.
			panic(fmt.Errorf("emulator: create TLS certificates: %w", err))
		}
	})
	return m
}

// create makes the CA and the server certificate for 127.0.0.1, ::1 and localhost.
func (m *tlsMaterial) create() error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "wxgate emulator CA", Organization: []string{"wxgate emulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(tlsLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("parse CA certificate: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"wxgate emulator"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(tlsLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	m.caCert, m.caKey = caCert, caKey
	m.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	m.server = tls.Certificate{Certificate: [][]byte{srvDER, caDER}, PrivateKey: srvKey}
	return nil
}

// randomSerial returns a positive 160-bit certificate serial whose upper-case hex form always
// has 40 digits, like WeChat Pay's.
func randomSerial() *big.Int {
	b := make([]byte, 20)
	rand.Read(b) // never fails (crypto/rand contract since Go 1.24)
	b[0] = 0x10 + b[0]%0x70
	return new(big.Int).SetBytes(b)
}

// TLSConfig returns a server TLS configuration for the emulator: a certificate for 127.0.0.1,
// ::1 and localhost signed by the emulator CA (CACertPEM), and ClientAuth RequestClientCert, so
// that /secapi/ can compare the merchant client certificate. Each call returns a new value.
func (e *Emulator) TLSConfig() *tls.Config {
	m := e.mch.tls.get()
	return &tls.Config{
		Certificates: []tls.Certificate{m.server},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// CACertPEM returns the PEM certificate of the emulator CA, which clients must trust to reach
// ServeTLS.
func (e *Emulator) CACertPEM() []byte {
	return append([]byte(nil), e.mch.tls.get().caPEM...)
}

// ServeTLS serves the emulator over TLS (TLSConfig) on ln until Shutdown is called, then returns
// nil. It shares the handler, state and server of Serve.
func (e *Emulator) ServeTLS(ln net.Listener) error {
	return e.Serve(tls.NewListener(ln, e.TLSConfig()))
}
