package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/jsonscan"
	"github.com/wxgate/wxgate/policies"
)

// HeaderUnsigned marks an answer that wxgate passed to the app without a WeChat signature,
// because WeChat documents the route's answer as unsigned (policies.UnsignedRoutes). The APIv2
// downloads use the same marker.
const HeaderUnsigned = "X-Wxgate-Unsigned"

// maxMetaBytes bounds an upload's meta part: {"filename","sha256"} is under 300 bytes.
const maxMetaBytes = 8 << 10

// uploadMeta is what wxgate reads of an upload's meta part.
type uploadMeta struct {
	Filename string `json:"filename"`
	Sha256   string `json:"sha256"`
}

// uploadMessage checks an APIv3 multipart/form-data body and returns the bytes WeChat Pay signs:
// its "meta" part exactly as sent. The "file" part must be there, and the SHA-256 of its bytes
// must be the meta's sha256 (required on the documented upload routes, checked when present
// elsewhere), so that a wrong digest is refused here with its reason instead of as WeChat's
// SIGN_ERROR or PARAM_ERROR.
func uploadMessage(contentType, body []byte, uploadRoute bool) ([]byte, *apiError) {
	bad := func(format string, args ...any) *apiError {
		return newError(fasthttp.StatusBadRequest, CodeUploadInvalid, fmt.Sprintf(format, args...)+
			"; an APIv3 upload is multipart/form-data with a \"meta\" JSON part {\"filename\",\"sha256\"} and a \"file\" part (docs/media.md)")
	}
	mt, params, err := mime.ParseMediaType(string(contentType))
	if err != nil || mt != "multipart/form-data" {
		return nil, bad("the Content-Type %q is not multipart/form-data", truncate(contentType, 80))
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, bad("the Content-Type has no boundary")
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var meta []byte
	var sum []byte
	fileSize := int64(0)
	for {
		// Raw: the meta part's bytes are signed as sent, never decoded.
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("the multipart body is malformed: %v", err)
		}
		switch p.FormName() {
		case "meta":
			if meta != nil {
				return nil, bad("the body has two \"meta\" parts")
			}
			meta, err = io.ReadAll(io.LimitReader(p, maxMetaBytes+1))
			if err == nil && len(meta) > maxMetaBytes {
				err = fmt.Errorf("it is over %d bytes", maxMetaBytes)
			}
			if err != nil {
				return nil, bad("the \"meta\" part could not be read: %v", err)
			}
		case "file":
			if sum != nil {
				return nil, bad("the body has two \"file\" parts")
			}
			h := sha256.New()
			n, err := io.Copy(h, p)
			if err != nil {
				return nil, bad("the \"file\" part could not be read: %v", err)
			}
			sum, fileSize = h.Sum(nil), n
		default:
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, bad("the multipart body is malformed: %v", err)
			}
		}
	}
	switch {
	case meta == nil:
		return nil, bad("the body has no \"meta\" part")
	case sum == nil:
		return nil, bad("the body has no \"file\" part")
	case jsonscan.Object(meta) != nil:
		return nil, bad("the \"meta\" part is not a JSON object")
	}
	var m uploadMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, bad("the \"meta\" part's filename and sha256 must be strings")
	}
	if uploadRoute && (m.Filename == "" || m.Sha256 == "") {
		return nil, bad("the \"meta\" part needs both filename and sha256")
	}
	if got := hex.EncodeToString(sum); m.Sha256 != "" && !strings.EqualFold(m.Sha256, got) {
		return nil, newError(fasthttp.StatusBadRequest, CodeUploadSha256Mismatch, fmt.Sprintf(
			"the \"meta\" part's sha256 %s is not the SHA-256 of the \"file\" part (%s, %d bytes); WeChat Pay would refuse the upload: hash the exact bytes sent",
			truncate([]byte(m.Sha256), 80), got, fileSize))
	}
	return meta, nil
}

// isUploadPath is policies.IsUploadPath for the path bytes of a request.
func isUploadPath(path []byte) bool {
	for _, r := range policies.UploadRoutes {
		if string(path) == r.Path {
			return true
		}
	}
	return false
}

