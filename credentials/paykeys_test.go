package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// payTestKeys are RSA keys generated once per test binary: key generation is slow under -race.
var payTestKeys struct {
	once sync.Once
	keys [3]*rsa.PrivateKey
	err  error
}

// testPayKey returns test RSA key i (0, 1 or 2); the same i always gives the same key.
func testPayKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	payTestKeys.once.Do(func() {
		for j := range payTestKeys.keys {
			payTestKeys.keys[j], payTestKeys.err = rsa.GenerateKey(rand.Reader, 2048)
			if payTestKeys.err != nil {
				return
			}
		}
	})
	if payTestKeys.err != nil {
		t.Fatalf("generating RSA test keys: %v", payTestKeys.err)
	}
	return payTestKeys.keys[i]
}

const testPubKeyID = "PUB_KEY_ID_0114232134912410000000000000000000"

// testPlatformCert is a small real platform certificate and the key behind it.
type testPlatformCert struct {
	serial string // as WeChat Pay writes it (signer.CertificateSerial)
	key    *rsa.PrivateKey
	cert   *x509.Certificate
	pem    []byte
}

// newTestPlatformCert makes a self-signed certificate for key with serial number sn, valid
// from notBefore to notAfter (whole seconds: X.509 keeps no finer time).
func newTestPlatformCert(t testing.TB, key *rsa.PrivateKey, sn int64, notBefore, notAfter time.Time) testPlatformCert {
	t.Helper()
	pemBytes, cert := selfSigned(t, key, &key.PublicKey, sn, notBefore, notAfter)
	return testPlatformCert{serial: signer.CertificateSerial(cert), key: key, cert: cert, pem: pemBytes}
}

// selfSigned returns the PEM and the parsed form of a certificate for pub signed by priv.
func selfSigned(t testing.TB, priv, pub any, sn int64, notBefore, notAfter time.Time) ([]byte, *x509.Certificate) {
	t.Helper()
	// WeChat's serials are 20 bytes: put sn in the low bits of a large number.
	serial := new(big.Int).Lsh(big.NewInt(0x5157F09E), 128)
	serial.Add(serial, big.NewInt(sn))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Tenpay.com Root CA test", Organization: []string{"wxgate test"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatalf("creating a test certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing the test certificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert
}

func (c testPlatformCert) platform() PlatformCert {
	return PlatformCert{Serial: c.serial, NotAfter: c.cert.NotAfter, PublicKey: &c.key.PublicKey}
}

func signWith(t testing.TB, key *rsa.PrivateKey, msg []byte) string {
	t.Helper()
	sig, err := signer.NewRSASigner(key).AppendSign(nil, msg)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return string(sig)
}

// testCerts returns two platform certificates: a ends in 5 days, b in a year (from the fake
// clock's start), with different keys.
func testCerts(t testing.TB) (a, b testPlatformCert) {
	t.Helper()
	t0 := newFakeClock().Now()
	a = newTestPlatformCert(t, testPayKey(t, 0), 0xA1, t0.Add(-365*24*time.Hour), t0.Add(5*24*time.Hour))
	b = newTestPlatformCert(t, testPayKey(t, 1), 0xB2, t0.Add(-time.Hour), t0.Add(365*24*time.Hour))
	return a, b
}

// certSource is a scripted CertFetchFunc: answer gives the result of call n (counted from 1),
// a call whose number has a gate waits until the gate is closed, and every call reports its
// number on entered.
type certSource struct {
	answer  func(n int) ([]PlatformCert, error)
	entered chan int

	mu    sync.Mutex
	calls int
	gates map[int]chan struct{}
}

func newCertSource(answer func(n int) ([]PlatformCert, error)) *certSource {
	return &certSource{answer: answer, entered: make(chan int, 100), gates: map[int]chan struct{}{}}
}

// hold makes call n wait until the returned release is called; call it before call n starts.
func (s *certSource) hold(n int) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := make(chan struct{})
	s.gates[n] = g
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		closeOnce(g)
	}
}

// releaseAll lets every held call go (so that a failed test does not leave a download stuck).
func (s *certSource) releaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gates {
		closeOnce(g)
	}
}

// closeOnce closes g unless it is closed already; the caller serialises calls (certSource.mu).
func closeOnce(g chan struct{}) {
	select {
	case <-g:
	default:
		close(g)
	}
}

func (s *certSource) fetch() ([]PlatformCert, error) {
	s.mu.Lock()
	s.calls++
	n, gate := s.calls, s.gates[s.calls]
	s.mu.Unlock()
	select {
	case s.entered <- n:
	default: // nobody is counting this many calls
	}
	if gate != nil {
		<-gate
	}
	return s.answer(n)
}

func (s *certSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// waitEntered waits until call n of the fetch func has begun.
func (s *certSource) waitEntered(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-s.entered:
			if got == n {
				return
			}
		case <-timeout:
			t.Fatalf("fetch call %d never began (%d calls so far)", n, s.count())
		}
	}
}

// listAt returns an answer that lists certs still valid on clk, as DecodeCertificates would.
func listAt(clk *fakeClock, certs ...testPlatformCert) []PlatformCert {
	now := clk.Now()
	var out []PlatformCert
	for _, c := range certs {
		if now.Before(c.cert.NotAfter) {
			out = append(out, c.platform())
		}
	}
	return out
}

