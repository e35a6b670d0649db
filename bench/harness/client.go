package harness

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// setupClient makes the harness's own set-up calls (logins, balances, metrics), never the load.
var setupClient = &fasthttp.Client{Name: "wxbench-setup", ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}

// call sends one request and decodes a JSON answer into out (when not nil); a non-2xx answer is
// an error.
func call(method, url string, header map[string]string, body []byte, out any) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	if err := setupClient.DoTimeout(req, resp, 30*time.Second); err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if sc := resp.StatusCode(); sc < 200 || sc > 299 {
		return fmt.Errorf("%s %s: HTTP %d %s", method, url, sc, resp.Body())
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body(), out); err != nil {
			return fmt.Errorf("%s %s: answer %q: %w", method, url, resp.Body(), err)
		}
	}
	return nil
}

// mustJSON encodes v, which cannot fail for the maps and structs the harness builds.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// jsonUnmarshal decodes b into v.
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// queryOf parses the query of a path?query.
func queryOf(pathQuery string) (url.Values, error) {
	u, err := url.Parse(pathQuery)
	if err != nil {
		return nil, err
	}
	return u.Query(), nil
}
