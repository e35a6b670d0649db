package signer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestOAEPVector decrypts a ciphertext OpenSSL made for the official test key: wxgate reads what
// another implementation of WeChat Pay's OAEP (SHA-1, MGF1-SHA-1) writes.
func TestOAEPVector(t *testing.T) {
	var v struct {
		PrivateKeyFile string `json:"private_key_file"`
		Plaintext      string `json:"plaintext"`
		Ciphertext     string `json:"ciphertext"`
	}
	raw, err := os.ReadFile("testdata/oaep_openssl.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	key, err := ParsePrivateKey(readVectorFile(t, v.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := DecryptOAEP(key, v.Ciphertext)
	if err != nil || string(pt) != v.Plaintext {
		t.Fatalf("DecryptOAEP(OpenSSL vector) = %q, %v; want %q", pt, err, v.Plaintext)
	}
	if pt, err := NewRSASigner(key).DecryptOAEP(v.Ciphertext); err != nil || string(pt) != v.Plaintext {
		t.Fatalf("RSASigner.DecryptOAEP = %q, %v", pt, err)
	}
}

// TestOAEPRoundTripStandardLibrary encrypts with wxgate and decrypts with the standard library
// (SHA-1 OAEP, no label), and the reverse, with the official test key.
func TestOAEPRoundTripStandardLibrary(t *testing.T) {
	key := officialKey(t)
	for _, plain := range []string{"张三", "a", strings.Repeat("x", MaxOAEPPlaintext(&key.PublicKey)), "13800138000"} {
		ct, err := EncryptOAEP(&key.PublicKey, []byte(plain))
		if err != nil {
			t.Fatalf("EncryptOAEP(%d bytes): %v", len(plain), err)
		}
		raw, err := base64.StdEncoding.DecodeString(ct)
		if err != nil {
			t.Fatalf("ciphertext is not standard base64: %v", err)
		}
		got, err := rsa.DecryptOAEP(sha1.New(), nil, key, raw, nil)
		if err != nil || string(got) != plain {
			t.Fatalf("standard library decrypt of wxgate's ciphertext = %q, %v; want %q", got, err, plain)
		}
		if _, err := rsa.DecryptOAEP(sha256.New(), nil, key, raw, nil); err == nil {
			t.Fatal("wxgate's ciphertext decrypts as SHA-256 OAEP: the hash must be SHA-1")
		}
		again, _ := EncryptOAEP(&key.PublicKey, []byte(plain))
		if again == ct {
			t.Fatal("two encryptions gave the same ciphertext: OAEP must be randomized")
		}
		std, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &key.PublicKey, []byte(plain), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecryptOAEP(key, base64.StdEncoding.EncodeToString(std)); err != nil || string(got) != plain {
			t.Fatalf("wxgate decrypt of the standard library's ciphertext = %q, %v", got, err)
		}
	}
}

// TestOAEPErrors covers too-long values, foreign keys, SHA-256 ciphertexts and garbage; errors
// never quote the plaintext.
func TestOAEPErrors(t *testing.T) {
	key := officialKey(t)
	other := generatedKey(t)
	long := strings.Repeat("秘", 72) // 216 bytes > 214
	if _, err := EncryptOAEP(&key.PublicKey, []byte(long)); !errors.Is(err, ErrPlaintextTooLong) || strings.Contains(err.Error(), "秘") {
		t.Fatalf("too long: %v", err)
	}
	if _, err := EncryptOAEP(nil, []byte("x")); err == nil {
		t.Fatal("nil key encrypted")
	}
	foreign, _ := EncryptOAEP(&other.PublicKey, []byte("张三"))
	sha256CT, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &key.PublicKey, []byte("张三"), nil)
	for name, ct := range map[string]string{
		"foreign key":  foreign,
		"sha-256 oaep": base64.StdEncoding.EncodeToString(sha256CT),
		"not base64":   "***",
		"url base64":   strings.NewReplacer("+", "-", "/", "_").Replace(foreign),
		"short":        base64.StdEncoding.EncodeToString([]byte("short")),
		"empty":        "",
	} {
		pt, err := DecryptOAEP(key, ct)
		if !errors.Is(err, ErrDecrypt) || pt != nil {
			t.Errorf("%s: DecryptOAEP = %q, %v; want ErrDecrypt", name, pt, err)
		}
	}
	if _, err := (*RSASigner)(nil).DecryptOAEP(foreign); err == nil {
		t.Fatal("nil signer decrypted")
	}
	if MaxOAEPPlaintext(&key.PublicKey) != 214 {
		t.Fatalf("MaxOAEPPlaintext(2048-bit) = %d, want 214 (wechatpay.md §5)", MaxOAEPPlaintext(&key.PublicKey))
	}
	if NewRSAVerifier(&key.PublicKey).PublicKey() != &key.PublicKey {
		t.Fatal("RSAVerifier.PublicKey does not return its key")
	}
}
