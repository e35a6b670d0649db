package proxy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/signer"
)

// Sensitive fields of APIv3 (docs/sensitive.md, docs/protocol/wechatpay.md §5): the app names
// the fields wxgate encrypts in the request and decrypts in the answer; it never holds a key.
const (
	// HeaderEncrypt names the request fields to encrypt with WeChat Pay's current key.
	HeaderEncrypt = "X-Wxgate-Encrypt"
	// HeaderDecrypt names the answer fields to decrypt with the merchant key.
	HeaderDecrypt = "X-Wxgate-Decrypt"
	// HeaderDecrypted lists, on an answer, the fields wxgate decrypted (concrete positions).
	HeaderDecrypted = "X-Wxgate-Decrypted"
	// headerWechatpaySerial names the key sensitive fields are encrypted with (and, in public key
	// mode, asks WeChat Pay to sign the answer with the public key).
	headerWechatpaySerial = "Wechatpay-Serial"
)

// Error codes of sensitive fields.
const (
	CodeSensitiveField     = "wxgate.sensitive_field_invalid"
	CodeSensitiveDecrypt   = "wxgate.sensitive_decrypt_failed"
	CodeEncryptKeyMissing  = "wxgate.encryption_key_unavailable"
	CodeSerialConflict     = "wxgate.serial_conflict"
	maxWechatpaySerialSize = 64
)

// sensitiveCall is what one APIv3 request asks of its sensitive fields.
type sensitiveCall struct {
	body    []byte      // the body to sign and send: the app's, or with the named fields encrypted
	serial  []byte      // the Wechatpay-Serial to send; nil keeps wxgate's default
	decrypt []fieldPath // the answer fields to decrypt
}

// prepareSensitive reads X-Wxgate-Encrypt, X-Wxgate-Decrypt and the app's Wechatpay-Serial.
// Nothing is sent when it fails. Without those headers it returns body as is and allocates
// nothing.
func (g *generation) prepareSensitive(ctx *fasthttp.RequestCtx, m *merchantState, method string, body []byte) (sensitiveCall, *apiError) {
	sc := sensitiveCall{body: body}
	h := &ctx.Request.Header
	enc, dec, appSerial := h.Peek(HeaderEncrypt), h.Peek(HeaderDecrypt), h.Peek(headerWechatpaySerial)
	if len(enc) == 0 && len(dec) == 0 && len(appSerial) == 0 {
		return sc, nil
	}
	bad := func(msg string) *apiError { return newError(fasthttp.StatusBadRequest, CodeSensitiveField, msg) }
	if len(appSerial) > 0 {
		if !validSerial(appSerial) {
			return sc, newError(fasthttp.StatusBadRequest, CodeBadRequest,
				"Wechatpay-Serial must be the serial POST /wxgate/v3/encrypt returned (letters, digits, _ and -, at most 64)")
		}
		sc.serial = appSerial
	}
	if len(dec) > 0 {
		paths, err := parseFieldPaths(HeaderDecrypt, dec)
		if err != nil {
			return sc, bad(err.Error())
		}
		sc.decrypt = paths
	}
	if len(enc) == 0 {
		return sc, nil
	}
	paths, err := parseFieldPaths(HeaderEncrypt, enc)
	if err != nil {
		return sc, bad(err.Error())
	}
	if len(body) == 0 || method == fasthttp.MethodGet {
		return sc, bad(HeaderEncrypt + " needs a JSON body holding the fields it names")
	}
	if jsonscan.Object(body) != nil {
		return sc, newError(fasthttp.StatusBadRequest, CodeBodyNotJSON, HeaderEncrypt+" needs the body to be a JSON object")
	}
	hits, err := findFields(body, paths, true)
	if err != nil {
		return sc, bad(fmt.Sprintf("%s: the body's %v; nothing was sent", HeaderEncrypt, err))
	}
	serial, pub, err := m.keys.EncryptionKey()
	if err != nil {
		return sc, newError(fasthttp.StatusServiceUnavailable, CodeEncryptKeyMissing,
			fmt.Sprintf("merchant %q: %v; nothing was sent", m.name, err))
	}
	if sc.serial != nil && string(sc.serial) != serial {
		return sc, newError(fasthttp.StatusBadRequest, CodeSerialConflict,
			fmt.Sprintf("the request's Wechatpay-Serial %q is not WeChat Pay's current key %q that %s encrypts with; send one or the other, not both", truncate(sc.serial, 64), serial, HeaderEncrypt))
	}
	out, err := replaceFields(body, hits, func(h fieldHit, value string) ([]byte, error) {
		ct, err := signer.EncryptOAEP(pub, []byte(value))
		if err != nil {
			if errors.Is(err, signer.ErrPlaintextTooLong) {
				return nil, &fieldError{where: h.where, err: fmt.Errorf("is %d bytes, longer than the %d one RSA-OAEP block holds", len(value), signer.MaxOAEPPlaintext(pub))}
			}
			return nil, err
		}
		return append(append(append(make([]byte, 0, len(ct)+2), '"'), ct...), '"'), nil
	})
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return sc, bad(fmt.Sprintf("%s: the body's %v; nothing was sent", HeaderEncrypt, err))
		}
		return sc, newError(fasthttp.StatusInternalServerError, CodeInternal, "encrypting a sensitive field failed: "+err.Error())
	}
	sc.body = out
	sc.serial = []byte(serial)
	return sc, nil
}