// newTestPayKeys builds a PayKeys on clk fetching from src (nil: no certificates). Unless set,
// MinRefreshGap is tiny and RefreshEvery so long that no background refresh starts by itself.
func newTestPayKeys(t *testing.T, clk *fakeClock, src *certSource, opts PayKeysOptions) *PayKeys {
	t.Helper()
	opts.Clock = clk.Now
	if src != nil {
		opts.Fetch = src.fetch
	}
	if opts.MinRefreshGap == 0 {
		opts.MinRefreshGap = time.Nanosecond
	}
	if opts.RefreshEvery == 0 {
		opts.RefreshEvery = 1000 * 24 * time.Hour
	}
	k := NewPayKeys(opts)
	t.Cleanup(func() {
		if src != nil {
			src.releaseAll()
		}
		waitFor(t, "the certificate download to finish", func() bool { return !k.downloading() })
	})
	return k
}

// downloading reports whether a certificate download is in flight.
func (k *PayKeys) downloading() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.flight != nil
}

func (k *PayKeys) missingCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.missing)
}

// verifierWaiters counts goroutines blocked in PayKeys.Verifier on a download's done channel.
func verifierWaiters() int { return payKeysWaiters("Verifier") }

// payKeysWaiters counts goroutines blocked on a channel in the PayKeys method named method.
func payKeysWaiters(method string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[chan receive") && strings.Contains(g, "credentials.(*PayKeys)."+method+"(") {
			count++
		}
	}
	return count
}

// within runs f on another goroutine and fails the test if it does not return in 10 s (a guard
// against a call that blocks when it must not, never a synchronisation).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// mustVerify checks that v accepts a signature made by key and rejects a tampered message and a
// signature by another key.
func mustVerify(t *testing.T, v *signer.RSAVerifier, key, other *rsa.PrivateKey) {
	t.Helper()
	if v == nil {
		t.Fatal("nil verifier")
	}
	msg := signer.AppendResponseMessage(nil, "1772366400", "593BEC0C930BF1AFEB40B4A08C8FB242", []byte(`{"out_trade_no":"1217752501201407033233368018"}`))
	sig := signWith(t, key, msg)
	if err := v.Verify(msg, sig); err != nil {
		t.Fatalf("a genuine signature does not verify: %v", err)
	}
	tampered := slices.Clone(msg)
	tampered[len(tampered)-3] ^= 1
	if err := v.Verify(tampered, sig); !errors.Is(err, signer.ErrSignatureInvalid) {
		t.Fatalf("a tampered message: err = %v, want ErrSignatureInvalid", err)
	}
	if err := v.Verify(msg, signWith(t, other, msg)); !errors.Is(err, signer.ErrSignatureInvalid) {
		t.Fatalf("another key's signature: err = %v, want ErrSignatureInvalid", err)
	}
}

func TestPayKeysPublicKey(t *testing.T) {
	pub, other := testPayKey(t, 2), testPayKey(t, 0)
	cases := []struct {
		name      string
		withCerts bool
		serial    string
		wantErr   bool
	}{
		{"public key id, public key only", false, testPubKeyID, false},
		{"public key id, certificates too", true, testPubKeyID, false},
		{"unknown serial, public key only", false, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", true},
		{"another public key id, public key only", false, "PUB_KEY_ID_0114232134912410000000000000000001", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			src := newCertSource(func(int) ([]PlatformCert, error) {
				return nil, errors.New("fetch must not be called")
			})
			var use *certSource
			if tc.withCerts {
				use = src
			}
			k := newTestPayKeys(t, clk, use, PayKeysOptions{PublicKeyID: testPubKeyID, PublicKey: &pub.PublicKey})
			v, err := k.Verifier(tc.serial)
			if tc.wantErr {
				if !errors.Is(err, ErrUnknownSerial) {
					t.Fatalf("Verifier(%q) err = %v, want ErrUnknownSerial", tc.serial, err)
				}
				if v != nil {
					t.Fatalf("Verifier(%q) returned a verifier with its error", tc.serial)
				}
				for _, want := range []string{tc.serial, "only the WeChat Pay public key", testPubKeyID} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
			} else {
				if err != nil {
					t.Fatalf("Verifier(%q): %v", tc.serial, err)
				}
				mustVerify(t, v, pub, other)
				if again, _ := k.Verifier(tc.serial); again != v {
					t.Error("the public key verifier is not reused")
				}
			}
			if n := src.count(); n != 0 {
				t.Errorf("fetch called %d times, want 0", n)
			}
			if k.downloading() {
				t.Error("a download started")
			}
			if st := k.Status(); st.Fetches != 0 || len(st.Serials) != 0 || st.LastError != "" {
				t.Errorf("Status() = %+v, want empty", st)
			}
		})
	}
}

func TestPayKeysRefreshWithoutCertificates(t *testing.T) {
	k := newTestPayKeys(t, newFakeClock(), nil, PayKeysOptions{PublicKeyID: testPubKeyID, PublicKey: &testPayKey(t, 2).PublicKey})
	if err := k.Refresh(); err != nil {
		t.Fatalf("Refresh() without certificates = %v, want nil", err)
	}
}

func TestPayKeysFirstUseSingleFlight(t *testing.T) {
	const callers = 50
	a, b := testCerts(t)
	clk := newFakeClock()
	src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a, b), nil })
	release := src.hold(1)
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})

	verifiers := make([]*signer.RSAVerifier, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { verifiers[i], errs[i] = k.Verifier(a.serial) })
	}
	src.waitEntered(t, 1)
	waitFor(t, "all callers to wait for the download", func() bool { return verifierWaiters() == callers })
	if st := k.Status(); st.Fetches != 0 || len(st.Serials) != 0 {
		t.Fatalf("Status() while the download is held = %+v, want no fetch finished", st)
	}
	release()
	wg.Wait()

	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if verifiers[i] != verifiers[0] {
			t.Fatalf("caller %d got a different verifier", i)
		}
	}
	mustVerify(t, verifiers[0], a.key, b.key)
	if n := src.count(); n != 1 {
		t.Fatalf("fetch called %d times, want 1", n)
	}
	st := k.Status()
	want := []string{a.serial, b.serial}
	slices.Sort(want)
	if st.Fetches != 1 || !slices.Equal(st.Serials, want) || st.LastError != "" {
		t.Fatalf("Status() = %+v, want 1 fetch, serials %v, no error", st, want)
	}
	// b came in the same download: no further fetch.
	vb, err := k.Verifier(b.serial)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, vb, b.key, a.key)
	if n := src.count(); n != 1 {
		t.Fatalf("fetch called %d times after a known serial, want 1", n)
	}
}

