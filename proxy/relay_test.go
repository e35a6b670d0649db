package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestDropHopHeaders: of an answer read from WeChat into the app's response, the headers about
// WeChat's connection go and the ones about the body stay; a "Connection: close" from WeChat
// no longer closes the app's connection.
func TestDropHopHeaders(t *testing.T) {
	var resp fasthttp.Response
	resp.Header.Set("Connection", "close")
	resp.Header.Set("Keep-Alive", "timeout=5")
	resp.Header.Set("Server", "nginx")
	resp.Header.Set("Date", "Tue, 01 Dec 2026 22:00:00 GMT")
	resp.Header.SetContentType("application/json; charset=UTF-8")
	resp.Header.Set("X-Request-Id", "r-1")
	resp.SetBodyString(`{"errcode":0}`)
	dropHopHeaders(&resp.Header)
	if resp.ConnectionClose() {
		t.Error("Connection: close from WeChat would close the app's connection")
	}
	for _, k := range []string{"Keep-Alive", "Server", "Date"} {
		if v := resp.Header.Peek(k); len(v) > 0 {
			t.Errorf("%s: %q kept", k, v)
		}
	}
	if ct, id := string(resp.Header.ContentType()), string(resp.Header.Peek("X-Request-Id")); ct != "application/json; charset=UTF-8" || id != "r-1" {
		t.Errorf("body headers lost: Content-Type %q, X-Request-Id %q", ct, id)
	}
}
