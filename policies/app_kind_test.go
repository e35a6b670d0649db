package policies

import (
	"strings"
	"testing"
)

func TestAppKind(t *testing.T) {
	for _, tc := range []struct {
		line, want, err string
	}{
		{"", AppKindMiniProgram, ""},
		{`kind = "miniprogram"`, AppKindMiniProgram, ""},
		{`kind = "minigame"`, AppKindMiniGame, ""},
		{`kind = "game"`, "", `app[0].kind: must be "miniprogram" (the default) or "minigame", got "game"`},
	} {
		raw := strings.Replace(minimal, "[[app]]\n", "[[app]]\n"+tc.line+"\n", 1)
		if !strings.Contains(raw, tc.line) {
			t.Fatalf("the minimal config has no [[app]] line to extend")
		}
		c, err := Decode([]byte(raw), t.TempDir())
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if c.Apps[0].Kind != tc.want || c.Apps[0].IsMiniGame() != (tc.want == AppKindMiniGame) {
			t.Errorf("%q: kind = %q, want %q", tc.line, c.Apps[0].Kind, tc.want)
		}
	}
}

func TestMiniGameRoutes(t *testing.T) {
	tab := NewRouteTable(nil)
	for _, p := range MiniGamePaths() {
		r, ok := tab.Lookup([]byte(p))
		if !ok || r.Kind != RouteXpay || !r.MiniGame || !r.UserSignature {
			t.Errorf("%s: route %+v, %v; want a user-signed mini-game xpay route", p, r, ok)
		}
	}
	if r, _ := tab.Lookup([]byte("/xpay/currency_pay")); r.MiniGame {
		t.Errorf("/xpay/currency_pay is marked as a mini-game route")
	}
	if len(MiniGamePaths()) != 5 {
		t.Errorf("mini-game paths = %v, want the 5 pay_v2 APIs", MiniGamePaths())
	}
}
