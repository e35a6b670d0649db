package emulator

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"

	"github.com/wxgate/wxgate/signer"
)

// A merchant's API certificates: WeChat Pay accepts a request signed with the key of any
// certificate the merchant registered and has not revoked, named by its serial in the
// Authorization header. Replacing the certificate in the merchant platform adds one; the old one
// stays accepted until the merchant revokes it, so that servers can switch without refusals.

// apiCerts maps each accepted serial to its key; replaced whole, never changed.
type apiCerts map[string]*signer.RSAVerifier

// apiCertVerifier returns the key of the merchant's accepted certificate serial, or nil.
func (m *merchantState) apiCertVerifier(serial string) *signer.RSAVerifier {
	return (*m.certs.Load())[serial]
}

// verifyAnyAPICert verifies sig over msg with any accepted certificate (a paySign names none).
func (m *merchantState) verifyAnyAPICert(msg []byte, sig string) error {
	err := errors.New("no certificate")
	for _, v := range *m.certs.Load() {
		if err = v.Verify(msg, sig); err == nil {
			return nil
		}
	}
	return err
}

// AddMerchantCertificate registers certPEM (the merchant's new API certificate, PEM) for the
// merchant mchid, as a merchant does in the merchant platform when it replaces its certificate:
// requests signed with its key under its serial are accepted from now on, and the certificates
// registered before stay accepted until RevokeMerchantCertificate. It returns the serial.
func (e *Emulator) AddMerchantCertificate(mchID string, certPEM []byte) (string, error) {
	m := e.merchant(mchID)
	if m == nil {
		return "", fmt.Errorf("no merchant with mchid %q", mchID)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < payKeyBits {
		return "", fmt.Errorf("the certificate's key must be RSA of at least %d bits", payKeyBits)
	}
	serial := signer.CertificateSerial(cert)
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	next := maps.Clone(*m.certs.Load())
	next[serial] = signer.NewRSAVerifier(pub)
	m.certs.Store(&next)
	return serial, nil
}

// RevokeMerchantCertificate stops accepting the merchant's API certificate serial. The last
// certificate cannot be revoked: a merchant always has one.
func (e *Emulator) RevokeMerchantCertificate(mchID, serial string) error {
	m := e.merchant(mchID)
	if m == nil {
		return fmt.Errorf("no merchant with mchid %q", mchID)
	}
	e.mch.mu.Lock()
	defer e.mch.mu.Unlock()
	cur := *m.certs.Load()
	if _, ok := cur[serial]; !ok {
		return fmt.Errorf("merchant %s has no certificate with serial %q", mchID, serial)
	}
	if len(cur) == 1 {
		return fmt.Errorf("serial %q is the merchant's only certificate", serial)
	}
	next := maps.Clone(cur)
	delete(next, serial)
	m.certs.Store(&next)
	return nil
}
