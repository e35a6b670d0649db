package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/signer"
)

// TestPushWrapperReadCheaply: the JSON wrapper of a safe-mode push is read before its
// msg_signature is checked, so a forged one costs a handful of allocations however many members
// it has; the member names of a verified message are folded and remembered (readPushFields),
// which for 64 KiB of them would be some 14,000.
func TestPushWrapperReadCheaply(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	c, err := signer.NewPushCrypter("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if err != nil {
		t.Fatal(err)
	}
	a := &appState{name: "shop", appID: "wx00000000000000a1", pushToken: "shop-push-token", crypter: c}
	var b strings.Builder
	b.WriteString(`{"Encrypt":"AAAA"`)
	for i := 0; b.Len() < 60<<10; i++ {
		fmt.Fprintf(&b, `,"k%x":0`, i)
	}
	b.WriteString("}")
	body := []byte(b.String())
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/callbacks/message/shop?encrypt_type=aes&timestamp=1&nonce=2&msg_signature=forged")
	allocs := testing.AllocsPerRun(20, func() {
		if _, _, err := a.openPush(&ctx, body, false, "1", "2"); err == nil || !strings.Contains(err.Error(), "msg_signature mismatch") {
			t.Fatalf("a forged push: %v", err)
		}
	})
	if allocs > 20 {
		t.Fatalf("a forged push wrapper of %d bytes cost %.0f allocations, want a handful", len(body), allocs)
	}
}
