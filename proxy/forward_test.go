package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestWritePushAnswerJSON: the hand-written JSON answer to WeChat decodes to the code and
// message given, whatever the message holds, and the usual one is exactly what WeChat expects.
func TestWritePushAnswerJSON(t *testing.T) {
	for _, c := range []struct {
		code int
		msg  string
	}{
		{0, "success"},
		{1, `not delivered yet: the app answered "HTTP 502"`},
		{1, "back\\slash, tab\t, newline\n, nul\x00, <tag> & 中文"},
		{-7, ""},
	} {
		var ctx fasthttp.RequestCtx
		writePushAnswer(&ctx, false, fasthttp.StatusOK, c.code, c.msg)
		var got struct {
			ErrCode int
			ErrMsg  string
		}
		if err := json.Unmarshal(ctx.Response.Body(), &got); err != nil || got.ErrCode != c.code || got.ErrMsg != c.msg {
			t.Errorf("answer %q decodes to %+v, %v; want code %d, message %q", ctx.Response.Body(), got, err, c.code, c.msg)
		}
		if ct := string(ctx.Response.Header.ContentType()); ct != "application/json; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
	}
	var ctx fasthttp.RequestCtx
	writePushAnswer(&ctx, false, fasthttp.StatusOK, 0, "success")
	if got := string(ctx.Response.Body()); got != `{"ErrCode":0,"ErrMsg":"success"}` {
		t.Errorf("success answer %s", got)
	}
}

// TestDigestID: the id is the prefix and the first 16 bytes of SHA-256 over the parts, each
// ended by a zero byte, in hex; moving a boundary between parts changes it.
func TestDigestID(t *testing.T) {
	sum := sha256.Sum256([]byte("wx123\x00<xml>msg</xml>\x00"))
	if got, want := digestID("push_", []byte("wx123"), []byte("<xml>msg</xml>")), "push_"+hex.EncodeToString(sum[:16]); got != want {
		t.Fatalf("digestID = %s, want %s", got, want)
	}
	if digestID("p_", []byte("ab"), []byte("c")) == digestID("p_", []byte("a"), []byte("bc")) {
		t.Fatal("the part boundary does not count")
	}
	if a, b := digestID("p_", []byte("x")), digestID("p_", []byte("x")); a != b {
		t.Fatalf("the same parts gave %s and %s", a, b)
	}
}