func TestPayKeysRotation(t *testing.T) {
	a, b := testCerts(t)
	cases := []struct {
		name  string
		after func(clk *fakeClock) []PlatformCert // the list from the second download on
	}{
		{"list grows", func(clk *fakeClock) []PlatformCert { return listAt(clk, a, b) }},
		{"list replaced", func(clk *fakeClock) []PlatformCert { return listAt(clk, b) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			src := newCertSource(func(n int) ([]PlatformCert, error) {
				if n == 1 {
					return listAt(clk, a), nil
				}
				return tc.after(clk), nil
			})
			k := newTestPayKeys(t, clk, src, PayKeysOptions{})

			va, err := k.Verifier(a.serial)
			if err != nil {
				t.Fatal(err)
			}
			mustVerify(t, va, a.key, b.key)

			// WeChat starts signing with b: the unknown serial fetches the list again.
			vb, err := k.Verifier(b.serial)
			if err != nil {
				t.Fatalf("Verifier(new serial): %v", err)
			}
			mustVerify(t, vb, b.key, a.key)
			if n := src.count(); n != 2 {
				t.Fatalf("fetch called %d times, want 2", n)
			}

			// The old certificate verifies until its NotAfter, without any fetch.
			clk.Advance(a.cert.NotAfter.Sub(clk.Now()) - time.Second)
			v, err := k.Verifier(a.serial)
			if err != nil {
				t.Fatalf("old serial one second before NotAfter: %v", err)
			}
			mustVerify(t, v, a.key, b.key)
			if n := src.count(); n != 2 {
				t.Fatalf("fetch called %d times for a known serial, want 2", n)
			}

			// At NotAfter it is gone: a download confirms it, and the refusal is remembered.
			clk.Advance(time.Second)
			if v, err := k.Verifier(a.serial); !errors.Is(err, ErrUnknownSerial) || v != nil {
				t.Fatalf("old serial at NotAfter: %v, %v; want ErrUnknownSerial", v, err)
			}
			if n := src.count(); n != 3 {
				t.Fatalf("fetch called %d times, want 3", n)
			}
			if st := k.Status(); !slices.Equal(st.Serials, []string{b.serial}) {
				t.Fatalf("Status().Serials = %v, want only %s (the expired one dropped)", st.Serials, b.serial)
			}
			if _, err := k.Verifier(a.serial); !errors.Is(err, ErrUnknownSerial) {
				t.Fatalf("old serial again: %v", err)
			}
			v, err = k.Verifier(b.serial)
			if err != nil {
				t.Fatalf("new serial after the old one expired: %v", err)
			}
			mustVerify(t, v, b.key, a.key)
			if n := src.count(); n != 3 {
				t.Fatalf("fetch called %d times, want still 3", n)
			}
		})
	}
}

func TestPayKeysKeepsOldCertificatesUntilExpiry(t *testing.T) {
	a, b := testCerts(t)
	clk := newFakeClock()
	src := newCertSource(func(n int) ([]PlatformCert, error) {
		if n == 1 {
			return listAt(clk, a), nil
		}
		return listAt(clk, b), nil // a no longer listed
	})
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})
	if _, err := k.Verifier(a.serial); err != nil {
		t.Fatal(err)
	}
	if err := k.Refresh(); err != nil {
		t.Fatal(err)
	}
	want := []string{a.serial, b.serial}
	slices.Sort(want)
	if st := k.Status(); !slices.Equal(st.Serials, want) || st.Fetches != 2 {
		t.Fatalf("Status() = %+v, want serials %v after 2 fetches", st, want)
	}
	v, err := k.Verifier(a.serial)
	if err != nil {
		t.Fatalf("a certificate left out of a newer list must verify until it expires: %v", err)
	}
	mustVerify(t, v, a.key, b.key)
	// Expired certificates go at the next successful download.
	clk.Advance(a.cert.NotAfter.Sub(clk.Now()))
	if err := k.Refresh(); err != nil {
		t.Fatal(err)
	}
	if st := k.Status(); !slices.Equal(st.Serials, []string{b.serial}) {
		t.Fatalf("Status().Serials = %v, want [%s]", st.Serials, b.serial)
	}
}

