package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"sync"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// Tamper is a way the emulator forges its next APIv3 answers, to prove that a client verifies
// them: a client must reject every one of these.
type Tamper string

// The forgeries the emulator can send.
const (
	TamperNone           Tamper = ""
	TamperSignTest       Tamper = "signtest"        // a WECHATPAY/SIGNTEST/ probe signature
	TamperBody           Tamper = "body"            // the body changed after signing
	TamperStaleTimestamp Tamper = "stale_timestamp" // a valid signature over a timestamp 10 minutes old
	TamperForeignKey     Tamper = "foreign_key"     // signed with a key WeChat Pay never published, under a real serial
	TamperUnknownSerial  Tamper = "unknown_serial"  // signed under a serial nobody published
	TamperUnsigned       Tamper = "unsigned"        // no Wechatpay-* signature headers at all
)

// staleBy is how old a TamperStaleTimestamp answer claims to be.
const staleBy = 10 * time.Minute

// unknownSerial is the serial TamperUnknownSerial answers name.
const unknownSerial = "7E57F0A9E0000000000000000000000000000001"

// TamperNext forges the next n signed APIv3 answers in the given way (n <= 0 stops forging).
// TamperBody also changes unsigned file downloads (a bill, a receipt) on their way, as a man in
// the middle would after WeChat Pay announced their hash; each counts as one of the n.
func (e *Emulator) TamperNext(t Tamper, n int) {
	k := e.mch.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tamper, k.tamperLeft = t, max(n, 0)
}

var (
	foreignOnce sync.Once
	foreign     *signer.RSASigner
)

// foreignSigner is a key of nobody's: generated once per process.
func foreignSigner() *signer.RSASigner {
	foreignOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("emulator: generate a key: " + err.Error())
		}
		foreign = signer.NewRSASigner(k)
	})
	return foreign
}

// tamperedFile returns a downloaded file with one byte of its content changed; a gzip file is
// changed inside and compressed again, so that only its content's hash tells.
func tamperedFile(file []byte, fileType string) []byte {
	if fileType != "application/gzip" {
		return tamperedBody(file)
	}
	zr, err := gzip.NewReader(bytes.NewReader(file))
	if err != nil {
		return tamperedBody(file)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return tamperedBody(file)
	}
	z, err := gzipBytes(tamperedBody(plain))
	if err != nil {
		return tamperedBody(file)
	}
	return z
}

// tamperedBody returns body with one byte changed (or, when empty, a body where none was signed).
func tamperedBody(body []byte) []byte {
	if len(body) == 0 {
		return []byte("{}")
	}
	out := bytes.Clone(body)
	for i, c := range out {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '8' {
			out[i] = c ^ 0x01 // still valid JSON, a different message
			return out
		}
	}
	out[len(out)-1] ^= 0x01
	return out
}
