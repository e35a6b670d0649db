package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/proxy"
)

// multipartUpload builds an upload the way an app sends it through wxgate: a "meta" JSON part
// {"filename","sha256"} and a "file" part, with mime/multipart. sha "" is the file's own digest.
func multipartUpload(t *testing.T, filename string, file []byte, sha string) (contentType string, body []byte) {
	t.Helper()
	if sha == "" {
		sum := sha256.Sum256(file)
		sha = hex.EncodeToString(sum[:])
	}
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := w.SetBoundary(testBoundary); err != nil { // one boundary, so that tests can splice parts
		t.Fatal(err)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="meta"`)
	h.Set("Content-Type", "application/json")
	p, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte(`{"filename":"` + filename + `","sha256":"` + sha + `"}`))
	f, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(file)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

// testBoundary is the multipart boundary of the test uploads.
const testBoundary = "wxgate-test-boundary-5f0c2a"

// pngBytes is n bytes standing for an image.
func pngBytes(n int) []byte {
	return bytes.Repeat([]byte("\x89PNG\r\n\x1a\n-wxgate-"), n/16+1)[:n]
}

// TestMediaUploadEndToEnd sends real multipart uploads through wxgate to the emulator, which
// verifies the Authorization over the meta part like WeChat Pay: each upload route answers a
// verified media_id (media_url for marketing images) for both key modes, a 2 MB image passes
// although the body is far over max_body_bytes (64 KiB in testdata), and the complaint image
// comes back unsigned, byte for byte, marked X-Wxgate-Unsigned: true.
// slowUploads gives WeChat 30 s to answer: the emulator reads and hashes uploads of up to 5 MB,
// which under the race detector on a busy 2-core machine takes longer than the tests' 2 s.
func slowUploads(toml string) string {
	i := strings.Index(toml, "[upstream]\n")
	return toml[:i] + strings.Replace(toml[i:], "timeout = \"2s\"", "timeout = \"30s\"", 1)
}

func TestMediaUploadEndToEnd(t *testing.T) {
	e := startEnv(t, slowUploads)
	img := pngBytes(2_000_000)
	for _, merchant := range []string{"pk", "certs"} {
		h := []string{proxy.HeaderMerchant, merchant}
		for _, c := range []struct {
			path, filename string
			file           []byte
			field          string
		}{
			{"/v3/merchant/media/upload", "licence.png", img, "media_id"},
			{"/v3/merchant/media/video_upload", "intro.mp4", pngBytes(4_500_000), "media_id"},
			{"/v3/merchant-service/images/upload", "reply.png", img, "media_id"},
			{"/v3/marketing/favor/media/image-upload", "coupon.jpg", pngBytes(500_000), "media_url"},
		} {
			ct, body := multipartUpload(t, c.filename, c.file, "")
			a := e.do("POST", c.path, body, append(h, "Content-Type", ct)...)
			id, _ := a.json(t)[c.field].(string)
			if a.Status != 200 || id == "" || a.Header[proxy.HeaderUnsigned] != "" {
				t.Fatalf("%s %s: %d %s (unsigned marker %q)", merchant, c.path, a.Status, a.Body, a.Header[proxy.HeaderUnsigned])
			}
			if c.path != "/v3/merchant-service/images/upload" {
				continue
			}
			d := e.do("GET", "/v3/merchant-service/images/"+id, nil, h...)
			if d.Status != 200 || !bytes.Equal(d.Body, c.file) || d.Header[proxy.HeaderUnsigned] != "true" {
				t.Fatalf("%s download: %d, %d bytes (want %d), %s=%q", merchant, d.Status, len(d.Body), len(c.file), proxy.HeaderUnsigned, d.Header[proxy.HeaderUnsigned])
			}
		}
	}
}

// TestMediaUploadRefused: what wxgate refuses of an upload before signing, each a 400 JSON
// naming the problem (never WeChat's SIGN_ERROR), counted by code and logged; the body limit of
// the upload routes is max_upload_bytes and does not open the other routes.
func TestMediaUploadRefused(t *testing.T) {
	logs := &syncBuffer{}
	e := startEnvWith(t, envOptions{logs: logs, edit: slowUploads})
	const path = "/v3/merchant/media/upload"
	file := pngBytes(40_000)
	ct, good := multipartUpload(t, "a.png", file, "")
	_, otherSha := multipartUpload(t, "a.png", file, strings.Repeat("0f", 32))
	_, noSha := multipartUpload(t, "a.png", file, "")
	noSha = bytes.Replace(noSha, []byte(`,"sha256":"`), []byte(`,"sha_256":"`), 1)
	boundary := testBoundary
	part := func(name, ctype, content string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\nContent-Type: " + ctype + "\r\n\r\n" + content + "\r\n"
	}
	end := "--" + boundary + "--\r\n"
	meta := `{"filename":"a.png","sha256":"` + hex.EncodeToString(func() []byte { s := sha256.Sum256(file); return s[:] }()) + `"}`
	for _, c := range []struct {
		name        string
		contentType string
		body        []byte
		code        string
		says        string
	}{
		{"sha256 of other bytes", ct, otherSha, proxy.CodeUploadSha256Mismatch, "is not the SHA-256"},
		{"meta without sha256", ct, noSha, proxy.CodeUploadInvalid, "needs both filename and sha256"},
		{"no meta part", ct, []byte(part("file", "image/png", string(file)) + end), proxy.CodeUploadInvalid, `no "meta" part`},
		{"no file part", ct, []byte(part("meta", "application/json", meta) + end), proxy.CodeUploadInvalid, `no "file" part`},
		{"meta not JSON", ct, []byte(part("meta", "application/json", "filename=a.png") + part("file", "image/png", string(file)) + end), proxy.CodeUploadInvalid, "not a JSON object"},
		{"two file parts", ct, []byte(part("meta", "application/json", meta) + part("file", "image/png", string(file)) + part("file", "image/png", string(file)) + end), proxy.CodeUploadInvalid, `two "file" parts`},
		{"meta without filename", ct, []byte(part("meta", "application/json", `{"sha256":"`+meta[len(`{"filename":"a.png","sha256":"`):]) + part("file", "image/png", string(file)) + end), proxy.CodeUploadInvalid, "needs both filename and sha256"},
		{"two meta parts", ct, []byte(part("meta", "application/json", meta) + part("meta", "application/json", meta) + part("file", "image/png", string(file)) + end), proxy.CodeUploadInvalid, `two "meta" parts`},
		{"truncated body", ct, good[:len(good)-200], proxy.CodeUploadInvalid, "unexpected EOF"},
		{"no boundary", "multipart/form-data", good, proxy.CodeUploadInvalid, "no boundary"},
		{"JSON body", "application/json", []byte(meta), proxy.CodeUploadInvalid, "multipart/form-data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := metricOr0(e, t, `wxgate_errors_total{code="`+c.code+`"}`)
			a := e.do("POST", path, c.body, "Content-Type", c.contentType)
			msg, _ := a.json(t)["error"].(map[string]any)["message"].(string)
			if a.Status != 400 || a.wxgateError(t) != c.code || !strings.Contains(msg, c.says) {
				t.Fatalf("want 400 %s saying %q, got %d %s", c.code, c.says, a.Status, a.Body)
			}
			if got := metricOr0(e, t, `wxgate_errors_total{code="`+c.code+`"}`); got != before+1 {
				t.Errorf("wxgate_errors_total{code=%q} went %v -> %v", c.code, before, got)
			}
		})
	}
	if !strings.Contains(logs.String(), "media upload refused before signing") {
		t.Error("no log line for the refused uploads")
	}
	// An upload is a POST: the same body PUT to an upload route is refused, and nothing is sent.
	calls := e.emu.Calls(path)
	if a := e.do("PUT", path, good, "Content-Type", ct); a.Status != 400 || a.wxgateError(t) != proxy.CodeUploadInvalid || e.emu.Calls(path) != calls {
		t.Errorf("PUT upload: %d %s", a.Status, a.Body)
	}
	// Off the upload routes, a multipart POST is signed over its meta part too, and its sha256 is
	// optional there: one without it reaches WeChat Pay (which answers for itself).
	const other = "/v3/marketing/busifavor/media/other"
	_, noShaOther := multipartUpload(t, "a.png", file, "")
	noShaOther = bytes.Replace(noShaOther, []byte(meta[len(`{"filename":"a.png"`):len(meta)-1]), nil, 1)
	if !bytes.Contains(noShaOther, []byte(`{"filename":"a.png"}`)) {
		t.Fatalf("the test body still names a sha256: %.300s", noShaOther)
	}
	if a := e.do("POST", other, noShaOther, "Content-Type", ct); a.Header["X-Wxgate-Error"] != "" || e.emu.Calls(other) != 1 {
		t.Errorf("multipart without sha256 off the upload routes: %d %s (WeChat saw %d calls)", a.Status, a.Body, e.emu.Calls(other))
	}

	// Over max_upload_bytes (5 MiB + 16 KiB by default): 413 JSON naming the key, as soon as the
	// Content-Length announces it (the connection is then closed: the first 64 KiB are sent).
	ct, big := multipartUpload(t, "big.mp4", pngBytes(policies.DefaultMaxUploadBytes), "")
	head := "POST /v3/merchant/media/video_upload HTTP/1.1\r\nHost: wxgate\r\nContent-Type: " + ct +
		"\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n"
	status, answer := rawStatus(t, strings.TrimPrefix(e.appURL, "http://"), head+string(big[:64<<10]))
	if status != 413 || !strings.Contains(answer, proxy.CodeBodyTooLarge) || !strings.Contains(answer, "server.max_upload_bytes") {
		t.Fatalf("upload over max_upload_bytes: %d %s", status, answer)
	}
	// One byte under the limit passes the listener (and reaches WeChat Pay, whose 5 MiB limit
	// on the file it exceeds by the framing: its PARAM_ERROR comes back verified).
	ct, under := multipartUpload(t, "under.mp4", pngBytes(5<<20+1), "")
	if a := e.do("POST", "/v3/merchant/media/video_upload", under, "Content-Type", ct); a.Status != 400 || !strings.Contains(string(a.Body), "PARAM_ERROR") {
		t.Fatalf("upload within max_upload_bytes: %d %s", a.Status, truncateForLog(a.Body))
	}
	// The larger limit is the upload routes' only: 100 KB elsewhere is over max_body_bytes.
	ct, mid := multipartUpload(t, "mid.png", pngBytes(100_000), "")
	for _, p := range []string{"/v3/merchant/media/upload?x=1", "/v3/pay/transactions/jsapi", "/v3/merchant-service/images/upload2"} {
		a := e.do("POST", p, mid, "Content-Type", ct)
		want := 200
		if !strings.HasPrefix(p, "/v3/merchant/media/upload") {
			want = 413
		}
		if a.Status != want || want == 413 && !strings.Contains(string(a.Body), "server.max_body_bytes") {
			t.Errorf("POST %s with %d bytes: %d %s, want %d", p, len(mid), a.Status, truncateForLog(a.Body), want)
		}
	}
	if n := metricOr0(e, t, `wxgate_errors_total{code="`+proxy.CodeBodyTooLarge+`"}`); n != 3 {
		t.Errorf("wxgate_errors_total{code=%q} = %v after three bodies too large, want 3", proxy.CodeBodyTooLarge, n)
	}
	if !strings.Contains(logs.String(), "request refused: body too large") {
		t.Error("no log line for the bodies too large")
	}
}

// metricOr0 reads a metric from the gateway's /metrics, 0 when not yet there (a labelled counter
// appears with its first count).
func metricOr0(e *testEnv, t *testing.T, name string) float64 {
	t.Helper()
	a := e.doURL("GET", e.adminURL+"/metrics", nil)
	for line := range strings.Lines(string(a.Body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	return 0
}

// truncateForLog shortens an answer body for a test message.
func truncateForLog(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "...(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}

// TestUnsignedOnlyOnTableRoutes: an unsigned 200 passes only on a route of the unsigned table,
// marked; the same forgery anywhere else (an order query, an upload's answer) is still 502
// response_signature_invalid, and on a table route an error answer must verify.
func TestUnsignedOnlyOnTableRoutes(t *testing.T) {
	e := startEnv(t, nil)
	ct, body := multipartUpload(t, "reply.png", pngBytes(10_000), "")
	up := e.do("POST", "/v3/merchant-service/images/upload", body, "Content-Type", ct)
	id, _ := up.json(t)["media_id"].(string)
	if up.Status != 200 || id == "" {
		t.Fatalf("upload: %d %s", up.Status, up.Body)
	}
	if a := e.do("GET", "/v3/merchant-service/images/"+id, nil); a.Status != 200 || a.Header[proxy.HeaderUnsigned] != "true" {
		t.Fatalf("complaint image: %d %s=%q", a.Status, proxy.HeaderUnsigned, a.Header[proxy.HeaderUnsigned])
	}
	// A file download asks for any type (WeChat Pay's pages), an API call for JSON.
	if x, _ := e.emu.LastExchange("/v3/merchant-service/images/" + id); x.Header["Accept"] != "*/*" {
		t.Errorf("Accept sent with the complaint image download: %q, want */*", x.Header["Accept"])
	}
	for _, c := range []struct {
		name, method, path string
		upload             bool
		tamper             emulator.Tamper
	}{
		{"unsigned order answer", "GET", "/v3/pay/transactions/out-trade-no/none-000009?mchid=" + e.cfg.Merchants[0].MchID, false, emulator.TamperUnsigned},
		{"unsigned upload answer", "POST", "/v3/merchant-service/images/upload", true, emulator.TamperUnsigned},
		{"unsigned error on a table route", "GET", "/v3/merchant-service/images/unknown-media", false, emulator.TamperUnsigned},
		{"forged error on a table route", "GET", "/v3/merchant-service/images/unknown-media", false, emulator.TamperBody},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b []byte
			var h []string
			if c.upload {
				b, h = body, []string{"Content-Type", ct}
			}
			e.emu.TamperNext(c.tamper, 1)
			a := e.do(c.method, c.path, b, h...)
			if a.Status != 502 || a.wxgateError(t) != proxy.CodeResponseSignature || a.Header[proxy.HeaderUnsigned] != "" {
				t.Fatalf("want 502 %s, got %d %s", proxy.CodeResponseSignature, a.Status, a.Body)
			}
		})
	}
	// Untampered, the table route's error is WeChat's signed 404, relayed unmarked.
	if a := e.do("GET", "/v3/merchant-service/images/unknown-media", nil); a.Status != 404 || a.Header[proxy.HeaderUnsigned] != "" || !strings.Contains(string(a.Body), "RESOURCE_NOT_EXISTS") {
		t.Fatalf("unknown image: %d %s=%q %s", a.Status, proxy.HeaderUnsigned, a.Header[proxy.HeaderUnsigned], a.Body)
	}
}

// TestMaxUploadBytesFromConfig: [server] max_upload_bytes in the TOML is the upload routes'
// limit: a body under it reaches WeChat Pay, one over it is 413 naming the key once its
// Content-Length announces it (the first 64 KiB are sent).
func TestMaxUploadBytesFromConfig(t *testing.T) {
	e := startEnv(t, func(s string) string {
		return strings.Replace(s, "[server]\n", "[server]\nmax_upload_bytes = 300000\n", 1)
	})
	ct, small := multipartUpload(t, "small.png", pngBytes(250_000), "")
	if a := e.do("POST", "/v3/merchant/media/upload", small, "Content-Type", ct); a.Status != 200 {
		t.Fatalf("%d bytes under max_upload_bytes = 300000: %d %s", len(small), a.Status, a.Body)
	}
	ct, big := multipartUpload(t, "big.png", pngBytes(300_000), "")
	head := "POST /v3/merchant/media/upload HTTP/1.1\r\nHost: wxgate\r\nConnection: close\r\nContent-Type: " + ct +
		"\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n"
	if status, answer := rawStatus(t, strings.TrimPrefix(e.appURL, "http://"), head+string(big[:64<<10])); status != 413 || !strings.Contains(answer, "server.max_upload_bytes") {
		t.Fatalf("%d bytes over max_upload_bytes = 300000: %d %s", len(big), status, answer)
	}
}
