package emulator

import "testing"

// TestOtherAPIs checks that token-only APIs answer errcode 0 with a valid token, the token errors
// without one, and that only listed paths are served.
func TestOtherAPIs(t *testing.T) {
	h := newHarness(t)
	tok := h.token(appA)
	tests := []struct {
		method, path string
		code         int64
	}{
		{"POST", "/wxa/msg_sec_check?access_token=" + tok, 0},
		{"GET", "/cgi-bin/openapi/quota/get?access_token=" + tok, 0},
		{"POST", "/wxa/msg_sec_check", 41001},
		{"POST", "/wxa/msg_sec_check?access_token=short", 40014},
		{"POST", "/wxa/not_a_listed_api?access_token=" + tok, 40066},
		{"PUT", "/wxa/msg_sec_check?access_token=" + tok, 43002},
	}
	for _, tt := range tests {
		m := h.getJSON(tt.method, tt.path, []byte(`{"content":"hi"}`))
		expectErr(t, m, tt.code)
	}
}
