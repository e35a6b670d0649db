package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// problemsOf parses text and returns its problems by key ("" when the config is valid).
func problemsOf(t *testing.T, text, baseDir string) (*Config, map[string]string) {
	t.Helper()
	c, err := Parse([]byte(text), baseDir)
	if err == nil {
		return c, nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("not a validation error: %v", err)
	}
	got := map[string]string{}
	for _, p := range ve.Problems {
		got[p.Key] += p.Message
	}
	return nil, got
}

// TestAppTokenRequiredOffLoopback: an app listener other hosts can reach needs server.app_token;
// loopback and Unix sockets do not; the problem names the key and the address.
func TestAppTokenRequiredOffLoopback(t *testing.T) {
	tests := []struct {
		listen    string
		needToken bool
	}{
		{"127.0.0.1:8080", false},
		{"127.8.9.10:8080", false},
		{"[::1]:8080", false},
		{"localhost:8080", false},
		{"LOCALHOST:8080", false},
		{"unix:/run/wxgate/app.sock", false},
		{"0.0.0.0:8080", true},
		{":8080", true},
		{"[::]:8080", true},
		{"10.1.2.3:8080", true},
		{"gateway.internal:8080", true},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			text := "[server]\napp_listen = \"" + tt.listen + "\"\n" + minimal
			_, problems := problemsOf(t, text, t.TempDir())
			msg, refused := problems["server.app_token"]
			if refused != tt.needToken {
				t.Fatalf("app_token required = %v, want %v (problems %v)", refused, tt.needToken, problems)
			}
			if refused && (!strings.Contains(msg, tt.listen) || !strings.Contains(msg, "Authorization: Bearer")) {
				t.Fatalf("the problem should name the address and the header: %s", msg)
			}
			if len(problems) > 1 || (!refused && len(problems) > 0) {
				t.Fatalf("unexpected problems: %v", problems)
			}
			// With a token the same address is accepted.
			t.Setenv("WXGATE_TEST_APP_TOKEN", "a-long-enough-app-token-0123")
			c, problems := problemsOf(t, "[server]\napp_listen = \""+tt.listen+"\"\napp_token = \"env:WXGATE_TEST_APP_TOKEN\"\n"+minimal, t.TempDir())
			if problems != nil || c.Server.AppToken.Value() != "a-long-enough-app-token-0123" {
				t.Fatalf("with a token: %v", problems)
			}
		})
	}
}

// TestAppTokenRules: a token is a Secret like the others (inline, env:, file:), is at least 16
// characters, and its problems never quote it.
func TestAppTokenRules(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte("token-from-a-file-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "[server]\napp_listen = \"0.0.0.0:8080\"\n"
	c, problems := problemsOf(t, base+"app_token = \"file:token.txt\"\n"+minimal, dir)
	if problems != nil || c.Server.AppToken.Value() != "token-from-a-file-0123" || c.Server.AppToken.Source() != "file:token.txt" {
		t.Fatalf("file: token: %v", problems)
	}
	_, problems = problemsOf(t, base+"app_token = \"short-tok\"\n"+minimal, dir)
	if msg := problems["server.app_token"]; !strings.Contains(msg, "at least 16") || strings.Contains(msg, "short-tok") {
		t.Fatalf("short token: %v", problems)
	}
	_, problems = problemsOf(t, base+"app_token = \"env:WXGATE_TEST_UNSET_TOKEN\"\n"+minimal, dir)
	if !strings.Contains(problems["server.app_token"], "WXGATE_TEST_UNSET_TOKEN") {
		t.Fatalf("unset env token: %v", problems)
	}
}

// TestAppSocket: unix: paths are anchored at the config's folder, the mode defaults to 0660 and
// is checked, and the mode is refused without a socket; callback and admin take no socket.
func TestAppSocket(t *testing.T) {
	dir := t.TempDir()
	c, problems := problemsOf(t, "[server]\napp_listen = \"unix:run/app.sock\"\n"+minimal, dir)
	if problems != nil {
		t.Fatal(problems)
	}
	path, mode, ok := c.Server.AppSocket()
	if !ok || path != filepath.Join(dir, "run", "app.sock") || mode != 0o660 || !c.Server.AppListenIsLocal() {
		t.Fatalf("AppSocket = %q %#o %v", path, mode, ok)
	}
	c, problems = problemsOf(t, "[server]\napp_listen = \"unix:/run/wxgate/app.sock\"\napp_socket_mode = \"0600\"\n"+minimal, dir)
	if problems != nil {
		t.Fatal(problems)
	}
	if path, mode, _ := c.Server.AppSocket(); path != "/run/wxgate/app.sock" || mode != 0o600 {
		t.Fatalf("AppSocket = %q %#o", path, mode)
	}
	if _, _, ok := (Server{AppListen: "127.0.0.1:8080"}).AppSocket(); ok {
		t.Fatal("a TCP address is not a socket")
	}
	bad := []struct{ server, key, want string }{
		{"app_listen = \"unix:/run/app.sock\"\napp_socket_mode = \"rw-rw----\"", "server.app_socket_mode", "octal"},
		{"app_listen = \"unix:/run/app.sock\"\napp_socket_mode = \"01777\"", "server.app_socket_mode", "octal"},
		{"app_listen = \"unix:/run/app.sock\"\napp_socket_mode = \"0066\"", "server.app_socket_mode", "owner"},
		{"app_listen = \"127.0.0.1:8080\"\napp_socket_mode = \"0660\"", "server.app_socket_mode", "only to a Unix socket"},
		{"app_listen = \"unix:\"", "server.app_listen", "socket path"},
		{"app_listen = \"unix:/" + strings.Repeat("x", 120) + "\"", "server.app_listen", "at most"},
		{"callback_listen = \"unix:/run/cb.sock\"", "server.callback_listen", "host:port"},
		{"admin_listen = \"unix:/run/admin.sock\"", "server.admin_listen", "host:port"},
	}
	for _, b := range bad {
		_, problems := problemsOf(t, "[server]\n"+b.server+"\n"+minimal, dir)
		if !strings.Contains(problems[b.key], b.want) {
			t.Errorf("%q: want a problem at %s with %q, got %v", b.server, b.key, b.want, problems)
		}
	}
}
