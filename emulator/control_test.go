package emulator

import (
	"strings"
	"testing"
	"time"
)

func TestControlEndpoints(t *testing.T) {
	h := newHarness(t)
	if m := h.getJSON("GET", "/_emulator/healthz", nil); m["ok"] != true || m.str("status") != "ok" {
		t.Errorf("healthz = %v", m)
	}

	if m := h.getJSON("POST", "/_emulator/gc", nil); m["ok"] != true || !strings.HasPrefix(m.str("status"), "collected; ") {
		t.Errorf("gc = %v", m)
	}

	tok := h.token(appA)
	if m := h.getJSON("POST", "/_emulator/tokens/invalidate?appid="+appA.AppID, nil); m["ok"] != true {
		t.Fatalf("invalidate = %v", m)
	}
	if c := h.tokenWorks(tok); c != 40001 {
		t.Errorf("token after HTTP invalidate: errcode %d", c)
	}
	fresh := h.stableToken(appA, false).str("access_token")
	if m := h.getJSON("POST", "/_emulator/tokens/expire?appid="+appA.AppID, nil); m["ok"] != true {
		t.Fatalf("expire = %v", m)
	}
	if c := h.tokenWorks(fresh); c != 42001 {
		t.Errorf("token after HTTP expire: errcode %d", c)
	}
	h.tokens[appA.AppID] = h.stableToken(appA, false).str("access_token")

	m := h.getJSON("POST", "/_emulator/faults", []byte(`{"latency_ms":0,"fail_next":1,"mode":"system_busy"}`))
	if f := m.sub("faults"); m["ok"] != true || f.num("fail_next") != 1 || f.str("mode") != "system_busy" {
		t.Fatalf("set faults = %v", m)
	}
	if got := h.emu.currentFaults(); got != (Faults{FailNext: 1, Mode: FailSystemBusy}) {
		t.Errorf("faults = %+v", got)
	}
	expectErr(t, h.xpay(faultURI, `{"env":0}`), -1)
	if f := h.getJSON("GET", "/_emulator/faults", nil).sub("faults"); f.num("fail_next") != 0 {
		t.Errorf("faults after one failure = %v", f)
	}
	h.getJSON("POST", "/_emulator/faults", []byte(`{"latency_ms":25,"mode":"hang"}`))
	if got := h.emu.currentFaults(); got != (Faults{Latency: 25 * time.Millisecond, Mode: FailHang}) {
		t.Errorf("faults = %+v", got)
	}
	h.emu.SetFaults(Faults{})

	errs := []struct {
		name, method, path string
		body               []byte
		status             int
	}{
		{"unknown control path", "GET", "/_emulator/nope", nil, 404},
		{"invalidate unknown app", "POST", "/_emulator/tokens/invalidate?appid=wxnope", nil, 404},
		{"expire unknown app", "POST", "/_emulator/tokens/expire?appid=wxnope", nil, 404},
		{"invalidate with GET", "GET", "/_emulator/tokens/invalidate?appid=" + appA.AppID, nil, 405},
		{"faults with DELETE", "DELETE", "/_emulator/faults", nil, 405},
		{"gc with GET", "GET", "/_emulator/gc", nil, 405},
		{"faults bad mode", "POST", "/_emulator/faults", []byte(`{"mode":"explode"}`), 400},
		{"faults negative latency", "POST", "/_emulator/faults", []byte(`{"latency_ms":-1}`), 400},
		{"faults not JSON", "POST", "/_emulator/faults", []byte(`mode=close`), 400},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			status, b := h.do(tt.method, tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("HTTP %d %s, want %d", status, b, tt.status)
			}
			if m := decode(t, b); m["ok"] != false || m.str("error") == "" {
				t.Errorf("answer %v", m)
			}
		})
	}
}
