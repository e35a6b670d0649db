package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/credentials"
	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// maxClockSkew is how far a WeChat Pay signature timestamp may be from wxgate's clock.
const maxClockSkew = 300 * time.Second

// billFilePath is the unsigned trade/fund bill file download.
const billFilePath = "/v3/billdownload/file"

// serveV3 signs an APIv3 call with the merchant key, forwards the exact bytes, and verifies
// WeChat Pay's signature on the answer before the app sees it.
func (g *generation) serveV3(ctx *fasthttp.RequestCtx) {
	const kind = routeV3
	m, aerr := g.merchant(ctx)
	if aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	method := string(ctx.Method())
	switch method {
	case fasthttp.MethodGet, fasthttp.MethodPost, fasthttp.MethodPut, fasthttp.MethodPatch, fasthttp.MethodDelete:
	default:
		g.fail(ctx, kind, newError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, "APIv3 takes GET, POST, PUT, PATCH or DELETE"))
		return
	}
	rawURI := ctx.Request.Header.RequestURI() // path?query exactly as the app sent it: signed and sent as is
	body := ctx.PostBody()
	// signed is what the signature covers: the body, or an upload's meta part (outbound_media.go).
	signed, upload := body, false
	if multipart := bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("multipart/")); multipart || isUploadPath(ctx.Path()) {
		if !multipart || method != fasthttp.MethodPost {
			g.refuseUpload(ctx, m, newError(fasthttp.StatusBadRequest, CodeUploadInvalid,
				"a WeChat Pay upload is a POST with a multipart/form-data body of a \"meta\" JSON part and a \"file\" part (docs/media.md)"))
			return
		}
		meta, aerr := uploadMessage(ctx.Request.Header.ContentType(), body, isUploadPath(ctx.Path()))
		if aerr != nil {
			g.refuseUpload(ctx, m, aerr)
			return
		}
		signed, upload = meta, true
	} else if len(body) > 0 && method != fasthttp.MethodGet && jsonscan.Object(body) != nil {
		g.fail(ctx, kind, newError(fasthttp.StatusBadRequest, CodeBodyNotJSON, "an APIv3 body must be the JSON object WeChat Pay documents"))
		return
	}
	sens, aerr := g.prepareSensitive(ctx, m, method, body) // X-Wxgate-Encrypt/-Decrypt, Wechatpay-Serial
	if aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	body = sens.body
	if !upload {
		signed = body // the fields X-Wxgate-Encrypt named, encrypted: what is sent is what is signed
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if aerr := g.signV3(g.mch, m, req, method, rawURI, signed); aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	if sens.serial != nil {
		req.Header.SetBytesV(headerWechatpaySerial, sens.serial) // the key the fields are encrypted with
	}
	if upload {
		req.SetBodyRaw(body) // the whole multipart body as the app sent it
	}
	unsigned := method == fasthttp.MethodGet && isUnsignedPath(ctx.Path())
	if unsigned {
		req.Header.Set(fasthttp.HeaderAccept, "*/*") // a file download (docs/media.md)
	}
	if ct := ctx.Request.Header.ContentType(); len(ct) > 0 && len(body) > 0 {
		req.Header.SetContentTypeBytes(ct)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	api := payAPI(ctx.Path())
	if aerr := g.do(g.mch, api, req, resp); aerr != nil {
		g.fail(ctx, kind, aerr)
		return
	}
	if unsigned || bytes.Equal(ctx.Path(), []byte(billFilePath)) {
		g.relayUnsigned(ctx, m, api, resp)
		return
	}
	if err := g.verifyV3(m, &resp.Header, resp.Body()); err != nil {
		g.answerRefused(ctx, g.mch, api, m, &resp.Header, err)
		g.fail(ctx, kind, newError(fasthttp.StatusBadGateway, CodeResponseSignature,
			fmt.Sprintf("WeChat Pay's answer (HTTP %d) failed verification and was not passed on: %v; query the order before acting on it", resp.StatusCode(), err)))
		return
	}
	if bytes.Equal(ctx.Path(), []byte("/v3/bill/tradebill")) || bytes.Equal(ctx.Path(), []byte("/v3/bill/fundflowbill")) {
		g.bills.remember(resp.Body())
	}
	relay(ctx, resp)
	if sens.decrypt != nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300 {
		if aerr := g.decryptAnswer(ctx, m, sens.decrypt); aerr != nil {
			g.fail(ctx, kind, aerr)
			return
		}
	}
	g.observe(ctx, kind, resp.StatusCode())
}

// signScratch holds the message and the signature of one APIv3 request signature. They cross to
// a signing worker's goroutine, so buffers on the caller's stack would escape to the heap on
// every call.
type signScratch struct{ msg, sig []byte }

// maxPooledBuf bounds the scratch kept in the pool: one grown past it by a large body is left to
// the garbage collector instead of being held for the next request.
const maxPooledBuf = 64 << 10

var signScratchPool = sync.Pool{New: func() any { return &signScratch{msg: make([]byte, 0, 1024), sig: make([]byte, 0, 512)} }}

// put returns sc to the pool unless a large body grew it.
func (sc *signScratch) put() {
	if cap(sc.msg) <= maxPooledBuf {
		sc.msg, sc.sig = sc.msg[:0], sc.sig[:0]
		signScratchPool.Put(sc)
	}
}

// signV3 fills req for WeChat Pay (at mch): URI, method, body, Authorization and the headers
// WeChat requires.
func (g *Gateway) signV3(mch *upstream, m *merchantState, req *fasthttp.Request, method string, rawURI, body []byte) *apiError {
	// The timestamp and nonce stay on the stack: short strings that do not escape.
	var tsBuf [20]byte
	ts := string(strconv.AppendInt(tsBuf[:0], g.clock().Unix(), 10))
	var nonceBuf [32]byte
	nonce := string(appendNonce(nonceBuf[:0]))
	sc := signScratchPool.Get().(*signScratch)
	sc.msg = signer.AppendRequestMessage(sc.msg[:0], method, string(rawURI), ts, nonce, body)
	sig, aerr := g.rsaSign(m, sc.sig[:0], sc.msg)
	if aerr != nil {
		// Not pooled: a worker stopped by shutdown may still hold the buffers.
		return aerr
	}
	sc.sig = sig
	var authBuf [768]byte
	auth := signer.AppendAuthorization(authBuf[:0], m.mchID, nonce, sig, ts, m.serialNo)
	sc.put()
	req.URI().DisablePathNormalizing = true
	var uriBuf [256]byte
	req.SetRequestURIBytes(append(append(uriBuf[:0], mch.base...), rawURI...))
	req.Header.SetMethod(method)
	req.Header.SetBytesV(fasthttp.HeaderAuthorization, auth)
	req.Header.Set(fasthttp.HeaderAccept, "application/json")
	req.Header.SetUserAgent("wxgate")
	if len(body) > 0 {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
	}
	if m.publicKeyID != "" {
		// Asks WeChat Pay to sign the answer with the public key (docs/protocol/wechatpay.md §4.2).
		req.Header.Set("Wechatpay-Serial", m.publicKeyID)
	}
	return nil
}

// verifyV3 checks a WeChat Pay signature (answer or notification) over the raw body: headers
// present, timestamp within 5 minutes, key chosen by Wechatpay-Serial, signature valid. Probes
// (WECHATPAY/SIGNTEST/) fail like any bad signature.
func (g *Gateway) verifyV3(m *merchantState, h headerPeeker, body []byte) error {
	ts, nonce := h.Peek("Wechatpay-Timestamp"), h.Peek("Wechatpay-Nonce")
	sig, serial := h.Peek("Wechatpay-Signature"), h.Peek("Wechatpay-Serial")
	if len(ts) == 0 || len(nonce) == 0 || len(sig) == 0 || len(serial) == 0 {
		return errors.New("it is not signed (a Wechatpay-Timestamp, -Nonce, -Signature or -Serial header is missing)")
	}
	if stale := g.checkFresh(string(ts)); stale != "" {
		return errors.New("its Wechatpay-Timestamp: " + stale)
	}
	v, err := m.keys.Verifier(string(serial))
	if err != nil {
		return err
	}
	var buf [1024]byte
	msg := signer.AppendResponseMessage(buf[:0], string(ts), string(nonce), body)
	if err := v.VerifyBytes(msg, sig); err != nil {
		if errors.Is(err, signer.ErrSignatureProbe) {
			return errors.New("its signature is a WECHATPAY/SIGNTEST/ probe, which must never verify")
		}
		return fmt.Errorf("its signature does not verify with the key of serial %s", truncate(serial, 64))
	}
	return nil
}

// headerPeeker is what verifyV3 needs of request or response headers.
type headerPeeker interface{ Peek(key string) []byte }

// downloadCertificates fetches, decrypts and verifies the merchant's platform certificates. The
// answer is verified with the certificates it carries (the bootstrap case) or a key already known.
func (g *Gateway) downloadCertificates(mch *upstream, m *merchantState) ([]credentials.PlatformCert, error) {
	if m.aead == nil {
		return nil, errors.New("no apiv3_key to decrypt platform certificates")
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if aerr := g.signV3(mch, m, req, fasthttp.MethodGet, []byte("/v3/certificates"), nil); aerr != nil {
		return nil, errors.New(aerr.Message)
	}
	if aerr := g.do(mch, "/v3/certificates", req, resp); aerr != nil {
		return nil, errors.New(aerr.Message)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return nil, fmt.Errorf("GET /v3/certificates answered HTTP %d: %s", resp.StatusCode(), truncate(resp.Body(), 200))
	}
	certs, err := credentials.DecodeCertificates(resp.Body(), m.aead, g.clock())
	if err != nil {
		return nil, err
	}
	serial := string(resp.Header.Peek("Wechatpay-Serial"))
	for _, c := range certs {
		if c.Serial == serial {
			bootstrap := &merchantState{keys: credentials.NewPayKeys(credentials.PayKeysOptions{
				PublicKeyID: c.Serial, PublicKey: c.PublicKey, Clock: g.clock,
			})}
			if err := g.verifyV3(bootstrap, &resp.Header, resp.Body()); err != nil {
				return nil, fmt.Errorf("the certificates answer failed verification: %w", err)
			}
			return certs, nil
		}
	}
	if m.publicKeyID != "" && serial == m.publicKeyID {
		if err := g.verifyV3(m, &resp.Header, resp.Body()); err != nil {
			return nil, fmt.Errorf("the certificates answer failed verification: %w", err)
		}
		return certs, nil
	}
	return nil, fmt.Errorf("the certificates answer is signed by serial %q, which is neither among the certificates nor the public key", truncate([]byte(serial), 64))
}

// Route kinds of the WeChat Pay paths, for metrics and errors.
const (
	routeV3 = policies.RoutePayV3
	routeV2 = policies.RoutePayV2
)

// answerRefused counts and logs a WeChat Pay answer that failed verification (it never reaches
// the app): the API, the merchant, why, and for APIv3 (h not nil) the serial the answer named and
// WeChat Pay's Request-ID.
func (g *Gateway) answerRefused(ctx *fasthttp.RequestCtx, u *upstream, api string, m *merchantState, h *fasthttp.ResponseHeader, err error) {
	g.metrics.signatureFailures.Inc()
	g.metrics.upstreamFor(u.host, api).fail(g.metrics, "signature_invalid")
	args := []any{"api", api, "merchant", m.name, "reason", err.Error(), "request_id", requestID(ctx)}
	if h != nil {
		args = append(args, "serial", string(truncateBytes(h.Peek("Wechatpay-Serial"), 64)),
			"wechat_request_id", string(truncateBytes(h.Peek("Request-ID"), 128)))
	}
	g.rate.error("answer-refused\x00"+m.name+"\x00"+api+"\x00"+reasonKind(err.Error()), "WeChat Pay answer failed verification and was not passed on", args...)
}
