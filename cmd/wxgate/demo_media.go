package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"time"

	"github.com/wxgate/wxgate/proxy"
)

// demoMediaStep uploads an image the way an app does (docs/media.md): a multipart/form-data
// body with a "meta" JSON part and a "file" part, sent to wxgate unsigned; wxgate signs the meta
// part and the emulator verifies that signature like WeChat Pay. The image then comes back from
// the complaint image download, which WeChat Pay answers unsigned: wxgate marks it so.
func demoMediaStep(w *walker) demoStep {
	return demoStep{"WeChat Pay media: POST /v3/merchant-service/images/upload (multipart; wxgate signs the meta part), then GET the image back (unsigned, marked)", func() error {
		img, err := demoPNG()
		if err != nil {
			return err
		}
		ct, body, meta, err := multipartImage("reply.png", img)
		if err != nil {
			return err
		}
		status, answer, _, err := w.exchange("POST", "/v3/merchant-service/images/upload", ct, body,
			fmt.Sprintf("multipart/form-data: meta %s + file reply.png (%d bytes)", meta, len(img)))
		if err != nil {
			return err
		}
		var out struct {
			MediaID string `json:"media_id"`
		}
		if err := json.Unmarshal(answer, &out); err != nil || status != http.StatusOK || out.MediaID == "" {
			return fmt.Errorf("want 200 with a media_id, got %d %s", status, oneLine(answer))
		}
		status, file, h, err := w.exchange("GET", "/v3/merchant-service/images/"+out.MediaID, "", nil, "")
		if err != nil {
			return err
		}
		return expect(status == http.StatusOK && bytes.Equal(file, img) && h.Get(proxy.HeaderUnsigned) == "true",
			"the same %d bytes marked %s: true, got %d, %d bytes, %q", len(img), proxy.HeaderUnsigned, status, len(file), h.Get(proxy.HeaderUnsigned))
	}}
}

// demoPNG draws a small real PNG.
func demoPNG() ([]byte, error) {
	m := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			m.Set(x, y, color.RGBA{R: uint8(4 * x), G: uint8(4 * y), B: 0x99, A: 0xff})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		return nil, fmt.Errorf("draw the demo image: %w", err)
	}
	return b.Bytes(), nil
}

// multipartImage builds an upload body: the meta part {"filename","sha256"} first, then the file.
func multipartImage(filename string, file []byte) (contentType string, body, meta []byte, err error) {
	sum := sha256.Sum256(file)
	meta, err = json.Marshal(map[string]string{"filename": filename, "sha256": hex.EncodeToString(sum[:])})
	if err != nil {
		return "", nil, nil, err
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="meta"`)
	h.Set("Content-Type", "application/json")
	p, err := mw.CreatePart(h)
	if err == nil {
		_, err = p.Write(meta)
	}
	if err == nil {
		h = textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+filename+`"`)
		h.Set("Content-Type", "image/png")
		p, err = mw.CreatePart(h)
	}
	if err == nil {
		_, err = p.Write(file)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("build the upload: %w", err)
	}
	return mw.FormDataContentType(), b.Bytes(), meta, nil
}

// exchange sends a request and prints it (shown instead of the body when set) with the answer,
// shortened when it is not text.
func (w *walker) exchange(method, path, contentType string, body []byte, shown string) (int, []byte, http.Header, error) {
	var headers []string
	if contentType != "" {
		headers = []string{"Content-Type", contentType}
	}
	resp, answer, took, err := w.send(method, w.base+path, body, headers...)
	if err != nil {
		return 0, nil, nil, err
	}
	fmt.Fprintf(w.out, "   -> %s %s %s\n", method, path, shown)
	printed := oneLine(answer)
	if ct := resp.Header.Get("Content-Type"); !bytes.HasPrefix([]byte(ct), []byte("application/json")) {
		printed = fmt.Sprintf("%s, %d bytes, %s: %s", ct, len(answer), proxy.HeaderUnsigned, resp.Header.Get(proxy.HeaderUnsigned))
	}
	fmt.Fprintf(w.out, "   <- %d %s (%s)\n", resp.StatusCode, printed, took.Round(10*time.Microsecond))
	return resp.StatusCode, answer, resp.Header, nil
}
