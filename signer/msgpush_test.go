package signer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
)

type msgpushVectors struct {
	GetHandshake struct {
		Token                string `json:"token"`
		Timestamp            string `json:"timestamp"`
		Nonce                string `json:"nonce"`
		Echostr              string `json:"echostr"`
		ExpectedSignature    string `json:"expected_signature"`
		ExpectedResponseBody string `json:"expected_response_body"`
	} `json:"get_handshake"`
	PlainPost struct {
		Token             string `json:"token"`
		Timestamp         string `json:"timestamp"`
		Nonce             string `json:"nonce"`
		ExpectedSignature string `json:"expected_signature"`
		Body              string `json:"body"`
	} `json:"plain_post"`
	SafeModeDecrypt struct {
		Token                string `json:"token"`
		EncodingAESKey       string `json:"encoding_aes_key"`
		AppID                string `json:"appid"`
		Timestamp            string `json:"timestamp"`
		Nonce                string `json:"nonce"`
		ExpectedSignature    string `json:"expected_signature"`
		ExpectedMsgSignature string `json:"expected_msg_signature"`
		Encrypt              string `json:"encrypt"`
		ExpectedMessage      string `json:"expected_message"`
		ExpectedRandom16     string `json:"expected_random16"`
	} `json:"safe_mode_decrypt"`
	SafeModeEncryptReply struct {
		Token                string `json:"token"`
		EncodingAESKey       string `json:"encoding_aes_key"`
		AppID                string `json:"appid"`
		Random16             string `json:"random16"`
		Message              string `json:"message"`
		Timestamp            string `json:"timestamp"`
		Nonce                string `json:"nonce"`
		ExpectedEncrypt      string `json:"expected_encrypt"`
		ExpectedMsgSignature string `json:"expected_msg_signature"`
	} `json:"safe_mode_encrypt_reply"`
}

func loadMsgpushVectors(t testing.TB) msgpushVectors {
	t.Helper()
	var v msgpushVectors
	readVectors(t, "msgpush.json", &v)
	if v.GetHandshake.ExpectedSignature == "" || v.PlainPost.ExpectedSignature == "" ||
		v.SafeModeDecrypt.Encrypt == "" || v.SafeModeEncryptReply.ExpectedEncrypt == "" {
		t.Fatal("msgpush.json lacks a vector")
	}
	return v
}

func random16Of(t testing.TB, s string) [16]byte {
	t.Helper()
	var r [16]byte
	if len(s) != 16 {
		t.Fatalf("random16 %q is not 16 bytes", s)
	}
	copy(r[:], s)
	return r
}

func TestPushSignatureVectors(t *testing.T) {
	v := loadMsgpushVectors(t)
	g := v.GetHandshake
	if got := PushSignature(g.Token, g.Timestamp, g.Nonce); got != g.ExpectedSignature {
		t.Errorf("handshake signature = %s, want %s", got, g.ExpectedSignature)
	}
	if g.ExpectedResponseBody != g.Echostr {
		t.Errorf("handshake answers %q, not echostr %q", g.ExpectedResponseBody, g.Echostr)
	}
	// The order of the parts does not matter: they are sorted first.
	if got := PushSignature(g.Nonce, g.Token, g.Timestamp); got != g.ExpectedSignature {
		t.Errorf("signature depends on argument order: %s", got)
	}
	p := v.PlainPost
	if got := PushSignature(p.Token, p.Timestamp, p.Nonce); got != p.ExpectedSignature {
		t.Errorf("plain POST signature = %s, want %s", got, p.ExpectedSignature)
	}
	d := v.SafeModeDecrypt
	if got := PushSignature(d.Token, d.Timestamp, d.Nonce); got != d.ExpectedSignature {
		t.Errorf("safe-mode signature = %s, want %s", got, d.ExpectedSignature)
	}
	if got := PushSignature(d.Token, d.Timestamp, d.Nonce, d.Encrypt); got != d.ExpectedMsgSignature {
		t.Errorf("safe-mode msg_signature = %s, want %s", got, d.ExpectedMsgSignature)
	}
	e := v.SafeModeEncryptReply
	if got := PushSignature(e.Token, e.Timestamp, e.Nonce, e.ExpectedEncrypt); got != e.ExpectedMsgSignature {
		t.Errorf("reply MsgSignature = %s, want %s", got, e.ExpectedMsgSignature)
	}
	parts := []string{"b", "a", "c"}
	PushSignature(parts...)
	if parts[0] != "b" || parts[1] != "a" {
		t.Error("PushSignature reordered the caller's slice")
	}
	// sha1("") for no parts, sha1 of the sorted concatenation for more than four.
	if got := PushSignature(); got != "da39a3ee5e6b4b0d3255bfef95601890afd80709" {
		t.Errorf("PushSignature() = %s", got)
	}
	if PushSignature("e", "d", "c", "b", "a") != PushSignature("abcde") {
		t.Error("five parts are not sorted and joined")
	}
}