func TestPayKeysMissingSerialNegativeCache(t *testing.T) {
	a, b := testCerts(t)
	x := newTestPlatformCert(t, testPayKey(t, 2), 0xC3, a.cert.NotBefore, b.cert.NotAfter)
	clk := newFakeClock()
	var mu sync.Mutex
	listed := []testPlatformCert{a}
	setListed := func(certs ...testPlatformCert) {
		mu.Lock()
		listed = certs
		mu.Unlock()
	}
	src := newCertSource(func(int) ([]PlatformCert, error) {
		mu.Lock()
		defer mu.Unlock()
		return listAt(clk, listed...), nil
	})
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})
	wantFetches := func(n int) {
		t.Helper()
		if got := src.count(); got != n {
			t.Fatalf("fetch called %d times, want %d", got, n)
		}
	}
	refused := func(serial string, remembered bool) {
		t.Helper()
		v, err := k.Verifier(serial)
		if !errors.Is(err, ErrUnknownSerial) || v != nil {
			t.Fatalf("Verifier(%s) = %v, %v; want ErrUnknownSerial", serial, v, err)
		}
		if got := strings.Contains(err.Error(), "not among the platform certificates downloaded"); got != remembered {
			t.Fatalf("Verifier(%s): error %q; refused from the negative cache = %v, want %v", serial, err, got, remembered)
		}
	}

	refused(x.serial, false) // download 1 lacks x
	wantFetches(1)
	refused(x.serial, true) // refused at once
	wantFetches(1)
	if _, err := k.Verifier(a.serial); err != nil {
		t.Fatal(err)
	}
	wantFetches(1)

	// Another unknown serial is not covered by x's refusal.
	refused(b.serial, false)
	wantFetches(2)

	// x appears at WeChat, but within missingTTL wxgate does not ask again.
	setListed(a, x)
	clk.Advance(missingTTL - time.Nanosecond)
	refused(x.serial, true)
	wantFetches(2)

	// Once missingTTL has passed, the next use downloads again and finds it.
	clk.Advance(time.Nanosecond)
	v, err := k.Verifier(x.serial)
	if err != nil {
		t.Fatalf("Verifier(x) after missingTTL: %v", err)
	}
	mustVerify(t, v, x.key, a.key)
	wantFetches(3)

	// A download that lists a refused serial (b) lifts its refusal at once.
	setListed(a, x, b)
	if err := k.Refresh(); err != nil {
		t.Fatal(err)
	}
	wantFetches(4)
	if v, err := k.Verifier(b.serial); err != nil {
		t.Fatalf("Verifier(b) after a download listing it: %v", err)
	} else {
		mustVerify(t, v, b.key, a.key)
	}
	wantFetches(4)
}

func TestPayKeysRefusalAfterTTLStillDownloadsOnce(t *testing.T) {
	a, _ := testCerts(t)
	clk := newFakeClock()
	src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a), nil })
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})
	const forged = "FORGED0000000000000000000000000000000001"
	for round := 1; round <= 3; round++ {
		for range 3 {
			if _, err := k.Verifier(forged); !errors.Is(err, ErrUnknownSerial) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if n := src.count(); n != round {
			t.Fatalf("round %d: fetch called %d times, want %d (one per missingTTL)", round, n, round)
		}
		clk.Advance(missingTTL)
	}
}

// TestPayKeysForgetsOldRefusals checks that serials refused long ago do not pile up: forged
// serials must not grow the negative cache without bound.
func TestPayKeysForgetsOldRefusals(t *testing.T) {
	a, _ := testCerts(t)
	clk := newFakeClock()
	src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a), nil })
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})
	forged := func(i int) string { return fmt.Sprintf("F0%038X", i) }
	for i := range 10 {
		if _, err := k.Verifier(forged(i)); !errors.Is(err, ErrUnknownSerial) {
			t.Fatal(err)
		}
	}
	if n := k.missingCount(); n != 10 {
		t.Fatalf("%d serials remembered, want 10", n)
	}
	clk.Advance(missingTTL / 2)
	if _, err := k.Verifier(forged(10)); !errors.Is(err, ErrUnknownSerial) {
		t.Fatal(err)
	}
	if n := k.missingCount(); n != 11 {
		t.Fatalf("%d serials remembered, want 11 (none has run out yet)", n)
	}
	clk.Advance(missingTTL / 2)
	if _, err := k.Verifier(forged(11)); !errors.Is(err, ErrUnknownSerial) {
		t.Fatal(err)
	}
	if n := k.missingCount(); n != 2 {
		t.Fatalf("%d serials remembered, want 2 (the 10 refused missingTTL ago forgotten)", n)
	}
	fetches := src.count()
	if _, err := k.Verifier(forged(10)); err == nil || !strings.Contains(err.Error(), "not among") {
		t.Fatalf("a recent refusal was forgotten: %v", err)
	}
	if src.count() != fetches {
		t.Fatal("a recently refused serial downloaded again")
	}
}

// TestPayKeysMalformedSerials: a serial that no platform certificate can have (not upper-case
// letters and digits, or longer than 64) is refused without a download and not remembered, so a
// flood of forged serials of a few kilobytes each (as many as the callback door's headers hold)
// cannot grow the negative cache by their size; a well-formed forged serial still downloads once.
func TestPayKeysMalformedSerials(t *testing.T) {
	a, _ := testCerts(t)
	clk := newFakeClock()
	src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a), nil })
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})
	for _, serial := range []string{
		"",
		strings.Repeat("A", 65),
		strings.Repeat("F", 3000),
		strings.ToLower(a.serial),
		a.serial + "-1",
		a.serial + " ",
		"PUB_KEY_ID_0000000000000024101100397200000006", // a public key, which no certificate list holds
		"5157F09EFDC096DE15EBE81A47057A7232F1B8E\u00e9",
	} {
		v, err := k.Verifier(serial)
		if !errors.Is(err, ErrUnknownSerial) || v != nil {
			t.Fatalf("Verifier(%.80q) = %v, %v; want ErrUnknownSerial", serial, v, err)
		}
		if len(err.Error()) > 200 {
			t.Fatalf("Verifier(%.80q): the error echoes the whole serial: %d bytes", serial, len(err.Error()))
		}
	}
	if n, m := src.count(), k.missingCount(); n != 0 || m != 0 {
		t.Fatalf("malformed serials made %d downloads and %d remembered refusals, want none", n, m)
	}
	if _, err := k.Verifier(strings.Repeat("A", 64)); !errors.Is(err, ErrUnknownSerial) {
		t.Fatal(err)
	}
	if n, m := src.count(), k.missingCount(); n != 1 || m != 1 {
		t.Fatalf("a well-formed unknown serial: %d downloads, %d remembered, want 1 and 1", n, m)
	}
	if _, err := k.Verifier(a.serial); err != nil {
		t.Fatalf("the listed certificate: %v", err)
	}
}

