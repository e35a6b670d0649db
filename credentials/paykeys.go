package credentials

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// PlatformCert is one WeChat Pay platform certificate, decrypted and parsed.
type PlatformCert struct {
	Serial    string
	NotAfter  time.Time
	PublicKey *rsa.PublicKey
}

// CertFetchFunc downloads the merchant's platform certificate list (GET /v3/certificates, signed,
// its answer verified) and returns the certificates in it.
type CertFetchFunc func() ([]PlatformCert, error)

// PayKeysOptions configures a merchant's verification keys.
type PayKeysOptions struct {
	PublicKeyID string         // the WeChat Pay public key id (PUB_KEY_ID_...), "" when unused
	PublicKey   *rsa.PublicKey // the WeChat Pay public key, nil when unused
	Fetch       CertFetchFunc  // nil: platform certificates are not used
	// RefreshEvery is how old the certificate list may grow before a background refresh; default 12h.
	RefreshEvery time.Duration
	// MinRefreshGap is the least time between two downloads; default 1s, so that forged serials
	// cannot make wxgate hammer WeChat.
	MinRefreshGap time.Duration
	Clock         func() time.Time
}

// ErrUnknownSerial is returned when no key is known for a Wechatpay-Serial, even after a refresh.
var ErrUnknownSerial = errors.New("no WeChat Pay key is known for this serial")

// PayKeys holds the keys that verify one merchant's WeChat Pay answers and notifications: the
// WeChat Pay public key and/or the platform certificates, chosen by Wechatpay-Serial. Unknown
// serials trigger one refresh of the certificate list (rate-limited); old certificates stay until
// they expire, so a rotation never fails a request. It is safe for concurrent use.
type PayKeys struct {
	opts     PayKeysOptions
	pubKey   *signer.RSAVerifier
	mu       sync.Mutex
	certs    map[string]certEntry
	missing  map[string]time.Time // serials absent from a download, and when
	fetched  time.Time            // last successful download
	tried    time.Time            // last download attempt
	flight   *certFlight
	lastErr  error
	fetchCnt int
}

type certEntry struct {
	verifier *signer.RSAVerifier
	notAfter time.Time
}

type certFlight struct {
	done  chan struct{}
	began time.Time // when the fetch itself began (after any rate-limit wait); set before done closes
	err   error
}

// NewPayKeys returns a merchant's key set. Certificates are downloaded on first use.
func NewPayKeys(opts PayKeysOptions) *PayKeys {
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = 12 * time.Hour
	}
	if opts.MinRefreshGap <= 0 {
		opts.MinRefreshGap = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	k := &PayKeys{opts: opts, certs: map[string]certEntry{}, missing: map[string]time.Time{}}
	if opts.PublicKey != nil {
		k.pubKey = signer.NewRSAVerifier(opts.PublicKey)
	}
	return k
}

// Verifier returns the verifier for a Wechatpay-Serial. An unknown serial makes the caller wait
// for a download of the certificate list that began after it asked (joining one in flight);
// downloads are spaced by MinRefreshGap, and a serial still unknown afterwards is refused at once
// for missingTTL, so forged serials cannot make wxgate hammer WeChat.
func (k *PayKeys) Verifier(serial string) (*signer.RSAVerifier, error) {
	if k.pubKey != nil && serial == k.opts.PublicKeyID {
		return k.pubKey, nil
	}
	if k.opts.Fetch == nil {
		return nil, fmt.Errorf("serial %q: %w (only the WeChat Pay public key %s is configured)", shortSerial(serial), ErrUnknownSerial, k.opts.PublicKeyID)
	}
	if !certSerialForm(serial) {
		// No platform certificate has it: refused without a download and without being
		// remembered, so that forged serials of any length cannot grow the negative cache.
		// Not echoed: it is not a serial, only bytes a caller chose.
		return nil, fmt.Errorf("a malformed serial (%d bytes): %w (a platform certificate serial is upper-case letters and digits, at most %d)", len(serial), ErrUnknownSerial, maxCertSerial)
	}
	asked := k.opts.Clock()
	for {
		k.mu.Lock()
		now := k.opts.Clock()
		if e, ok := k.certs[serial]; ok && now.Before(e.notAfter) {
			if now.Sub(k.fetched) > k.opts.RefreshEvery && k.flight == nil {
				k.startLocked() // refresh in the background; this answer uses the known certificate
			}
			k.mu.Unlock()
			return e.verifier, nil
		}
		if at, ok := k.missing[serial]; ok && now.Sub(at) < missingTTL {
			k.mu.Unlock()
			return nil, fmt.Errorf("serial %q: %w (not among the platform certificates downloaded %s ago)", serial, ErrUnknownSerial, now.Sub(at).Round(time.Second))
		}
		f := k.flight
		if f == nil {
			f = k.startLocked()
		}
		k.mu.Unlock()
		<-f.done
		if f.began.Before(asked) {
			continue // that download began before this serial was asked for: wait for a newer one
		}
		k.mu.Lock()
		if e, ok := k.certs[serial]; ok && k.opts.Clock().Before(e.notAfter) {
			k.mu.Unlock()
			return e.verifier, nil
		}
		if f.err == nil {
			k.missing[serial] = k.opts.Clock()
		}
		k.mu.Unlock()
		if f.err != nil {
			return nil, fmt.Errorf("serial %q: %w; refreshing platform certificates failed: %v", serial, ErrUnknownSerial, f.err)
		}
		return nil, fmt.Errorf("serial %q: %w", serial, ErrUnknownSerial)
	}
}

