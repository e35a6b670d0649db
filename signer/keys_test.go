package signer

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"sync"
	"testing"

	"github.com/wxgate/wxgate/internal/vectors"
)

// readVectors unmarshals the named file of shared/spec/vectors into v.
func readVectors(t testing.TB, name string, v any) {
	t.Helper()
	raw, err := vectors.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
}

// readVectorFile returns the raw bytes of the named file of shared/spec/vectors.
func readVectorFile(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := vectors.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// officialKey returns the official test private key (official_test_key.pem, PKCS#1).
func officialKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := ParsePrivateKey(readVectorFile(t, "official_test_key.pem"))
	if err != nil {
		t.Fatalf("ParsePrivateKey(official_test_key.pem): %v", err)
	}
	return key
}

// examplePublicKey returns the WeChat Pay public key of the response-verification example.
func examplePublicKey(t testing.TB) *rsa.PublicKey {
	t.Helper()
	key, err := ParsePublicKey(readVectorFile(t, "wechatpay_public_key_example.pem"))
	if err != nil {
		t.Fatalf("ParsePublicKey(wechatpay_public_key_example.pem): %v", err)
	}
	return key
}

var generated struct {
	once sync.Once
	key  *rsa.PrivateKey
	err  error
}

// generatedKey returns a fresh 2048-bit key, made once per test binary: RSA key generation is
// slow, more so under the race detector.
func generatedKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	generated.once.Do(func() { generated.key, generated.err = rsa.GenerateKey(rand.Reader, 2048) })
	if generated.err != nil {
		t.Fatalf("generate RSA key: %v", generated.err)
	}
	return generated.key
}