func TestPayKeysWaitsForDownloadBegunAfterAsking(t *testing.T) {
	a, b := testCerts(t)
	cases := []struct {
		name        string
		askLater    time.Duration // how long after the first download began the second caller asks
		wantFetches int
		wantB       bool
	}{
		// b appeared after download 1 began: its caller waits for download 2, which lists it.
		{"asked after the download began", time.Second, 2, true},
		// A caller who asked when the download began takes its answer.
		{"asked as the download began", 0, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			src := newCertSource(func(n int) ([]PlatformCert, error) {
				if n == 1 {
					return listAt(clk, a), nil
				}
				return listAt(clk, a, b), nil
			})
			release := src.hold(1)
			k := newTestPayKeys(t, clk, src, PayKeysOptions{})

			type result struct {
				v   *signer.RSAVerifier
				err error
			}
			resA, resB := make(chan result, 1), make(chan result, 1)
			go func() {
				v, err := k.Verifier(a.serial)
				resA <- result{v, err}
			}()
			src.waitEntered(t, 1)
			clk.Advance(tc.askLater)
			go func() {
				v, err := k.Verifier(b.serial)
				resB <- result{v, err}
			}()
			waitFor(t, "both callers to join download 1", func() bool { return verifierWaiters() == 2 })
			release()

			ra, rb := <-resA, <-resB
			if ra.err != nil {
				t.Fatalf("Verifier(a): %v", ra.err)
			}
			mustVerify(t, ra.v, a.key, b.key)
			if tc.wantB {
				if rb.err != nil {
					t.Fatalf("Verifier(b): %v", rb.err)
				}
				mustVerify(t, rb.v, b.key, a.key)
			} else if !errors.Is(rb.err, ErrUnknownSerial) {
				t.Fatalf("Verifier(b) = %v, %v; want ErrUnknownSerial", rb.v, rb.err)
			}
			if n := src.count(); n != tc.wantFetches {
				t.Fatalf("fetch called %d times, want %d", n, tc.wantFetches)
			}
		})
	}
}

func TestPayKeysFetchFailures(t *testing.T) {
	a, b := testCerts(t)
	cases := []struct {
		name string
		fail func() ([]PlatformCert, error)
		want []string
	}{
		{"fetch error", func() ([]PlatformCert, error) {
			return nil, errors.New("GET /v3/certificates answered HTTP 503: SYSTEM_ERROR")
		}, []string{"HTTP 503", "SYSTEM_ERROR"}},
		{"nil list", func() ([]PlatformCert, error) { return nil, nil },
			[]string{"no platform certificate", "only the WeChat Pay public key", "public_key_id"}},
		{"empty list", func() ([]PlatformCert, error) { return []PlatformCert{}, nil },
			[]string{"only the WeChat Pay public key", "public_key_file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			src := newCertSource(func(n int) ([]PlatformCert, error) {
				if n <= 2 {
					return tc.fail()
				}
				return listAt(clk, a, b), nil
			})
			k := newTestPayKeys(t, clk, src, PayKeysOptions{})
			mentions := func(what string, err error) {
				t.Helper()
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not mention %q", what, err, w)
					}
				}
			}

			err := k.Refresh()
			if err == nil {
				t.Fatal("Refresh() = nil, want the failure")
			}
			mentions("Refresh", err)

			v, err := k.Verifier(a.serial)
			if !errors.Is(err, ErrUnknownSerial) || v != nil {
				t.Fatalf("Verifier = %v, %v; want ErrUnknownSerial", v, err)
			}
			if !strings.Contains(err.Error(), "refreshing platform certificates failed") {
				t.Errorf("error %q does not say the refresh failed", err)
			}
			mentions("Verifier", err)
			st := k.Status()
			if st.Fetches != 2 || len(st.Serials) != 0 {
				t.Fatalf("Status() = %+v, want 2 fetches, no serial", st)
			}
			mentions("Status().LastError", errors.New(st.LastError))

			// A failed download remembers no refusal: the next call retries and succeeds.
			v, err = k.Verifier(a.serial)
			if err != nil {
				t.Fatalf("Verifier after the failure: %v", err)
			}
			mustVerify(t, v, a.key, b.key)
			if n := src.count(); n != 3 {
				t.Fatalf("fetch called %d times, want 3", n)
			}
			if st := k.Status(); st.LastError != "" || st.Fetches != 3 || len(st.Serials) != 2 {
				t.Fatalf("Status() after recovery = %+v", st)
			}
		})
	}
}

func TestPayKeysFailureReachesEveryWaiter(t *testing.T) {
	a, _ := testCerts(t)
	const callers = 8
	clk := newFakeClock()
	src := newCertSource(func(n int) ([]PlatformCert, error) {
		if n == 1 {
			return nil, errors.New("connection reset by peer")
		}
		return listAt(clk, a), nil
	})
	release := src.hold(1)
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { _, errs[i] = k.Verifier(a.serial) })
	}
	src.waitEntered(t, 1)
	waitFor(t, "all callers to wait for the download", func() bool { return verifierWaiters() == callers })
	release()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrUnknownSerial) || !strings.Contains(err.Error(), "connection reset by peer") {
			t.Fatalf("caller %d: %v; want the download's failure", i, err)
		}
	}
	if n := src.count(); n != 1 {
		t.Fatalf("fetch called %d times, want 1", n)
	}
}

