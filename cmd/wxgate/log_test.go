package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// TestNewLogger: [log] level drops the lines below it and format chooses text or JSON.
func TestNewLogger(t *testing.T) {
	for _, c := range []struct {
		cfg              policies.Log
		debug, info, err bool
		json             bool
	}{
		{policies.Log{Level: "debug", Format: "json"}, true, true, true, true},
		{policies.Log{Level: "info", Format: "text"}, false, true, true, false},
		{policies.Log{Level: "warn", Format: "json"}, false, false, true, true},
		{policies.Log{Level: "error", Format: "text"}, false, false, true, false},
	} {
		var buf bytes.Buffer
		log := newLogger(c.cfg, &buf)
		log.Debug("d-line")
		log.Info("i-line")
		log.Error("e-line")
		out := buf.String()
		if strings.Contains(out, "d-line") != c.debug || strings.Contains(out, "i-line") != c.info || strings.Contains(out, "e-line") != c.err {
			t.Errorf("%+v wrote:\n%s", c.cfg, out)
		}
		for line := range strings.Lines(out) {
			if json.Valid([]byte(line)) != c.json {
				t.Errorf("%+v: line %q (JSON %v)", c.cfg, line, c.json)
			}
		}
	}
}

// TestCheckShowsLog: wxgate check reports the [log] settings, and refuses a bad level naming
// the key.
func TestCheckShowsLog(t *testing.T) {
	dir := t.TempDir()
	write := func(log string) string {
		path := filepath.Join(dir, "wxgate.toml")
		text := "[log]\n" + log + "\n[[app]]\nname = \"shop\"\nappid = \"wx0123456789abcdef\"\nsecret = \"check-log-secret\"\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	out, _, err := runCmd(t, "check", "-config", write(`format = "json"`+"\naccess = true"))
	if err != nil || !strings.Contains(out, "Log: level info, format json, access log on") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if _, _, err := runCmd(t, "check", "-config", write(`level = "loud"`)); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("a bad level: %v", err)
	}
}

// TestServeLogsJSON runs `wxgate serve` with [log] format = "json", level = "debug" and
// access = true: every stderr line is a JSON object, a verified push has its access line with
// the request id WeChat's request did not carry (made by wxgate) and its "callback forwarded"
// line, and a forged one its "callback refused" line.
func TestServeLogsJSON(t *testing.T) {
	p := startGatewayProcess(t, "\n[log]\nformat = \"json\"\nlevel = \"debug\"\naccess = true\n")
	if !p.push(t, 1) {
		t.Fatal("a genuine push was not acknowledged")
	}
	p.logs.waitFor(t, `"msg":"callback forwarded"`, 10*time.Second)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(p.callbackURL + "/callbacks/message/door?timestamp=1&nonce=n&encrypt_type=aes&msg_signature=00")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetBodyString(`{"Encrypt":"x"}`)
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 401 {
		t.Fatalf("forged push: %d %v", resp.StatusCode(), err)
	}
	p.logs.waitFor(t, `"msg":"callback refused"`, 10*time.Second)
	var access, refused map[string]any
	for line := range strings.Lines(p.logs.String()) {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("a stderr line is not JSON: %q", line)
		}
		switch l["msg"] {
		case "request":
			if l["status"] == float64(200) && access == nil {
				access = l
			}
		case "callback refused":
			refused = l
		}
	}
	if access == nil || access["listener"] != "callback" || access["path"] != "/callbacks/message/door" || access["request_id"] == "" || access["peer"] != "127.0.0.1" {
		t.Errorf("access line %v", access)
	}
	if refused == nil || refused["source"] != "message_push" || refused["name"] != "door" || refused["reason"] != "msg_signature mismatch" || refused["level"] != "WARN" {
		t.Errorf("refusal line %v", refused)
	}
}
