package proxy_test

import (
	"net"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/proxy"
)

// TestReloadRotatesTheAppToken: server.app_token is reloaded like the other secrets (the old token
// gets 401 at once, the new one passes, no restart is asked for); a reload that would leave a
// listener reachable from other hosts without a token is refused, and the running token stays.
func TestReloadRotatesTheAppToken(t *testing.T) {
	const first, second = "first-app-token-0123456789", "second-app-token-0123456789"
	e, logs := reloadEnvWith(t, func(s string) string {
		return strings.Replace(s, `app_listen = "127.0.0.1:0"`, `app_listen = "0.0.0.0:0"`+"\napp_token = \""+first+"\"", 1)
	})
	// A path wxgate does not route: 404 once past the token check, 401 before it. The listener
	// binds every interface; it is called on loopback.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.appURL, "http://"))
	url := "http://127.0.0.1:" + port + "/no/such/route"
	code := func(token string) string {
		t.Helper()
		var h []string
		if token != "" {
			h = []string{"Authorization", "Bearer " + token}
		}
		return e.doURL("POST", url, []byte(`{}`), h...).wxgateError(t)
	}
	if code(first) != proxy.CodeUnknownRoute || code("") != proxy.CodeUnauthorized || code(second) != proxy.CodeUnauthorized {
		t.Fatalf("before the reload: first %s, none %s, second %s", code(first), code(""), code(second))
	}
	if err := e.reloadText(t, func(s string) string { return strings.Replace(s, first, second, 1) }); err != nil {
		t.Fatal(err)
	}
	if code(second) != proxy.CodeUnknownRoute || code(first) != proxy.CodeUnauthorized {
		t.Fatalf("after rotating: second %s, first %s", code(second), code(first))
	}
	if line := lastLine(logs, "config reloaded"); line == "" || strings.Contains(line, "needs_restart") {
		t.Fatalf("a token rotation needs no restart: %q", line)
	}
	// The new config puts the app listener on loopback without a token: it is valid, but the
	// listener keeps its address until a restart, so the token must stay.
	err := e.reloadText(t, func(s string) string {
		return strings.Replace(strings.Replace(s, `app_listen = "0.0.0.0:0"`, `app_listen = "127.0.0.1:0"`, 1), "app_token = \""+first+"\"\n", "", 1)
	})
	if err == nil || !strings.Contains(err.Error(), "server.app_token") {
		t.Fatalf("removing the token of a reachable listener: want a refusal, got %v", err)
	}
	if code(second) != proxy.CodeUnknownRoute || code("") != proxy.CodeUnauthorized {
		t.Fatalf("after the refused reload: second %s, none %s", code(second), code(""))
	}
	if strings.Contains(logs.String(), first) || strings.Contains(logs.String(), second) {
		t.Fatalf("a token is in the log:\n%s", logs)
	}
}