// TestVerifyPushSignature checks VerifyPushSignature against the vectors: it refuses a changed
// digit, a short signature, a changed or missing part and uppercase hex (the vector's signature
// has letters), and PushSignature leaves the caller's parts in their order.
func TestVerifyPushSignature(t *testing.T) {
	d := loadMsgpushVectors(t).SafeModeDecrypt
	parts := []string{d.Token, d.Timestamp, d.Nonce, d.Encrypt}
	if PushSignature(parts...); parts[0] != d.Token || parts[3] != d.Encrypt {
		t.Error("PushSignature changed the order of the caller's parts")
	}
	good := []byte(d.ExpectedMsgSignature)
	if !VerifyPushSignature(good, parts...) {
		t.Fatal("the vector's msg_signature does not verify")
	}
	bad := append([]byte(nil), good...)
	bad[7] = '0'
	if good[7] == '0' {
		bad[7] = '1'
	}
	changed := []byte(d.Nonce)
	changed[0] ^= 1
	for name, ok := range map[string]bool{
		"a changed digit":  VerifyPushSignature(bad, parts...),
		"a short one":      VerifyPushSignature(good[:39], parts...),
		"a changed nonce":  VerifyPushSignature(good, parts[0], parts[1], string(changed), parts[3]),
		"a missing part":   VerifyPushSignature(good, parts[:3]...),
		"an empty one":     VerifyPushSignature(nil, parts...),
		"the plain one":    VerifyPushSignature([]byte(d.ExpectedSignature), parts...),
		"uppercase digits": VerifyPushSignature(bytes.ToUpper(good), parts...),
	} {
		if ok {
			t.Errorf("%s verifies", name)
		}
	}
}