func TestPayKeysBackgroundRefresh(t *testing.T) {
	a, b := testCerts(t)
	cases := []struct {
		name    string
		refresh func(clk *fakeClock) ([]PlatformCert, error) // the background download's answer
	}{
		{"refresh succeeds", func(clk *fakeClock) ([]PlatformCert, error) { return listAt(clk, a, b), nil }},
		{"refresh fails", func(*fakeClock) ([]PlatformCert, error) { return nil, errors.New("HTTP 500 from WeChat") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const every = time.Hour
			clk := newFakeClock()
			src := newCertSource(func(n int) ([]PlatformCert, error) {
				switch n {
				case 1:
					return listAt(clk, a), nil
				case 2:
					return tc.refresh(clk)
				}
				return listAt(clk, a, b), nil
			})
			release := src.hold(2)
			k := newTestPayKeys(t, clk, src, PayKeysOptions{RefreshEvery: every})

			va, err := k.Verifier(a.serial)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(every)
			if v, err := k.Verifier(a.serial); err != nil || v != va {
				t.Fatalf("Verifier at RefreshEvery: %v, %v", v, err)
			}
			if k.downloading() {
				t.Fatal("a list exactly RefreshEvery old started a refresh")
			}

			clk.Advance(time.Nanosecond)
			within(t, "Verifier of a known serial during a background refresh", func() {
				if v, err := k.Verifier(a.serial); err != nil || v != va {
					t.Errorf("Verifier past RefreshEvery: %v, %v", v, err)
				}
			})
			if !k.downloading() {
				t.Fatal("a list older than RefreshEvery started no refresh")
			}
			src.waitEntered(t, 2)
			// More calls while the refresh is held neither wait nor start another download.
			within(t, "Verifier while the refresh is held", func() {
				for range 5 {
					if v, err := k.Verifier(a.serial); err != nil || v != va {
						t.Errorf("Verifier during the refresh: %v, %v", v, err)
					}
				}
			})
			if n := src.count(); n != 2 {
				t.Fatalf("fetch called %d times while the refresh is held, want 2", n)
			}
			release()
			waitFor(t, "the background refresh to finish", func() bool { return !k.downloading() })

			st := k.Status()
			if tc.name == "refresh fails" {
				if !strings.Contains(st.LastError, "HTTP 500") || !slices.Equal(st.Serials, []string{a.serial}) {
					t.Fatalf("Status() after a failed refresh = %+v", st)
				}
				// The known certificate still answers, and the stale list is refreshed again.
				v, err := k.Verifier(a.serial)
				if err != nil {
					t.Fatalf("Verifier after a failed refresh: %v", err)
				}
				mustVerify(t, v, a.key, b.key)
				waitFor(t, "the retried refresh", func() bool { return !k.downloading() && src.count() == 3 })
				st = k.Status()
			}
			want := []string{a.serial, b.serial}
			slices.Sort(want)
			if st.LastError != "" || !slices.Equal(st.Serials, want) {
				t.Fatalf("Status() after the refresh = %+v, want serials %v and no error", st, want)
			}
			fetches := src.count()
			vb, err := k.Verifier(b.serial)
			if err != nil {
				t.Fatal(err)
			}
			mustVerify(t, vb, b.key, a.key)
			if _, err := k.Verifier(a.serial); err != nil {
				t.Fatal(err)
			}
			if k.downloading() || src.count() != fetches {
				t.Fatal("a fresh list started another download")
			}
		})
	}
}

func TestPayKeysMinRefreshGap(t *testing.T) {
	a, b := testCerts(t)
	const gap = time.Hour
	clk := newFakeClock()
	src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a, b), nil })
	k := newTestPayKeys(t, clk, src, PayKeysOptions{MinRefreshGap: gap})

	// The first download never waits.
	within(t, "the first download", func() {
		if _, err := k.Verifier(a.serial); err != nil {
			t.Error(err)
		}
	})
	// Once the gap has passed on the clock, the next download does not wait either.
	clk.Advance(gap)
	within(t, "a download a whole gap after the previous one", func() {
		if err := k.Refresh(); err != nil {
			t.Error(err)
		}
	})
	// An unknown serial right after: the download waits what is left of the gap, in real time.
	const left = 20 * time.Millisecond
	clk.Advance(gap - left)
	var elapsed time.Duration
	within(t, "a download inside the gap", func() {
		start := time.Now()
		if _, err := k.Verifier("UNKNOWN0000000000000000000000000000000001"); !errors.Is(err, ErrUnknownSerial) {
			t.Errorf("unknown serial: %v", err)
		}
		elapsed = time.Since(start)
	})
	if elapsed < left {
		t.Fatalf("a download %s after the previous one returned after %s, want it spaced to MinRefreshGap", gap-left, elapsed)
	}
	if n := src.count(); n != 3 {
		t.Fatalf("fetch called %d times, want 3", n)
	}
}

func TestPayKeysRefreshJoinsDownloadInFlight(t *testing.T) {
	a, _ := testCerts(t)
	clk := newFakeClock()
	src := newCertSource(func(int) ([]PlatformCert, error) { return listAt(clk, a), nil })
	release := src.hold(1)
	k := newTestPayKeys(t, clk, src, PayKeysOptions{})
	errs := make(chan error, 4)
	for range 3 {
		go func() { errs <- k.Refresh() }()
	}
	src.waitEntered(t, 1)
	go func() {
		_, err := k.Verifier(a.serial)
		errs <- err
	}()
	waitFor(t, "every caller to join the download", func() bool {
		return payKeysWaiters("Refresh") == 3 && verifierWaiters() == 1
	})
	release()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := src.count(); n != 1 {
		t.Fatalf("fetch called %d times for concurrent Refresh and Verifier calls, want 1", n)
	}
}

