package emulator

import (
	"testing"
	"time"
)

const faultURI = "/xpay/query_biz_balance"

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, h *harness)
	}{
		{"http500", Faults{FailNext: 1, Mode: FailHTTP500}, func(t *testing.T, h *harness) {
			method, u := h.xpayURL(faultURI, `{"env":0}`)
			if status, _ := h.do(method, u, []byte(`{"env":0}`)); status != 500 {
				t.Errorf("HTTP %d, want 500", status)
			}
		}},
		{"zero mode is http500", Faults{FailNext: 1}, func(t *testing.T, h *harness) {
			method, u := h.xpayURL(faultURI, `{"env":0}`)
			if status, _ := h.do(method, u, []byte(`{"env":0}`)); status != 500 {
				t.Errorf("HTTP %d, want 500", status)
			}
		}},
		{"system_busy", Faults{FailNext: 1, Mode: FailSystemBusy}, func(t *testing.T, h *harness) {
			expectErr(t, h.xpay(faultURI, `{"env":0}`), -1)
		}},
		{"close", Faults{FailNext: 1, Mode: FailClose}, func(t *testing.T, h *harness) {
			method, u := h.xpayURL(faultURI, `{"env":0}`)
			if status, b, err := h.doErr(method, u, []byte(`{"env":0}`)); err == nil {
				t.Errorf("got HTTP %d %s, want the connection closed", status, b)
			}
		}},
		{"hang then answer", Faults{FailNext: 1, Mode: FailHang, Latency: 100 * time.Millisecond}, func(t *testing.T, h *harness) {
			start := time.Now()
			expectErr(t, h.xpay(faultURI, `{"env":0}`), 0)
			if d := time.Since(start); d < 100*time.Millisecond {
				t.Errorf("hung request answered after %v, want >= 100ms", d)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.token(appA) // fetch the token before faults are on
			h.emu.SetFaults(tt.faults)
			tt.check(t, h)
			// FailNext was 1: the next request is normal again.
			expectErr(t, h.xpay(faultURI, `{"env":0}`), 0)
			if got := h.emu.Calls(faultURI); got != 2 {
				t.Errorf("Calls = %d, want 2 (faulted requests are counted)", got)
			}
		})
	}
}

func TestFaultCountdownAndScope(t *testing.T) {
	h := newHarness(t)
	h.token(appA)
	h.emu.SetFaults(Faults{FailNext: 2, Mode: FailSystemBusy})
	// Control paths neither fail nor count down.
	h.getJSON("GET", "/_emulator/healthz", nil)
	expectErr(t, h.xpay(faultURI, `{"env":0}`), -1)
	expectErr(t, h.getJSON("POST", "/cgi-bin/stable_token", stableTokenBody(appA, false)), -1)
	expectErr(t, h.xpay(faultURI, `{"env":0}`), 0)

	h.emu.SetFaults(Faults{FailNext: -1, Mode: FailSystemBusy})
	for i := 0; i < 3; i++ {
		expectErr(t, h.xpay(faultURI, `{"env":0}`), -1)
	}
	h.emu.SetFaults(Faults{})
	expectErr(t, h.xpay(faultURI, `{"env":0}`), 0)
}

func TestLatency(t *testing.T) {
	h := newHarness(t)
	h.token(appA)
	h.emu.SetFaults(Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	expectErr(t, h.xpay(faultURI, `{"env":0}`), 0)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want >= 50ms", d)
	}
	start = time.Now()
	h.getJSON("GET", "/_emulator/healthz", nil)
	if d := time.Since(start); d >= 50*time.Millisecond {
		t.Errorf("control path delayed by %v", d)
	}
}

func TestShutdownReleasesHungRequests(t *testing.T) {
	h := newHarness(t)
	h.token(appA)
	h.emu.SetFaults(Faults{FailNext: 1, Mode: FailHang}) // would hold for 10 s
	done := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		method, u := h.xpayURL(faultURI, `{"env":0}`)
		_, _, _ = h.doErr(method, u, []byte(`{"env":0}`))
		done <- time.Since(start)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.emu.Calls(faultURI) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // wait until the request is being held
	}
	if err := h.emu.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case d := <-done:
		if d > 5*time.Second {
			t.Errorf("hung request finished after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hung request not released by Shutdown")
	}
}
