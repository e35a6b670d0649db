package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/signer"
)

// Helper endpoints for apps that build sensitive bodies themselves (docs/sensitive.md). The app
// must send the returned serial as Wechatpay-Serial with the call that carries the ciphertexts.
const (
	PathV3Encrypt = "/wxgate/v3/encrypt"
	PathV3Decrypt = "/wxgate/v3/decrypt"
)

// maxHelperValues bounds one helper call.
const maxHelperValues = 100

// sensitiveHelperIn is the body of both helpers.
type sensitiveHelperIn struct {
	MchID       string   `json:"mchid"`
	Values      []string `json:"values"`
	Ciphertexts []string `json:"ciphertexts"`
}

// EncryptAnswer is the answer of POST /wxgate/v3/encrypt.
type EncryptAnswer struct {
	MchID       string   `json:"mchid"`
	Serial      string   `json:"serial"` // send it as Wechatpay-Serial
	Ciphertexts []string `json:"ciphertexts"`
}

// DecryptAnswer is the answer of POST /wxgate/v3/decrypt.
type DecryptAnswer struct {
	MchID      string   `json:"mchid"`
	Plaintexts []string `json:"plaintexts"`
}

// readSensitiveHelper checks the method and body and picks the merchant: the body's mchid, else
// X-Wxgate-Merchant, else the first merchant.
func (g *generation) readSensitiveHelper(ctx *fasthttp.RequestCtx, shape string) (*merchantState, sensitiveHelperIn, *apiError) {
	var in sensitiveHelperIn
	if !ctx.IsPost() {
		return nil, in, newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, string(ctx.Path())+" takes POST "+shape)
	}
	if jsonscan.Object(ctx.PostBody()) != nil || json.Unmarshal(ctx.PostBody(), &in) != nil {
		return nil, in, newError(fasthttp.StatusBadRequest, CodeBodyNotJSON, "the body must be a JSON object "+shape)
	}
	m, aerr := g.merchant(ctx)
	if in.MchID != "" {
		m, aerr = g.merchantByMchID(ctx, in.MchID)
	}
	return m, in, aerr
}

// merchantByMchID finds the configured merchant with mchid; X-Wxgate-Merchant, when sent, must
// name the same one.
func (g *generation) merchantByMchID(ctx *fasthttp.RequestCtx, mchID string) (*merchantState, *apiError) {
	var found *merchantState
	for _, m := range g.merchants {
		if m.mchID == mchID {
			found = m
			break
		}
	}
	if found == nil {
		return nil, newError(fasthttp.StatusBadRequest, CodeUnknownMerchant,
			fmt.Sprintf(`"mchid" %q is no configured merchant's mchid; leave it out to use %s or the first merchant`, truncate([]byte(mchID), 40), HeaderMerchant))
	}
	if name := ctx.Request.Header.Peek(HeaderMerchant); len(name) > 0 && string(name) != found.name {
		return nil, newError(fasthttp.StatusBadRequest, CodeUnknownMerchant,
			fmt.Sprintf(`"mchid" %q is merchant %q, but %s names %q`, mchID, found.name, HeaderMerchant, truncate(name, 40)))
	}
	return found, nil
}

// serveV3Encrypt encrypts values with WeChat Pay's current key for the merchant and returns the
// serial the app must send as Wechatpay-Serial.
func (g *generation) serveV3Encrypt(ctx *fasthttp.RequestCtx) {
	const shape = `{"mchid": string (optional), "values": [string, ...]}`
	m, in, aerr := g.readSensitiveHelper(ctx, shape)
	if aerr == nil && (len(in.Values) == 0 || len(in.Values) > maxHelperValues) {
		aerr = newError(fasthttp.StatusBadRequest, CodeSensitiveField, fmt.Sprintf(`"values" must hold 1 to %d strings to encrypt`, maxHelperValues))
	}
	if aerr != nil {
		g.fail(ctx, routeV3, aerr)
		return
	}
	serial, pub, err := m.keys.EncryptionKey()
	if err != nil {
		g.fail(ctx, routeV3, newError(fasthttp.StatusServiceUnavailable, CodeEncryptKeyMissing, fmt.Sprintf("merchant %q: %v", m.name, err)))
		return
	}
	out := EncryptAnswer{MchID: m.mchID, Serial: serial, Ciphertexts: make([]string, len(in.Values))}
	for i, v := range in.Values {
		ct, err := signer.EncryptOAEP(pub, []byte(v))
		if err != nil {
			msg := fmt.Sprintf(`"values"[%d] could not be encrypted`, i)
			if errors.Is(err, signer.ErrPlaintextTooLong) {
				msg = fmt.Sprintf(`"values"[%d] is %d bytes; one RSA-OAEP block holds at most %d`, i, len(v), signer.MaxOAEPPlaintext(pub))
			}
			g.fail(ctx, routeV3, newError(fasthttp.StatusBadRequest, CodeSensitiveField, msg))
			return
		}
		out.Ciphertexts[i] = ct
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
	g.observe(ctx, routeV3, fasthttp.StatusOK)
}

// serveV3Decrypt decrypts ciphertexts WeChat Pay encrypted for the merchant's key.
func (g *generation) serveV3Decrypt(ctx *fasthttp.RequestCtx) {
	const shape = `{"mchid": string (optional), "ciphertexts": [string, ...]}`
	m, in, aerr := g.readSensitiveHelper(ctx, shape)
	if aerr == nil && (len(in.Ciphertexts) == 0 || len(in.Ciphertexts) > maxHelperValues) {
		aerr = newError(fasthttp.StatusBadRequest, CodeSensitiveField, fmt.Sprintf(`"ciphertexts" must hold 1 to %d base64 strings to decrypt`, maxHelperValues))
	}
	if aerr != nil {
		g.fail(ctx, routeV3, aerr)
		return
	}
	if err := g.signing.Acquire(); err != nil { // RSA decryption costs what a signature costs
		g.metrics.overloaded.Inc()
		g.fail(ctx, routeV3, newError(fasthttp.StatusServiceUnavailable, CodeOverloaded, err.Error()))
		return
	}
	held := time.Now()
	out := DecryptAnswer{MchID: m.mchID, Plaintexts: make([]string, len(in.Ciphertexts))}
	bad := -1
	for i, c := range in.Ciphertexts {
		pt, err := m.signer.DecryptOAEP(c)
		if err != nil {
			bad = i
			break
		}
		out.Plaintexts[i] = string(pt)
	}
	g.signing.Release(time.Since(held))
	if bad >= 0 {
		g.fail(ctx, routeV3, newError(fasthttp.StatusBadRequest, CodeSensitiveDecrypt,
			fmt.Sprintf(`"ciphertexts"[%d] does not decrypt with merchant %q's key (RSA-OAEP, base64); only fields WeChat Pay encrypted for this merchant do`, bad, m.name)))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
	g.observe(ctx, routeV3, fasthttp.StatusOK)
}