func TestPayKeysEndToEnd(t *testing.T) {
	a, b := testCerts(t)
	pub := testPayKey(t, 2)
	apiv3, err := signer.NewAEADKey([]byte("0123456789abcdef0123456789ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	body := certificatesAnswerJSON(t, apiv3, answerEntry{cert: a}, answerEntry{cert: b})
	src := newCertSource(func(int) ([]PlatformCert, error) { return DecodeCertificates(body, apiv3, clk.Now()) })
	k := newTestPayKeys(t, clk, src, PayKeysOptions{PublicKeyID: testPubKeyID, PublicKey: &pub.PublicKey})

	cases := []struct {
		name   string
		serial string
		key    *rsa.PrivateKey
		other  *rsa.PrivateKey
	}{
		{"platform certificate a", a.serial, a.key, b.key},
		{"platform certificate b", b.serial, b.key, pub},
		{"public key", testPubKeyID, pub, a.key},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := k.Verifier(tc.serial)
			if err != nil {
				t.Fatal(err)
			}
			mustVerify(t, v, tc.key, tc.other)
			// The answer signed by the certificate itself verifies, as the bootstrap does.
			msg := signer.AppendResponseMessage(nil, "1772366400", "n0nce", body)
			if err := v.Verify(msg, signWith(t, tc.key, msg)); err != nil {
				t.Fatalf("signed certificates answer: %v", err)
			}
			if err := v.Verify(msg, signer.SignTestPrefix+"abc"); !errors.Is(err, signer.ErrSignatureProbe) {
				t.Fatalf("a WECHATPAY/SIGNTEST/ probe: err = %v, want ErrSignatureProbe", err)
			}
		})
	}
	if n := src.count(); n != 1 {
		t.Fatalf("fetch called %d times, want 1", n)
	}
}

// answerEntry is one item of a fake /v3/certificates answer.
type answerEntry struct {
	cert      testPlatformCert
	plaintext []byte // sealed instead of cert.pem when set
	serialNo  string // instead of cert.serial when set
	algorithm string // instead of AEAD_AES_256_GCM when set
	nonce     string // instead of a 12-byte nonce when set
	sealAD    string // associated data sealed with, instead of "certificate"
	answerAD  string // associated data written in the answer, instead of sealAD
	sealKey   *signer.AEADKey
}