// isUnsignedPath is policies.IsUnsignedPath for the path bytes of a request, without converting
// them (it runs on every APIv3 GET).
func isUnsignedPath(path []byte) bool {
	for _, r := range policies.UnsignedRoutes {
		if !r.Prefix {
			if string(path) == r.Path {
				return true
			}
			continue
		}
		if rest, ok := bytes.CutPrefix(path, []byte(r.Path)); ok && len(rest) > 0 && bytes.IndexByte(rest, '/') < 0 && !isUploadPath(path) {
			return true
		}
	}
	return false
}

// refuseUpload answers a refused upload and logs why (rate-limited per code).
func (g *generation) refuseUpload(ctx *fasthttp.RequestCtx, m *merchantState, aerr *apiError) {
	g.rate.warn("upload-refused\x00"+aerr.Code, "media upload refused before signing",
		"path", truncate(ctx.Path(), 80), "merchant", m.name, "code", aerr.Code, "reason", aerr.Message, "request_id", requestID(ctx))
	g.fail(ctx, routeV3, aerr)
}

// relayUnsigned passes the answer of a documented unsigned download (policies.UnsignedRoutes):
// a 200 without signature headers goes to the app marked X-Wxgate-Unsigned: true; anything else
// (WeChat Pay's errors are signed JSON) is verified like every other answer.
func (g *generation) relayUnsigned(ctx *fasthttp.RequestCtx, m *merchantState, api string, resp *fasthttp.Response) {
	if bytes.Equal(ctx.Path(), []byte(billFilePath)) {
		g.relayBillFile(ctx, resp)
		return
	}
	if resp.StatusCode() == fasthttp.StatusOK && len(resp.Header.Peek("Wechatpay-Signature")) == 0 {
		relay(ctx, resp)
		ctx.Response.Header.Set(HeaderUnsigned, "true")
		g.observe(ctx, routeV3, resp.StatusCode())
		return
	}
	if err := g.verifyV3(m, &resp.Header, resp.Body()); err != nil {
		g.answerRefused(ctx, g.mch, api, m, &resp.Header, err)
		g.fail(ctx, routeV3, newError(fasthttp.StatusBadGateway, CodeResponseSignature,
			fmt.Sprintf("WeChat Pay's answer (HTTP %d) failed verification and was not passed on: %v", resp.StatusCode(), err)))
		return
	}
	relay(ctx, resp)
	g.observe(ctx, routeV3, resp.StatusCode())
}

// uploadLimits gives the app listener's upload routes [server] max_upload_bytes as their body
// limit; every other request keeps the server's MaxRequestBodySize (max_body_bytes).
func uploadLimits(s policies.Server) func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		if isUploadPath(requestPath(h.RequestURI())) {
			return fasthttp.RequestConfig{MaxRequestBodySize: s.MaxUploadBytes}
		}
		return fasthttp.RequestConfig{}
	}
}

// requestPath is the path of a request target (the query cut off).
func requestPath(uri []byte) []byte {
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// appServerError is serverError for the app listener, where the body limit depends on the
// route: a body too large is counted and logged, naming the key that limits it.
func (g *Gateway) appServerError(ctx *fasthttp.RequestCtx, err error) {
	key := "server.max_body_bytes"
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		if t := g.current().appToken; t != nil && !t.matches(&ctx.Request.Header) {
			// Refused before its body was read (appRequestConfig): the caller lacks the token.
			g.refuseUnauthorized(ctx)
			return
		}
		path := requestPath(ctx.Request.Header.RequestURI())
		if isUploadPath(path) {
			key = "server.max_upload_bytes"
		}
		g.metrics.errorCount(CodeBodyTooLarge)
		g.rate.warn("body-too-large\x00"+key, "request refused: body too large",
			"listener", listenerApp, "path", truncate(path, 80), "limit", key,
			"content_length", ctx.Request.Header.ContentLength())
	}
	serverError(key)(ctx, err)
}