// validSerial reports whether s looks like a certificate serial or a public key id.
func validSerial(s []byte) bool {
	if len(s) > maxWechatpaySerialSize {
		return false
	}
	return validPathName(string(s))
}

// decryptAnswer replaces the named fields of a verified 2xx answer, now in ctx.Response, with
// their plaintext (decrypted with the merchant key), removes Wechatpay-Signature (it covered the
// ciphertexts, not this body) and lists what it decrypted in X-Wxgate-Decrypted. An absent or
// null field is left alone; a field that does not decrypt fails the call with a 502 naming it.
func (g *generation) decryptAnswer(ctx *fasthttp.RequestCtx, m *merchantState, paths []fieldPath) *apiError {
	body := ctx.Response.Body()
	if len(body) == 0 || jsonscan.Object(body) != nil {
		return nil // not JSON (a 204, a file): nothing to decrypt
	}
	fail := func(msg string) *apiError {
		g.rate.error("sensitive-decrypt\x00"+m.name, "a sensitive field of a verified WeChat Pay answer did not decrypt; the answer was not passed on",
			"merchant", m.name, "reason", msg, "request_id", requestID(ctx))
		return newError(fasthttp.StatusBadGateway, CodeSensitiveDecrypt, msg+"; the answer was verified but not passed on")
	}
	hits, err := findFields(body, paths, false)
	if err != nil {
		return fail(fmt.Sprintf("%s: the answer's %v", HeaderDecrypt, err))
	}
	if len(hits) == 0 {
		return nil
	}
	if err := g.signing.Acquire(); err != nil { // RSA decryption costs what a signature costs
		g.metrics.overloaded.Inc()
		return newError(fasthttp.StatusServiceUnavailable, CodeOverloaded, err.Error())
	}
	held := time.Now()
	var done []string
	out, err := replaceFields(body, hits, func(h fieldHit, value string) ([]byte, error) {
		pt, err := m.signer.DecryptOAEP(value)
		if err != nil {
			return nil, &fieldError{where: h.where, err: errors.New("does not decrypt with the merchant key (RSA-OAEP); WeChat Pay encrypts it with the merchant certificate's key")}
		}
		done = append(done, h.where)
		return jsonscan.AppendString(nil, string(pt)), nil
	})
	g.signing.Release(time.Since(held))
	if err != nil {
		return fail(fmt.Sprintf("%s: the answer's %v", HeaderDecrypt, err))
	}
	ctx.Response.SetBody(out)
	ctx.Response.Header.Del("Wechatpay-Signature")
	ctx.Response.Header.Set(HeaderDecrypted, strings.Join(done, ","))
	return nil
}
