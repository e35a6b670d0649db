package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// platformCertLifetime is how long a platform certificate is valid (WeChat Pay's last about
// five years).
const platformCertLifetime = 5 * 365 * 24 * time.Hour

// payKeyBits is the size of every RSA key WeChat Pay signs with.
const payKeyBits = 2048

// payKeys are WeChat Pay's own signing keys: the public-key pair (new merchants) and the platform
// certificates (old merchants). RSA keys are generated on first use: that is slow, above all
// under the race detector, and most emulators never sign a WeChat Pay answer.
type payKeys struct {
	id       string          // the public key ID, "PUB_KEY_ID_" + 34 digits; fixed
	injected *rsa.PrivateKey // Config.PayKey, or nil

	once   sync.Once
	pub    *signer.RSASigner // the public-key pair
	pubPEM []byte            // its SPKI PEM

	mu         sync.Mutex
	platform   []*platformCert // every platform certificate issued, oldest first
	tamper     Tamper          // how the coming answers are forged
	tamperLeft int             // how many coming answers are forged
}

// platformCert is one WeChat Pay platform certificate with its key.
type platformCert struct {
	serial string // upper-case hex, as WeChat Pay writes it
	cert   *x509.Certificate
	pem    []byte
	signer *signer.RSASigner
}

// newPayKeys checks an injected key and chooses the public key ID: derived from an injected key,
// random for a generated one.
func newPayKeys(injected *rsa.PrivateKey) (*payKeys, error) {
	if injected != nil {
		if injected.N.BitLen() < payKeyBits {
			return nil, fmt.Errorf("pay key has %d bits, want at least %d", injected.N.BitLen(), payKeyBits)
		}
		id, err := PublicKeyIDFor(&injected.PublicKey)
		if err != nil {
			return nil, err
		}
		return &payKeys{id: id, injected: injected}, nil
	}
	digits := make([]byte, 34)
	for i := range digits {
		n, _ := rand.Int(rand.Reader, big.NewInt(10)) // never fails (crypto/rand contract)
		digits[i] = byte('0' + n.Int64())
	}
	return &payKeys{id: "PUB_KEY_ID_" + string(digits), injected: injected}, nil
}

// PublicKeyIDFor derives a WeChat Pay public key id from the key itself: "PUB_KEY_ID_" and 34
// digits, as WeChat Pay writes them (wechatpay.md §2.2), taken from the SHA-256 of the key's SPKI
// DER encoding. The same key always gets the same id, so a config naming it survives restarts.
func PublicKeyIDFor(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode the WeChat Pay public key: %w", err)
	}
	sum := sha256.Sum256(der)
	n := new(big.Int).SetBytes(sum[:])
	n.Mod(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(34), nil))
	return fmt.Sprintf("PUB_KEY_ID_%034s", n.String()), nil
}

// publicPair returns the public-key signer, creating the key on first use.
func (k *payKeys) publicPair() (*signer.RSASigner, []byte) {
	k.once.Do(func() {
		key := k.injected
		if key == nil {
			key = mustRSAKey()
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			panic(fmt.Errorf("emulator: encode the WeChat Pay public key: %w", err)) // an RSA key always encodes
		}
		k.pub = signer.NewRSASigner(key)
		k.pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	return k.pub, k.pubPEM
}

// mustRSAKey generates an RSA-2048 key; it cannot fail with crypto/rand.
func mustRSAKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, payKeyBits)
	if err != nil {
		panic(fmt.Errorf("emulator: generate an RSA key: %w", err))
	}
	return key
}

// issuePlatformCert makes a new platform certificate, effective at now, signed by the emulator
// CA. Callers hold k.mu.
func (e *Emulator) issuePlatformCert(now time.Time) *platformCert {
	k := e.mch.keys
	ca := e.mch.tls.get()
	key := mustRSAKey()
	start := now.Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:         "Tenpay.com sign",
			Organization:       []string{"Tenpay.com"},
			OrganizationalUnit: []string{"Tenpay.com CA Center"},
			Locality:           []string{"Shenzhen"},
			Province:           []string{"Guangdong"},
			Country:            []string{"CN"},
		},
		NotBefore:   start,
		NotAfter:    start.Add(platformCertLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.caCert, &key.PublicKey, ca.caKey)
	if err != nil {
		panic(fmt.Errorf("emulator: issue a platform certificate: %w", err)) // the template is fixed and valid
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Errorf("emulator: parse a platform certificate: %w", err))
	}
	pc := &platformCert{
		serial: signer.CertificateSerial(cert),
		cert:   cert,
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		signer: signer.NewRSASigner(key),
	}
	k.platform = append(k.platform, pc)
	return pc
}

