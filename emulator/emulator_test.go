package emulator

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings the error must contain; nil means success
	}{
		{"ok", Config{Apps: []App{appA, appV}}, nil},
		{"no apps", Config{}, []string{"no apps"}},
		{"negative ttl", Config{Apps: []App{appA}, TokenTTL: -time.Second}, []string{"negative"}},
		{"duplicate appid", Config{Apps: []App{appA, appA}}, []string{"configured twice"}},
		{"empty appid", Config{Apps: []App{{Secret: "s", AppKey: "k", SandboxAppKey: "k2"}}}, []string{"appid is empty"}},
		{"empty secret", Config{Apps: []App{{AppID: "wx1", AppKey: "k", SandboxAppKey: "k2"}}}, []string{"secret is empty"}},
		{"no xpay keys (an app without virtual payment)", Config{Apps: []App{{AppID: "wx1", Secret: "s"}}}, nil},
		{"no sandbox key", Config{Apps: []App{{AppID: "wx1", Secret: "s", AppKey: "k"}}}, nil},
		{"every problem at once", Config{
			Apps:     []App{{AppID: "wx1", Secret: "s", AppKey: "k"}, {AppID: "wx2", AppKey: "k", SandboxAppKey: "k2"}},
			TokenTTL: -1,
		}, []string{"negative", "secret is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.cfg)
			if tt.wantErr == nil {
				if err != nil || e == nil {
					t.Fatalf("New: %v", err)
				}
				if e.ttl != DefaultTokenTTL {
					t.Errorf("default TTL = %v, want %v", e.ttl, DefaultTokenTTL)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestUnknownPathAndCalls(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/cgi-bin/unknown", "/sns/jsCode2Session", "/xpay/no_such_api", "/"} {
		m := h.getJSON("POST", path, []byte(`{}`))
		expectErr(t, m, 40066)
		if !strings.HasPrefix(m.str("errmsg"), "invalid url") {
			t.Errorf("%s: errmsg %q", path, m.str("errmsg"))
		}
	}
	h.getJSON("GET", "/_emulator/healthz", nil)
	h.xpay("/xpay/query_biz_balance", `{"env":0}`)
	h.xpay("/xpay/query_biz_balance", `{"env":0}`)
	if got := h.emu.Calls("/xpay/query_biz_balance"); got != 2 {
		t.Errorf("Calls(query_biz_balance) = %d, want 2", got)
	}
	if got := h.emu.Calls("/xpay/no_such_api"); got != 1 {
		t.Errorf("Calls(no_such_api) = %d, want 1", got)
	}
	if got := h.emu.Calls("/_emulator/healthz"); got != 0 {
		t.Errorf("control paths are counted: %d", got)
	}
}

func TestShutdownWithoutServe(t *testing.T) {
	e, err := New(Config{Apps: []App{appA}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := e.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := e.Serve(ln); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Serve after Shutdown returned %v, want ErrShutdown", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Serve after Shutdown left its listener open")
	}
}
