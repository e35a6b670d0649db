package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// Media uploads (wechatpay.md M.1): a POST of multipart/form-data with a "meta" JSON part
// {"filename","sha256"} and a "file" part. WeChat Pay verifies the Authorization over the meta
// part exactly as sent (signedBody), checks the file against the meta's sha256, and answers a
// media_id (media_url for marketing images), signed as usual.

// mediaUpload is one upload endpoint: its size limit and accepted filename suffixes.
type mediaUpload struct {
	maxFile  int
	suffixes []string
	url      bool // answers {"media_url"} instead of {"media_id"}
}

var (
	imageSuffixes = []string{".jpg", ".jpeg", ".bmp", ".png"}
	videoSuffixes = []string{".avi", ".wmv", ".mpeg", ".mp4", ".mov", ".mkv", ".flv", ".f4v", ".m4v", ".rmvb"}
)

// mediaUploads are the upload endpoints by path, with WeChat Pay's documented limits.
var mediaUploads = map[string]mediaUpload{
	"/v3/merchant/media/upload":              {maxFile: 5 << 20, suffixes: imageSuffixes},
	"/v3/merchant/media/video_upload":        {maxFile: 5 << 20, suffixes: videoSuffixes},
	"/v3/merchant-service/images/upload":     {maxFile: 2 << 20, suffixes: imageSuffixes},
	"/v3/marketing/favor/media/image-upload": {maxFile: 2 << 20, suffixes: imageSuffixes, url: true},
}

// maxUploadBody is the emulator's body limit on the upload paths: the largest file and room for
// the multipart framing. Other paths keep the server's 1 MiB.
const maxUploadBody = 5<<20 + 64<<10

// mediaBodyLimit gives the upload paths their larger body limit.
func mediaBodyLimit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	p := h.RequestURI()
	if i := bytes.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if _, ok := mediaUploads[string(p)]; ok {
		return fasthttp.RequestConfig{MaxRequestBodySize: maxUploadBody}
	}
	return fasthttp.RequestConfig{}
}

// maxStoredMedia bounds the uploaded files a merchant keeps for download.
const maxStoredMedia = 64

// storedMedia is an uploaded file kept for GET /v3/merchant-service/images/{media_id}.
type storedMedia struct {
	id, filename string
	data         []byte
}

// multipartParts reads a multipart/form-data body: the raw meta part and the file part. ok is
// false when the body is not multipart/form-data or does not parse.
func multipartParts(contentType, body []byte) (meta, file []byte, hasMeta, hasFile, ok bool) {
	mt, params, err := mime.ParseMediaType(string(contentType))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil, false, false, false
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			return meta, file, hasMeta, hasFile, true
		}
		if err != nil {
			return nil, nil, false, false, false
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, false, false, false
		}
		switch p.FormName() {
		case "meta":
			meta, hasMeta = b, true
		case "file":
			file, hasFile = b, true
		}
	}
}

// signedBody is the body WeChat Pay verifies the Authorization over: the meta part of a
// multipart/form-data upload, else the whole body.
func signedBody(ctx *fasthttp.RequestCtx) []byte {
	ct := ctx.Request.Header.ContentType()
	if !bytes.HasPrefix(bytes.ToLower(ct), []byte("multipart/form-data")) {
		return ctx.PostBody()
	}
	meta, _, hasMeta, _, ok := multipartParts(ct, ctx.PostBody())
	if !ok || !hasMeta {
		return ctx.PostBody()
	}
	return meta
}

// mediaAnswer is the answer of an upload.
type mediaAnswer struct {
	MediaID  string `json:"media_id,omitempty"`
	MediaURL string `json:"media_url,omitempty"`
}

// v3UploadMedia answers the media uploads: meta and file present, filename suffix and size
// within the route's limits, sha256 the file's; the file is kept for download.
func (e *Emulator) v3UploadMedia(c *v3Call) (*v3Reply, *v3Error) {
	route := mediaUploads[string(c.ctx.Path())]
	meta, file, hasMeta, hasFile, ok := multipartParts(c.ctx.Request.Header.ContentType(), c.body)
	switch {
	case !ok:
		return nil, v3Err(fasthttp.StatusBadRequest, "INVALID_REQUEST", "请求体不是有效的multipart/form-data")
	case !hasMeta:
		return nil, v3ParamErr("body", "meta", ruleRequired)
	case !hasFile || len(file) == 0:
		return nil, v3ParamErr("body", "file", ruleRequired)
	}
	var m struct {
		Filename string `json:"filename"`
		Sha256   string `json:"sha256"`
	}
	if verr := decodeV3(meta, &m); verr != nil {
		return nil, verr
	}
	switch {
	case m.Filename == "":
		return nil, v3ParamErr("body", "meta/filename", ruleRequired)
	case m.Sha256 == "":
		return nil, v3ParamErr("body", "meta/sha256", ruleRequired)
	case !hasSuffix(m.Filename, route.suffixes):
		return nil, v3ParamErr("body", "meta/filename", ruleFormat)
	case len(file) > route.maxFile:
		return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "文件大小超过限制")
	}
	sum := sha256.Sum256(file)
	if !strings.EqualFold(m.Sha256, hex.EncodeToString(sum[:])) {
		return nil, v3Err(fasthttp.StatusBadRequest, "PARAM_ERROR", "文件摘要(sha256)与文件内容不一致")
	}
	id := base64.RawURLEncoding.EncodeToString([]byte(randomNonce(24)))
	e.mch.mu.Lock()
	c.m.media = append(c.m.media, &storedMedia{id: id, filename: m.Filename, data: bytes.Clone(file)})
	if len(c.m.media) > maxStoredMedia {
		c.m.media[0] = nil
		c.m.media = c.m.media[1:]
	}
	e.mch.mu.Unlock()
	if route.url {
		return &v3Reply{status: fasthttp.StatusOK, json: &mediaAnswer{MediaURL: "https://wxpaylogo.qpic.cn/emulator/" + id}}, nil
	}
	return &v3Reply{status: fasthttp.StatusOK, json: &mediaAnswer{MediaID: id}}, nil
}

// v3DownloadImage answers GET /v3/merchant-service/images/{media_id}: the image bytes, unsigned
// like WeChat Pay's. An unknown media_id is a signed 404.
func (e *Emulator) v3DownloadImage(c *v3Call) (*v3Reply, *v3Error) {
	e.mch.mu.Lock()
	var f *storedMedia
	for _, s := range c.m.media {
		if s.id == c.param {
			f = s
			break
		}
	}
	e.mch.mu.Unlock()
	if f == nil {
		return nil, v3Err(fasthttp.StatusNotFound, "RESOURCE_NOT_EXISTS", "图片不存在")
	}
	ct := mime.TypeByExtension(strings.ToLower(path.Ext(f.filename)))
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &v3Reply{status: fasthttp.StatusOK, file: f.data, fileType: ct}, nil
}

// hasSuffix reports whether name ends with one of suffixes, ignoring case.
func hasSuffix(name string, suffixes []string) bool {
	n := strings.ToLower(name)
	for _, s := range suffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}
