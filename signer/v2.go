package signer

// WeChat Pay APIv2 (legacy XML) signing (spec/wechatpay.md §7, §8).

// APIv2 sign types.
const (
	V2SignMD5        = "MD5"
	V2SignHMACSHA256 = "HMAC-SHA256"
)

// Param is one APIv2 parameter.
type Param struct {
	Key, Value string
}

// V2Key is a merchant's APIv2 key, ready to sign. It is safe for concurrent use.
type V2Key struct{}

// NewV2Key prepares an APIv2 key.
func NewV2Key(apiKey string) *V2Key { panic("todo") }

// AppendStringA appends the sorted "k1=v1&k2=v2" string of params, dropping empty values and the
// "sign" parameter. params is sorted in place.
func AppendStringA(dst []byte, params []Param) []byte { panic("todo") }

// AppendSign appends the upper-case hex sign of params for signType (V2SignMD5 or
// V2SignHMACSHA256; "" means MD5): over stringA + "&key=" + API key. params is sorted in place.
func (k *V2Key) AppendSign(dst []byte, signType string, params []Param) ([]byte, error) {
	panic("todo")
}

// Verify checks the "sign" among params with signType (or, when signType is "", the sign_type
// parameter, else MD5), in constant time.
func (k *V2Key) Verify(signType string, params []Param) error { panic("todo") }

// DecryptRefundInfo decrypts a refund notification's req_info: base64, AES-256-ECB with key =
// lower-case hex MD5 of the API key, PKCS#7.
func (k *V2Key) DecryptRefundInfo(reqInfoB64 string) ([]byte, error) { panic("todo") }

// EncryptRefundInfo is the inverse of DecryptRefundInfo (for the emulator).
func (k *V2Key) EncryptRefundInfo(plaintext []byte) string { panic("todo") }

// ParseXML parses a flat APIv2 document <xml><k>v</k>...</xml> (CDATA allowed, no nesting, no
// DOCTYPE or entities) into params in document order. It rejects anything else.
func ParseXML(body []byte) ([]Param, error) { panic("todo") }

// AppendXML appends params as <xml><k><![CDATA[v]]></k>...</xml> (numbers need no CDATA but may
// have it).
func AppendXML(dst []byte, params []Param) []byte { panic("todo") }

// ParamValue returns the value of key in params.
func ParamValue(params []Param, key string) (string, bool) { panic("todo") }
