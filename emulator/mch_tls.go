package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// tlsLifetime is how long the emulator CA and server certificate are valid. TLS clients check
// them against the real time, so they are dated with time.Now, not the emulator clock.
const tlsLifetime = 10 * 365 * 24 * time.Hour

// CA is the emulator's certificate authority: it issues the HTTPS server certificate of the
// emulated api.mch.weixin.qq.com and the platform certificates. Clients trust its certificate
// (CertPEM), so a CA kept across restarts (Config.CA) spares them a config edit each start.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer // its private key; NewCA makes an ECDSA P-256 key
}

// NewCA creates a CA valid for ten years (ECDSA P-256: quick to generate, unlike RSA).
func NewCA() (*CA, error) {
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "wxgate emulator CA", Organization: []string{"wxgate emulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(tlsLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ParseCA reads a CA written by CertPEM and KeyPEM. It refuses a certificate that is not a CA,
// has expired or is not yet valid at now, or whose key is not the one given.
func ParseCA(certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("certificate: not a CA certificate")
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("certificate: valid from %s to %s only", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("key: no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key: a %T cannot sign", k)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("key: not the certificate's key")
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM returns the CA certificate in PEM, what clients trust.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM returns the CA's private key, PKCS#8 in PEM.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("encode the CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// tlsMaterial is the emulator's certificate authority and the server certificate it issued,
// created once on first use. The CA is Config.CA when set.
type tlsMaterial struct {
	once   sync.Once
	ca     *CA // Config.CA, or nil until get makes one
	caCert *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte
	server tls.Certificate
}

// get creates the CA (unless one was given) and the server certificate on first use.
func (m *tlsMaterial) get() *tlsMaterial {
	m.once.Do(func() {
		if err := m.create(); err != nil {
			// Only a broken crypto/rand or a programming error gets here.
			panic(fmt.Errorf("emulator: create TLS certificates: %w", err))
		}
	})
	return m
}

// create makes the CA when none was given, and the server certificate for 127.0.0.1, ::1 and
// localhost.
func (m *tlsMaterial) create() error {
	if m.ca == nil {
		ca, err := NewCA()
		if err != nil {
			return err
		}
		m.ca = ca
	}
	now := time.Now()
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	notAfter := now.Add(tlsLifetime)
	if notAfter.After(m.ca.Cert.NotAfter) {
		notAfter = m.ca.Cert.NotAfter
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"wxgate emulator"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, m.ca.Cert, &srvKey.PublicKey, m.ca.Key)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	m.caCert, m.caKey = m.ca.Cert, m.ca.Key
	m.caPEM = m.ca.CertPEM()
	m.server = tls.Certificate{Certificate: [][]byte{srvDER, m.ca.Cert.Raw}, PrivateKey: srvKey}
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