// listedPlatformCerts returns the platform certificates not yet expired at now, oldest first,
// issuing the first one if there is none. Callers hold k.mu.
func (e *Emulator) listedPlatformCerts(now time.Time) []*platformCert {
	k := e.mch.keys
	var listed []*platformCert
	for _, pc := range k.platform {
		if now.Before(pc.cert.NotAfter) {
			listed = append(listed, pc)
		}
	}
	if len(listed) == 0 {
		listed = append(listed, e.issuePlatformCert(now))
	}
	return listed
}

// platformCerts returns the listed platform certificates at now (see listedPlatformCerts).
func (e *Emulator) platformCerts(now time.Time) []*platformCert {
	k := e.mch.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	return e.listedPlatformCerts(now)
}

// PayPublicKeyPEM returns the WeChat Pay public key as SPKI PEM ("PUBLIC KEY"), the key that
// signs answers for new merchants and for requests naming PayPublicKeyID in Wechatpay-Serial.
func (e *Emulator) PayPublicKeyPEM() []byte {
	_, p := e.mch.keys.publicPair()
	return append([]byte(nil), p...)
}

// PayPublicKeyID returns the ID of the WeChat Pay public key: "PUB_KEY_ID_" and 34 digits.
func (e *Emulator) PayPublicKeyID() string { return e.mch.keys.id }

// PlatformCertificatePEMs returns the platform certificates currently listed by
// /v3/certificates (unexpired, oldest first) as PEM, issuing the first one if needed.
func (e *Emulator) PlatformCertificatePEMs() [][]byte {
	var out [][]byte
	for _, pc := range e.platformCerts(e.now()) {
		out = append(out, append([]byte(nil), pc.pem...))
	}
	return out
}

// RotatePlatformCertificate issues a new platform certificate and returns its serial. It is
// listed by /v3/certificates at once and signs answers from now on; older certificates stay
// listed (and valid for verification) until they expire.
func (e *Emulator) RotatePlatformCertificate() string {
	k := e.mch.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	return e.issuePlatformCert(e.now()).serial
}

// SendSignTest makes the next n signed APIv3 answers carry a "WECHATPAY/SIGNTEST/..." probe
// signature instead of a real one, as WeChat Pay does now and then; body and other headers stay
// real. n <= 0 turns probes off. It is TamperNext(TamperSignTest, n).
func (e *Emulator) SendSignTest(n int) { e.TamperNext(TamperSignTest, n) }

// takeTamper returns how this answer is to be forged (TamperNone mostly), counting the budget
// down. An unsigned file download (file) takes only TamperBody, the one forgery that applies to
// it; the others wait for a signed answer.
func (k *payKeys) takeTamper(file bool) Tamper {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tamperLeft > 0 && (!file || k.tamper == TamperBody) {
		k.tamperLeft--
		return k.tamper
	}
	return TamperNone
}

// probeSignature returns a probe signature: the prefix, then random base64 that verifies with
// no key, so a client that strips the prefix still fails.
func probeSignature() string {
	b := make([]byte, 256)
	rand.Read(b) // never fails (crypto/rand contract since Go 1.24)
	return signer.SignTestPrefix + base64.StdEncoding.EncodeToString(b)
}

// answerSigner picks the key that signs an answer to merchant m (nil when the request named no
// known merchant): the public-key pair when the request's Wechatpay-Serial names it, else the
// newest platform certificate when the merchant has platform certificates, else the public-key
// pair. It returns the signer and the serial that goes into Wechatpay-Serial.
func (e *Emulator) answerSigner(m *merchantState, requestSerial []byte, now time.Time) (*signer.RSASigner, string) {
	k := e.mch.keys
	if string(requestSerial) != k.id && m != nil && m.cfg.PlatformCertificates {
		certs := e.platformCerts(now)
		newest := certs[len(certs)-1]
		return newest.signer, newest.serial
	}
	s, _ := k.publicPair()
	return s, k.id
}
