package signer

// AEAD_AES_256_GCM with the APIv3 key (spec/wechatpay.md §3.3, §4.1).

// AEADKey decrypts (and, for the emulator, encrypts) APIv3 resources. It is safe for concurrent use.
type AEADKey struct{}

// NewAEADKey prepares an APIv3 key; it must be exactly 32 bytes.
func NewAEADKey(apiv3Key []byte) (*AEADKey, error) { panic("todo") }

// Open decrypts base64 ciphertext (tag last) with nonce and associated data as raw strings,
// appending the plaintext to dst. The nonce must be 12 bytes.
func (k *AEADKey) Open(dst []byte, nonce, associatedData, ciphertextB64 string) ([]byte, error) {
	panic("todo")
}

// Seal encrypts plaintext and returns the base64 ciphertext with the tag appended.
func (k *AEADKey) Seal(nonce, associatedData string, plaintext []byte) (string, error) {
	panic("todo")
}
