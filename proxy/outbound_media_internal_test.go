package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"testing"

	"github.com/wxgate/wxgate/policies"
)

// TestMediaPathsMatchPolicies: the byte versions on the request path agree with the policies
// tables they read, for every table path and its near misses.
func TestMediaPathsMatchPolicies(t *testing.T) {
	var paths []string
	for _, r := range policies.UploadRoutes {
		paths = append(paths, r.Path, r.Path+"/", r.Path+"x")
	}
	for _, r := range policies.UnsignedRoutes {
		paths = append(paths, r.Path, r.Path+"x", r.Path+"x/y", r.Path+"/x", r.Path+"upload", r.Path[:len(r.Path)-1])
	}
	for _, p := range paths {
		if isUploadPath([]byte(p)) != policies.IsUploadPath(p) || isUnsignedPath([]byte(p)) != policies.IsUnsignedPath(p) {
			t.Errorf("%q: proxy says upload=%v unsigned=%v, policies upload=%v unsigned=%v", p,
				isUploadPath([]byte(p)), isUnsignedPath([]byte(p)), policies.IsUploadPath(p), policies.IsUnsignedPath(p))
		}
	}
	if got := requestPath([]byte("/v3/merchant/media/upload?a=b")); string(got) != "/v3/merchant/media/upload" {
		t.Errorf("requestPath = %q", got)
	}
}

// BenchmarkUploadMessage measures reading a 2 MB upload's meta part and hashing its file part.
func BenchmarkUploadMessage(b *testing.B) {
	file := bytes.Repeat([]byte("0123456789abcdef"), 2_000_000/16)
	sum := sha256.Sum256(file)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	mw, _ := w.CreateFormField("meta")
	mw.Write([]byte(`{"filename":"a.png","sha256":"` + hex.EncodeToString(sum[:]) + `"}`))
	fw, _ := w.CreateFormFile("file", "a.png")
	fw.Write(file)
	w.Close()
	ct := []byte(w.FormDataContentType())
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, aerr := uploadMessage(ct, body.Bytes(), true); aerr != nil {
			b.Fatal(aerr)
		}
	}
}

// FuzzUploadMessage: any body either is refused with a 400 naming the problem, or yields a meta
// that is a JSON object found verbatim in the body.
func FuzzUploadMessage(f *testing.F) {
	const ct = "multipart/form-data; boundary=XyZ"
	file := []byte("\x89PNG fuzz")
	sum := sha256.Sum256(file)
	meta := `{"filename":"a.png","sha256":"` + hex.EncodeToString(sum[:]) + `"}`
	good := "--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n" + meta +
		"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + string(file) + "\r\n--XyZ--\r\n"
	f.Add([]byte(good), true)
	f.Add([]byte(good[:len(good)-9]), true)
	f.Add([]byte("--XyZ--\r\n"), false)
	f.Add([]byte(""), false)
	f.Fuzz(func(t *testing.T, body []byte, uploadRoute bool) {
		got, aerr := uploadMessage([]byte(ct), body, uploadRoute)
		if aerr != nil {
			if aerr.Status != 400 || aerr.Message == "" {
				t.Fatalf("refusal %+v", aerr)
			}
			return
		}
		if !bytes.Contains(body, got) || len(got) == 0 || got[0] != '{' && got[0] != ' ' && got[0] != '\t' && got[0] != '\r' && got[0] != '\n' {
			t.Fatalf("meta %q is not a JSON object taken from the body", got)
		}
	})
}

// TestUploadMetaLimit: a meta part of exactly maxMetaBytes is read whole and signed; one byte
// more is refused.
func TestUploadMetaLimit(t *testing.T) {
	file := []byte("\x89PNG limit")
	sum := sha256.Sum256(file)
	for _, c := range []struct {
		size int
		ok   bool
	}{{maxMetaBytes, true}, {maxMetaBytes + 1, false}} {
		meta := `{"filename":"a.png","sha256":"` + hex.EncodeToString(sum[:]) + `"}`
		meta = meta[:len(meta)-1] + string(bytes.Repeat([]byte(" "), c.size-len(meta))) + "}"
		body := "--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n" + meta +
			"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + string(file) + "\r\n--XyZ--\r\n"
		got, aerr := uploadMessage([]byte("multipart/form-data; boundary=XyZ"), []byte(body), true)
		if c.ok && (aerr != nil || string(got) != meta) {
			t.Errorf("meta of %d bytes: %v, signed %d bytes", c.size, aerr, len(got))
		}
		if !c.ok && (aerr == nil || aerr.Code != CodeUploadInvalid) {
			t.Errorf("meta of %d bytes accepted", c.size)
		}
	}
}
