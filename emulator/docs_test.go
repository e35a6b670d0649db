package emulator

import (
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestControlEndpointsDocumented: every /_emulator/ path the control handlers route (read from
// their source) is in docs/emulator.md, and every /_emulator/ path the doc names is routed by a
// live emulator (it does not answer "unknown control path"), as are the login codes.
func TestControlEndpointsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/emulator.md")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for file, re := range map[string]*regexp.Regexp{
		"control.go":     regexp.MustCompile(`controlPrefix\s*\+\s*"([^"]+)"`),
		"mch_control.go": regexp.MustCompile(`mchControlPrefix\s*\+\s*"([^"]+)"`),
	} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		prefix := controlPrefix
		if file == "mch_control.go" {
			prefix = mchControlPrefix
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			routes[prefix+m[1]] = true
		}
	}
	if len(routes) < 12 {
		t.Fatalf("found only %d routes in the control handlers' source: %v", len(routes), routes)
	}
	for r := range routes {
		if !strings.Contains(string(doc), r) {
			t.Errorf("docs/emulator.md does not document %s", r)
		}
	}
	for _, code := range []string{"test:<user>", "test:<user>:<nonce>"} {
		if !strings.Contains(string(doc), code) {
			t.Errorf("docs/emulator.md does not document the login code %s", code)
		}
	}

	emu, err := New(Config{Apps: []App{{AppID: "wx00000000000000d1", Secret: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(ln)
	defer emu.Shutdown()
	documented := map[string]bool{}
	for _, p := range regexp.MustCompile("/_emulator/[a-z_/]+[a-z]").FindAllString(string(doc), -1) {
		documented[p] = true
	}
	var paths []string
	for p := range documented {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if p == controlPrefix+"files" {
			p += "/none.csv" // a download URL; an unknown one answers "unknown file"
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, "http://"+ln.Addr().String()+p, strings.NewReader("{}"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "unknown control path") {
				t.Errorf("docs/emulator.md names %s, which the emulator does not route (%s: %s)", p, method, body)
			}
		}
	}
}
