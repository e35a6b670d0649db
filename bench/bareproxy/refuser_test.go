package bareproxy

import (
	"encoding/json"
	"runtime"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRefuserAnswers503WhileItSigns: every request gets wxgate's overload answer, while the
// signing threads keep signing (the count grows between two reads) until Stop.
func TestRefuserAnswers503WhileItSigns(t *testing.T) {
	if _, err := NewRefuser(0, 5); err == nil {
		t.Fatal("a refuser without signing threads was accepted")
	}
	r, err := NewRefuser(1, 5)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	addr := serve(t, r.Server())
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/wxgate/v3/payment-params")
	req.Header.SetMethod(fasthttp.MethodPost)
	var before uint64
	for i := range 3 {
		if err := fasthttp.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		var body struct{ Error struct{ Code string } }
		if resp.StatusCode() != fasthttp.StatusServiceUnavailable || json.Unmarshal(resp.Body(), &body) != nil || body.Error.Code != "wxgate.overloaded" {
			t.Fatalf("answer %d: %d %s; want 503 wxgate.overloaded", i, resp.StatusCode(), resp.Body())
		}
		if i == 0 {
			before = r.Signed()
		}
	}
	for r.Signed() == before { // the signing thread never stops on its own: this ends
		runtime.Gosched()
	}
	r.Stop()
	stopped := r.Signed()
	r.Stop() // twice is harmless
	if r.Signed() != stopped {
		t.Fatal("signatures went on after Stop returned")
	}
}