// certificatesAnswerJSON builds a /v3/certificates answer encrypting each entry with key.
func certificatesAnswerJSON(t *testing.T, key *signer.AEADKey, entries ...answerEntry) []byte {
	t.Helper()
	type encrypted struct {
		Algorithm      string `json:"algorithm"`
		Nonce          string `json:"nonce"`
		AssociatedData string `json:"associated_data"`
		Ciphertext     string `json:"ciphertext"`
	}
	type item struct {
		SerialNo           string    `json:"serial_no"`
		EffectiveTime      string    `json:"effective_time"`
		ExpireTime         string    `json:"expire_time"`
		EncryptCertificate encrypted `json:"encrypt_certificate"`
	}
	ans := struct {
		Data []item `json:"data"`
	}{Data: []item{}}
	for i, e := range entries {
		or := func(v, def string) string {
			if v != "" {
				return v
			}
			return def
		}
		plaintext := e.plaintext
		if plaintext == nil {
			plaintext = e.cert.pem
		}
		sealAD := or(e.sealAD, "certificate")
		nonce := or(e.nonce, fmt.Sprintf("n0nce%07d", i))
		sealKey := key
		if e.sealKey != nil {
			sealKey = e.sealKey
		}
		sealNonce := nonce
		if len(sealNonce) != 12 {
			sealNonce = "abcdefghijkl"
		}
		ct, err := sealKey.Seal(sealNonce, sealAD, plaintext)
		if err != nil {
			t.Fatalf("sealing entry %d: %v", i, err)
		}
		it := item{
			SerialNo: or(e.serialNo, e.cert.serial),
			EncryptCertificate: encrypted{
				Algorithm:      or(e.algorithm, "AEAD_AES_256_GCM"),
				Nonce:          nonce,
				AssociatedData: or(e.answerAD, sealAD),
				Ciphertext:     ct,
			},
		}
		if e.cert.cert != nil {
			it.EffectiveTime = e.cert.cert.NotBefore.Format(time.RFC3339)
			it.ExpireTime = e.cert.cert.NotAfter.Format(time.RFC3339)
		}
		ans.Data = append(ans.Data, it)
	}
	body, err := json.Marshal(ans)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestDecodeCertificates(t *testing.T) {
	a, b := testCerts(t)
	now := newFakeClock().Now()
	key, err := signer.NewAEADKey([]byte("0123456789abcdef0123456789ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := signer.NewAEADKey([]byte("fedcba9876543210fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	expired := newTestPlatformCert(t, testPayKey(t, 2), 0xE0, now.Add(-48*time.Hour), now.Add(-time.Hour))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM, ecCert := selfSigned(t, ecKey, &ecKey.PublicKey, 0xEC, now.Add(-time.Hour), now.Add(24*time.Hour))
	ec := testPlatformCert{serial: signer.CertificateSerial(ecCert), cert: ecCert, pem: ecPEM}
	pubPEM, err := x509.MarshalPKIXPublicKey(&a.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		body    []byte
		now     time.Time
		want    []testPlatformCert
		wantErr []string // substrings of the error; nil: no error
	}{
		{name: "two certificates", body: certificatesAnswerJSON(t, key, answerEntry{cert: a}, answerEntry{cert: b}),
			want: []testPlatformCert{a, b}},
		{name: "no certificate", body: []byte(`{"data":[]}`)},
		{name: "expired certificate left out", body: certificatesAnswerJSON(t, key, answerEntry{cert: expired}, answerEntry{cert: b}),
			want: []testPlatformCert{b}},
		{name: "certificate expiring now left out", body: certificatesAnswerJSON(t, key, answerEntry{cert: a}, answerEntry{cert: b}),
			now: a.cert.NotAfter, want: []testPlatformCert{b}},
		{name: "certificate expiring in a second kept", body: certificatesAnswerJSON(t, key, answerEntry{cert: a}),
			now: a.cert.NotAfter.Add(-time.Second), want: []testPlatformCert{a}},
		{name: "wrong APIv3 key", body: certificatesAnswerJSON(t, key, answerEntry{cert: a, sealKey: wrongKey}),
			wantErr: []string{"apiv3_key", "certificate 0", a.serial}},
		{name: "wrong associated data", body: certificatesAnswerJSON(t, key, answerEntry{cert: a, answerAD: "cert"}),
			wantErr: []string{"cannot decrypt"}},
		{name: "nonce not 12 bytes", body: certificatesAnswerJSON(t, key, answerEntry{cert: a, nonce: "short"}),
			wantErr: []string{"cannot decrypt", "nonce"}},
		{name: "serial_no mismatch", body: certificatesAnswerJSON(t, key, answerEntry{cert: a, serialNo: b.serial}),
			wantErr: []string{"serial_no " + b.serial, "does not match", a.serial}},
		{name: "wrong algorithm", body: certificatesAnswerJSON(t, key, answerEntry{cert: a, algorithm: "AEAD_AES_128_GCM"}),
			wantErr: []string{`"AEAD_AES_128_GCM"`, "want AEAD_AES_256_GCM"}},
		{name: "missing algorithm", body: []byte(`{"data":[{"serial_no":"01","encrypt_certificate":{}}]}`),
			wantErr: []string{`algorithm ""`}},
		{name: "a bad certificate fails the whole answer", body: certificatesAnswerJSON(t, key, answerEntry{cert: a}, answerEntry{cert: b, algorithm: "RSA"}),
			wantErr: []string{"certificate 1"}},
		{name: "not a certificate", body: certificatesAnswerJSON(t, key,
			answerEntry{serialNo: "01", plaintext: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubPEM})}),
			wantErr: []string{"certificate 0 (01)", "CERTIFICATE"}},
		{name: "not PEM", body: certificatesAnswerJSON(t, key, answerEntry{serialNo: "01", plaintext: []byte("hello")}),
			wantErr: []string{"certificate 0 (01)"}},
		{name: "ECDSA certificate", body: certificatesAnswerJSON(t, key, answerEntry{cert: ec}),
			wantErr: []string{"RSA"}},
		{name: "not JSON", body: []byte("<xml><return_code>FAIL</return_code></xml>"),
			wantErr: []string{"not the documented JSON"}},
		{name: "empty body", body: nil, wantErr: []string{"not the documented JSON"}},
		{name: "data not a list", body: []byte(`{"data":{"serial_no":"01"}}`), wantErr: []string{"not the documented JSON"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.now
			if at.IsZero() {
				at = now
			}
			got, err := DecodeCertificates(tc.body, key, at)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("DecodeCertificates = %d certificates, want an error", len(got))
				}
				if got != nil {
					t.Errorf("certificates returned with the error: %v", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeCertificates: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d certificates, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Serial != w.serial || !g.NotAfter.Equal(w.cert.NotAfter) || !g.PublicKey.Equal(&w.key.PublicKey) {
					t.Errorf("certificate %d = {%s %s}, want {%s %s} with its key", i, g.Serial, g.NotAfter, w.serial, w.cert.NotAfter)
				}
			}
		})
	}
}

func TestDecodeCertificatesSerialForm(t *testing.T) {
	// WeChat writes serials in upper-case hex without leading zeros; a lower-case serial_no is a
	// different string and must not match.
	a, _ := testCerts(t)
	key, err := signer.NewAEADKey([]byte("0123456789abcdef0123456789ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	if a.serial != strings.ToUpper(a.serial) || strings.HasPrefix(a.serial, "0") {
		t.Fatalf("test serial %q is not in WeChat's form", a.serial)
	}
	body := certificatesAnswerJSON(t, key, answerEntry{cert: a, serialNo: strings.ToLower(a.serial)})
	if _, err := DecodeCertificates(body, key, newFakeClock().Now()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("lower-case serial_no: err = %v, want a mismatch", err)
	}
}

// TestNewPayKeysDefaults checks that a zero or negative RefreshEvery or MinRefreshGap takes the
// documented default and any positive value is kept. (newTestPayKeys replaces zeros itself, so
// this calls NewPayKeys directly.)
func TestNewPayKeysDefaults(t *testing.T) {
	cases := []struct {
		name               string
		every, gap         time.Duration
		wantEvery, wantGap time.Duration
	}{
		{"zero", 0, 0, 12 * time.Hour, time.Second},
		{"negative", -time.Nanosecond, -time.Hour, 12 * time.Hour, time.Second},
		{"smallest positive", time.Nanosecond, time.Nanosecond, time.Nanosecond, time.Nanosecond},
		{"set", time.Hour, time.Minute, time.Hour, time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := NewPayKeys(PayKeysOptions{RefreshEvery: c.every, MinRefreshGap: c.gap})
			if k.opts.RefreshEvery != c.wantEvery || k.opts.MinRefreshGap != c.wantGap {
				t.Fatalf("RefreshEvery %v, MinRefreshGap %v became %v, %v; want %v, %v",
					c.every, c.gap, k.opts.RefreshEvery, k.opts.MinRefreshGap, c.wantEvery, c.wantGap)
			}
		})
	}
}