func TestPushDecryptVector(t *testing.T) {
	d := loadMsgpushVectors(t).SafeModeDecrypt
	c, err := NewPushCrypter(d.EncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	msg, appID, err := c.Decrypt(d.Encrypt)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(msg) != d.ExpectedMessage || appID != d.AppID {
		t.Fatalf("Decrypt = %q, %q; want %q, %q", msg, appID, d.ExpectedMessage, d.AppID)
	}
	random, _, _, err := c.decrypt(d.Encrypt)
	if err != nil || string(random) != d.ExpectedRandom16 {
		t.Fatalf("random prefix = %q, %v; want %q", random, err, d.ExpectedRandom16)
	}
	// Encrypting again with the same random prefix gives back the same Encrypt (pad 19 to 224).
	if got := c.Encrypt(random16Of(t, d.ExpectedRandom16), msg, appID); got != d.Encrypt {
		t.Fatalf("re-encrypt = %s, want %s", got, d.Encrypt)
	}
}

func TestPushEncryptVector(t *testing.T) {
	e := loadMsgpushVectors(t).SafeModeEncryptReply
	c, err := NewPushCrypter(e.EncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Encrypt(random16Of(t, e.Random16), []byte(e.Message), e.AppID)
	if got != e.ExpectedEncrypt {
		t.Fatalf("Encrypt = %s, want %s", got, e.ExpectedEncrypt)
	}
	msg, appID, err := c.Decrypt(got)
	if err != nil || string(msg) != e.Message || appID != e.AppID {
		t.Fatalf("Decrypt(Encrypt) = %q, %q, %v", msg, appID, err)
	}
}

// TestPushClassicSample is the WXBizMsgCrypt sample of docs/protocol/message-push.md §6.2 (official
// cryptoDemo): its EncodingAESKey ends in a character with non-zero dropped bits, and its pad is 2.
func TestPushClassicSample(t *testing.T) {
	const (
		encrypt = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
	)
	if got := PushSignature("spamtest", "1409735669", "1320562132", encrypt); got != "5d197aaffba7e9b25a30732f161a50dee96bd5fa" {
		t.Errorf("msg_signature = %s", got)
	}
	c, err := NewPushCrypter("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if err != nil {
		t.Fatal(err)
	}
	random, msg, appID, err := c.decrypt(encrypt)
	if err != nil {
		t.Fatal(err)
	}
	if string(random) != "89465c840c5f116f" || len(msg) != 280 || appID != "wx2c2769f8efd9abc2" ||
		!strings.Contains(string(msg), "abcdteT") || !strings.Contains(string(msg), "6054768590064713728") {
		t.Fatalf("decrypt = %q, %d bytes %q, %q", random, len(msg), msg, appID)
	}
	if got := c.Encrypt(random16Of(t, string(random)), msg, appID); got != encrypt {
		t.Fatalf("re-encrypt differs: %s", got)
	}
}

func TestNewPushCrypterErrors(t *testing.T) {
	for name, k := range map[string]string{
		"empty":            "",
		"42 chars":         strings.Repeat("A", 42),
		"44 chars":         strings.Repeat("A", 44),
		"43 with padding":  strings.Repeat("A", 42) + "=",
		"not base64":       strings.Repeat("!", 43),
		"url-safe":         strings.Repeat("A", 42) + "-",
		"secret not shown": "SECRETSECRETSECRETSECRETSECRETSECRETSECRE*",
	} {
		_, err := NewPushCrypter(k)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
}

func TestPushDecryptErrors(t *testing.T) {
	const key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	c, err := NewPushCrypter(key)
	if err != nil {
		t.Fatal(err)
	}
	// rawCBC encrypts plain (a multiple of 16 bytes) as it is: no padding added.
	rawKey, _ := base64.StdEncoding.DecodeString(key + "=")
	block, _ := aes.NewCipher(rawKey)
	rawCBC := func(plain []byte) string {
		out := append([]byte(nil), plain...)
		cipher.NewCBCEncrypter(block, rawKey[:16]).CryptBlocks(out, out)
		return base64.StdEncoding.EncodeToString(out)
	}
	// frame builds random16 + length + msg + appid + pad bytes of value padByte.
	frame := func(msgLen uint32, body string, pad int, padByte byte) []byte {
		b := append([]byte("0123456789abcdef"), 0, 0, 0, 0)
		binary.BigEndian.PutUint32(b[16:], msgLen)
		b = append(b, body...)
		for range pad {
			b = append(b, padByte)
		}
		return b
	}
	if msg, appID, err := c.Decrypt(rawCBC(frame(3, "abcwx1", 6, 6))); err != nil || string(msg) != "abc" || appID != "wx1" {
		t.Fatalf("well-formed frame: %q, %q, %v", msg, appID, err)
	}
	if msg, appID, err := c.Decrypt(rawCBC(frame(0, "", 12, 12))); err != nil || len(msg) != 0 || appID != "" {
		t.Fatalf("empty frame: %q, %q, %v", msg, appID, err)
	}
	// A full 32-byte pad block, and a pad larger than 16 (a stock PKCS#7 unpadder rejects both).
	if _, _, err := c.Decrypt(rawCBC(frame(4, "abcdwx123456", 32, 32))); err != nil {
		t.Fatalf("pad 32: %v", err)
	}
	bad := map[string]string{
		"empty":                "",
		"not base64":           "!!!!",
		"one byte short":       base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"not a block":          base64.StdEncoding.EncodeToString(make([]byte, 40)),
		"pad 0":                rawCBC(frame(3, "abcwx1", 6, 0)),
		"pad 33":               rawCBC(frame(3, "abcwx1", 6, 33)),
		"pad 255":              rawCBC(frame(3, "abcwx1", 6, 255)),
		"pad mismatched":       rawCBC(append(frame(3, "abcwx1", 5, 0), 26)),
		"pad bytes differ":     rawCBC(append(frame(3, "abcwx1", 5, 7), 6)),
		"msg_len past the end": rawCBC(frame(7, "abcwx1", 6, 6)),
		"msg_len huge":         rawCBC(frame(0xffffffff, "abcwx1", 6, 6)),
		"shorter than header":  rawCBC(append([]byte("0123456789abcdef0"), []byte(strings.Repeat("\x0f", 15))...)),
		"only padding":         rawCBC([]byte(strings.Repeat("\x20", 32))),
		"pad longer than data": rawCBC([]byte(strings.Repeat("\x20", 16))),
	}
	for name, enc := range bad {
		if msg, appID, err := c.Decrypt(enc); err == nil {
			t.Errorf("%s: decrypted to %q, %q", name, msg, appID)
		}
	}
	// The length error counts the bytes after the 20-byte header: 6 (abcwx1), not 46.
	if _, _, err := c.Decrypt(bad["msg_len past the end"]); err == nil || !strings.Contains(err.Error(), "message length 7 exceeds the 6 bytes left") {
		t.Errorf("msg_len past the end: %v", err)
	}
	other, _ := NewPushCrypter("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if _, _, err := other.Decrypt(loadMsgpushVectors(t).SafeModeDecrypt.Encrypt); err == nil {
		t.Error("decrypted with another key")
	}
	var zero PushCrypter
	if _, _, err := zero.Decrypt("AAAA"); err == nil {
		t.Error("zero PushCrypter decrypted")
	}
}

func TestPushRoundTrip(t *testing.T) {
	c, err := NewPushCrypter("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if err != nil {
		t.Fatal(err)
	}
	var r [16]byte
	// An appid longer than the message and the header (the buffer is sized from all three).
	for _, wantApp := range []string{"wxba5fad812f8e6fb9", "", strings.Repeat("w", 100)} {
		for n := range 70 {
			r[n%16]++
			msg := []byte(strings.Repeat("m", n))
			enc := c.Encrypt(r, msg, wantApp)
			raw, _ := base64.StdEncoding.DecodeString(enc)
			if len(raw)%32 != 0 {
				t.Fatalf("%d-byte message encrypts to %d bytes, not a multiple of 32", n, len(raw))
			}
			got, appID, err := c.Decrypt(enc)
			if err != nil || string(got) != string(msg) || appID != wantApp {
				t.Fatalf("round trip of %d bytes with appid %q: %q, %q, %v", n, wantApp, got, appID, err)
			}
		}
	}
}
