package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
)

// uploadBody builds an upload as a WeChat Pay SDK does: a "meta" JSON part and a "file" part.
// It returns the Content-Type, the body and the meta bytes (what the signature covers).
func uploadBody(t *testing.T, filename string, file []byte, sha string) (string, []byte, []byte) {
	t.Helper()
	if sha == "" {
		sum := sha256.Sum256(file)
		sha = hex.EncodeToString(sum[:])
	}
	meta := []byte(`{"filename":"` + filename + `","sha256":"` + sha + `"}`)
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="meta"`)
	h.Set("Content-Type", "application/json")
	p, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	p.Write(meta)
	f, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(file)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes(), meta
}

// image is n bytes standing for a PNG.
func image(n int) []byte {
	return bytes.Repeat([]byte("\x89PNG-emulator-"), n/14+1)[:n]
}

// TestMediaUploadSignedOverMeta: WeChat Pay verifies an upload's Authorization over the meta
// part exactly as sent: signed so, each upload endpoint answers a signed media_id (media_url for
// marketing images), and the complaint image download answers the bytes unsigned.
func TestMediaUploadSignedOverMeta(t *testing.T) {
	h := newMchHarness(t)
	file := image(300 << 10)
	for _, path := range []string{"/v3/merchant/media/upload", "/v3/merchant-service/images/upload", "/v3/marketing/favor/media/image-upload"} {
		ct, body, meta := uploadBody(t, "shop.png", file, "")
		r := h.v3(h.mk, "POST", path, body, contentType(ct), signBody(string(meta)))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		o := r.obj(t)
		if path == "/v3/marketing/favor/media/image-upload" {
			if !strings.HasPrefix(o.str("media_url"), "https://") {
				t.Fatalf("%s: no media_url in %s", path, r.body)
			}
			continue
		}
		id := o.str("media_id")
		if id == "" {
			t.Fatalf("%s: no media_id in %s", path, r.body)
		}
		d, err := h.v3Do(h.mk, "GET", "/v3/merchant-service/images/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.status != 200 || !bytes.Equal(d.body, file) || d.header["Wechatpay-Signature"] != "" {
			t.Fatalf("download %s: %d, %d bytes (want %d), signature %q", id, d.status, len(d.body), len(file), d.header["Wechatpay-Signature"])
		}
	}
	ct, body, meta := uploadBody(t, "clip.mp4", image(1<<20), "")
	if r := h.v3(h.mk, "POST", "/v3/merchant/media/video_upload", body, contentType(ct), signBody(string(meta))); r.status != 200 || r.obj(t).str("media_id") == "" {
		t.Fatalf("video: %d %s", r.status, r.body)
	}
}

// TestMediaUploadRefusals: what WeChat Pay refuses of an upload, each with its error.
func TestMediaUploadRefusals(t *testing.T) {
	h := newMchHarness(t)
	file := image(10 << 10)
	ct, body, meta := uploadBody(t, "a.png", file, "")
	// Signed over the whole multipart body, as a generic client would: SIGN_ERROR.
	expectV3Error(t, h.v3(h.mk, "POST", "/v3/merchant/media/upload", body, contentType(ct)), 401, "SIGN_ERROR")
	// Signed over a meta that is not the one sent.
	expectV3Error(t, h.v3(h.mk, "POST", "/v3/merchant/media/upload", body, contentType(ct), signBody(string(meta)+" ")), 401, "SIGN_ERROR")

	for _, c := range []struct {
		name, path, filename, sha string
		file                      []byte
		status                    int
		code                      string
	}{
		{"sha256 of other bytes", "/v3/merchant/media/upload", "a.png", strings.Repeat("ab", 32), file, 400, "PARAM_ERROR"},
		{"not an image name", "/v3/merchant/media/upload", "a.txt", "", file, 400, "PARAM_ERROR"},
		{"not a video name", "/v3/merchant/media/video_upload", "a.png", "", file, 400, "PARAM_ERROR"},
		{"complaint image over 2 MiB", "/v3/merchant-service/images/upload", "a.png", "", image(2<<20 + 1), 400, "PARAM_ERROR"},
		{"empty file", "/v3/merchant/media/upload", "a.png", "", []byte{}, 400, "PARAM_ERROR"},
	} {
		ct, body, meta := uploadBody(t, c.filename, c.file, c.sha)
		r := h.v3(h.mk, "POST", c.path, body, contentType(ct), signBody(string(meta)))
		t.Run(c.name, func(t *testing.T) { expectV3Error(t, r, c.status, c.code) })
	}
	// A JSON body on an upload endpoint is not an upload.
	expectV3Error(t, h.v3(h.mk, "POST", "/v3/merchant/media/upload", []byte(`{"filename":"a.png"}`)), 400, "INVALID_REQUEST")
	// An unknown media_id is a signed 404.
	expectV3Error(t, h.v3(h.mk, "GET", "/v3/merchant-service/images/nope", nil), 404, "RESOURCE_NOT_EXISTS")
}
