package emulator

import (
	"crypto/rand"

	"github.com/valyala/fasthttp"
)

// certificatesAnswer is the answer of GET /v3/certificates (wechatpay.md §4.1).
type certificatesAnswer struct {
	Data []certificateEntry `json:"data"`
}

// certificateEntry is one platform certificate, encrypted with the merchant's APIv3 key.
type certificateEntry struct {
	SerialNo           string               `json:"serial_no"`
	EffectiveTime      string               `json:"effective_time"`
	ExpireTime         string               `json:"expire_time"`
	EncryptCertificate encryptedCertificate `json:"encrypt_certificate"`
}

// encryptedCertificate is an AEAD_AES_256_GCM resource holding a certificate PEM.
type encryptedCertificate struct {
	Algorithm      string `json:"algorithm"`
	Nonce          string `json:"nonce"`
	AssociatedData string `json:"associated_data"`
	Ciphertext     string `json:"ciphertext"`
}

// certificateAAD is the associated data of encrypted platform certificates.
const certificateAAD = "certificate"

// v3Certificates answers GET /v3/certificates: every unexpired platform certificate for
// merchants that have them, {"data":[]} for public-key merchants.
func (e *Emulator) v3Certificates(c *v3Call) (*v3Reply, *v3Error) {
	ans := &certificatesAnswer{Data: []certificateEntry{}}
	if !c.m.cfg.PlatformCertificates {
		return &v3Reply{status: fasthttp.StatusOK, json: ans}, nil
	}
	for _, pc := range e.platformCerts(c.now) {
		nonce := randomNonce(12)
		ct, err := c.m.aead.Seal(nonce, certificateAAD, pc.pem)
		if err != nil {
			return nil, v3Err(fasthttp.StatusInternalServerError, "SYSTEM_ERROR", "系统错误: encrypt certificate %s: %v", pc.serial, err)
		}
		ans.Data = append(ans.Data, certificateEntry{
			SerialNo:      pc.serial,
			EffectiveTime: rfc3339(pc.cert.NotBefore),
			ExpireTime:    rfc3339(pc.cert.NotAfter),
			EncryptCertificate: encryptedCertificate{
				Algorithm: "AEAD_AES_256_GCM", Nonce: nonce, AssociatedData: certificateAAD, Ciphertext: ct,
			},
		})
	}
	return &v3Reply{status: fasthttp.StatusOK, json: ans}, nil
}

// nonceAlphabet is what WeChat Pay's random strings are made of.
const nonceAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// randomNonce returns n random characters of [0-9a-zA-Z].
func randomNonce(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand contract since Go 1.24)
	for i := range b {
		b[i] = nonceAlphabet[int(b[i])%len(nonceAlphabet)]
	}
	return string(b)
}
