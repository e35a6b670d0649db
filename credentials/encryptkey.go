package credentials

import (
	"crypto/rsa"
	"errors"
	"fmt"
)

// ErrNoEncryptionKey is returned when no WeChat Pay key is at hand to encrypt sensitive fields:
// no public key is configured and no unexpired platform certificate could be downloaded.
var ErrNoEncryptionKey = errors.New("no WeChat Pay key to encrypt sensitive fields with")

// EncryptionKey returns WeChat Pay's current key for sensitive fields the merchant sends
// (docs/protocol/wechatpay.md §5) and the serial that names it in Wechatpay-Serial: the WeChat
// Pay public key when one is configured (WeChat's recommendation), else the newest platform
// certificate (the one valid longest, §4.2). With no certificate known yet it downloads the list
// once (joining a download in flight).
func (k *PayKeys) EncryptionKey() (serial string, pub *rsa.PublicKey, err error) {
	if k.pubKey != nil {
		return k.opts.PublicKeyID, k.pubKey.PublicKey(), nil
	}
	if k.opts.Fetch == nil {
		return "", nil, ErrNoEncryptionKey
	}
	for attempt := 0; ; attempt++ {
		if serial, pub := k.newestCert(); pub != nil {
			return serial, pub, nil
		}
		if attempt > 0 {
			return "", nil, fmt.Errorf("%w: WeChat Pay listed no unexpired platform certificate", ErrNoEncryptionKey)
		}
		if err := k.Refresh(); err != nil {
			return "", nil, fmt.Errorf("%w: downloading the platform certificates failed: %v", ErrNoEncryptionKey, err)
		}
	}
}

// newestCert returns the unexpired platform certificate that expires last (ties: the greater
// serial, so the choice is stable), starting a background refresh when the list is old.
func (k *PayKeys) newestCert() (string, *rsa.PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.opts.Clock()
	var best string
	var bestEntry certEntry
	for s, e := range k.certs {
		if !now.Before(e.notAfter) {
			continue
		}
		if best == "" || e.notAfter.After(bestEntry.notAfter) || (e.notAfter.Equal(bestEntry.notAfter) && s > best) {
			best, bestEntry = s, e
		}
	}
	if best == "" {
		return "", nil
	}
	if now.Sub(k.fetched) > k.opts.RefreshEvery && k.flight == nil {
		k.startLocked() // a newer certificate may have been issued; this call uses the known one
	}
	return best, bestEntry.verifier.PublicKey()
}
