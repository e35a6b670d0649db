package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestAppTokenCheck: only "Bearer <token>" (scheme in any case) with the exact token passes; the
// header is removed whatever the verdict; the check allocates nothing.
func TestAppTokenCheck(t *testing.T) {
	const token = "app-token-under-test-0123456789"
	at := newAppToken(token)
	if newAppToken("") != nil {
		t.Fatal("no token configured must mean no check")
	}
	tests := []struct {
		header string
		ok     bool
	}{
		{"Bearer " + token, true},
		{"bearer " + token, true},
		{"BEARER " + token + " ", true},
		{"", false},
		{"Bearer", false},
		{"Bearer ", false},
		{token, false},
		{"Basic " + token, false},
		{"Bearer " + token[:len(token)-1], false},
		{"Bearer " + token + "0", false},
		{"Bearer x" + token, false},
	}
	var ctx fasthttp.RequestCtx
	for _, tt := range tests {
		ctx.Request.Reset()
		if tt.header != "" {
			ctx.Request.Header.Set("Authorization", tt.header)
		}
		if got := at.check(&ctx); got != tt.ok {
			t.Errorf("Authorization %q: check = %v, want %v", tt.header, got, tt.ok)
		}
		if h := ctx.Request.Header.Peek("Authorization"); len(h) != 0 {
			t.Errorf("Authorization %q: the header is still on the request", tt.header)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
		if !at.check(&ctx) {
			t.Fatal("the right token was refused")
		}
	})
	if allocs != 0 {
		t.Fatalf("check allocates %.0f times per request", allocs)
	}
}