// maxCertSerial is the longest serial looked up among the platform certificates: an X.509 serial
// has at most 20 bytes (40 hex digits), as WeChat's have; the rest is margin.
const maxCertSerial = 64

// certSerialForm reports whether serial may name a platform certificate: 1 to maxCertSerial
// upper-case letters and digits (WeChat writes serials in upper-case hex).
func certSerialForm(serial string) bool {
	if serial == "" || len(serial) > maxCertSerial {
		return false
	}
	for i := 0; i < len(serial); i++ {
		if c := serial[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// shortSerial cuts an untrusted serial before an error echoes it.
func shortSerial(serial string) string {
	if len(serial) > maxCertSerial {
		return serial[:maxCertSerial] + "..."
	}
	return serial
}

// missingTTL is how long a serial absent from a fresh download is refused without downloading.
const missingTTL = 30 * time.Second

// Refresh downloads the certificate list now (joining a download in flight) and returns its error.
func (k *PayKeys) Refresh() error {
	if k.opts.Fetch == nil {
		return nil
	}
	k.mu.Lock()
	f := k.flight
	if f == nil {
		f = k.startLocked()
	}
	k.mu.Unlock()
	<-f.done
	return f.err
}

// startLocked starts a download; k.mu is held.
func (k *PayKeys) startLocked() *certFlight {
	f := &certFlight{done: make(chan struct{})}
	k.flight = f
	go k.download(f)
	return f
}

// download waits out MinRefreshGap since the previous download, then fetches.
func (k *PayKeys) download(f *certFlight) {
	k.mu.Lock()
	wait := k.opts.MinRefreshGap - k.opts.Clock().Sub(k.tried)
	k.mu.Unlock()
	if wait > 0 && !k.tried.IsZero() {
		time.Sleep(min(wait, k.opts.MinRefreshGap)) // rate limit towards WeChat, not synchronisation
	}
	k.mu.Lock()
	f.began = k.opts.Clock()
	k.tried = f.began
	k.mu.Unlock()
	certs, err := k.opts.Fetch()
	k.mu.Lock()
	k.fetchCnt++
	now := k.opts.Clock()
	if err == nil && len(certs) == 0 {
		err = errors.New("WeChat Pay returned no platform certificate (a merchant registered after 2024-10 has only the WeChat Pay public key: set public_key_id and public_key_file)")
	}
	if err == nil {
		for serial, e := range k.certs { // keep older certificates until they expire
			if !now.Before(e.notAfter) {
				delete(k.certs, serial)
			}
		}
		for serial, at := range k.missing { // forget refusals that ran out, so forged serials cannot pile up
			if now.Sub(at) >= missingTTL {
				delete(k.missing, serial)
			}
		}
		for _, c := range certs {
			k.certs[c.Serial] = certEntry{verifier: signer.NewRSAVerifier(c.PublicKey), notAfter: c.NotAfter}
			delete(k.missing, c.Serial)
		}
		k.fetched = now
	}
	k.lastErr = err
	f.err = err
	k.flight = nil
	k.mu.Unlock()
	close(f.done)
}

// PayKeysStatus is a snapshot for health checks and metrics; it holds no key.
type PayKeysStatus struct {
	Serials   []string // known platform certificate serials
	Fetches   int
	LastError string
}

// Status returns a snapshot of the key set.
func (k *PayKeys) Status() PayKeysStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := PayKeysStatus{Fetches: k.fetchCnt}
	for s := range k.certs {
		st.Serials = append(st.Serials, s)
	}
	sort.Strings(st.Serials)
	if k.lastErr != nil {
		st.LastError = k.lastErr.Error()
	}
	return st
}

// certificatesAnswer is the body of GET /v3/certificates.
type certificatesAnswer struct {
	Data []struct {
		SerialNo           string `json:"serial_no"`
		ExpireTime         string `json:"expire_time"`
		EncryptCertificate struct {
			Algorithm      string `json:"algorithm"`
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		} `json:"encrypt_certificate"`
	} `json:"data"`
}

// DecodeCertificates decrypts and parses a /v3/certificates answer with the APIv3 key. Each
// certificate's serial must match its serial_no; expired certificates are left out.
func DecodeCertificates(body []byte, key *signer.AEADKey, now time.Time) ([]PlatformCert, error) {
	var ans certificatesAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("certificates answer is not the documented JSON: %w", err)
	}
	var out []PlatformCert
	for i, d := range ans.Data {
		ec := d.EncryptCertificate
		if ec.Algorithm != "AEAD_AES_256_GCM" {
			return nil, fmt.Errorf("certificate %d: algorithm %q, want AEAD_AES_256_GCM", i, ec.Algorithm)
		}
		pemBytes, err := key.Open(nil, ec.Nonce, ec.AssociatedData, ec.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("certificate %d (%s): cannot decrypt with the APIv3 key (is apiv3_key right?): %w", i, d.SerialNo, err)
		}
		cert, serial, err := signer.ParseCertificate(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d (%s): %w", i, d.SerialNo, err)
		}
		if serial != d.SerialNo {
			return nil, fmt.Errorf("certificate %d: serial_no %s does not match the certificate's serial %s", i, d.SerialNo, serial)
		}
		if !now.Before(cert.NotAfter) {
			continue
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("certificate %d (%s): not an RSA key", i, serial)
		}
		out = append(out, PlatformCert{Serial: serial, NotAfter: cert.NotAfter, PublicKey: pub})
	}
	return out, nil
}
