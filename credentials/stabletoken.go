package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// DefaultBaseURL is WeChat's API origin.
const DefaultBaseURL = "https://api.weixin.qq.com"

// DefaultFetchTimeout bounds one stable_token request when StableTokenClient.Timeout is zero.
const DefaultFetchTimeout = 10 * time.Second

const stableTokenPath = "/cgi-bin/stable_token"

// maxErrMsg bounds the errmsg kept in a WeChatError.
const maxErrMsg = 256

// defaultHTTPClient is used when StableTokenClient.Client is nil.
var defaultHTTPClient = &fasthttp.Client{
	Name:                "wxgate",
	MaxResponseBodySize: 64 << 10,
}

// WeChatError is an error answer {"errcode":..,"errmsg":..} from a WeChat API. Use errors.As to
// get it from a wrapped error.
type WeChatError struct {
	Code int
	Msg  string
}

// Error implements error.
func (e *WeChatError) Error() string {
	return fmt.Sprintf("wechat errcode %d: %s", e.Code, e.Msg)
}

// StableTokenClient fetches access_tokens with POST {BaseURL}/cgi-bin/stable_token. Its Fetch
// method is a FetchFunc. Errors carry the HTTP status or WeChat's errcode/errmsg but never the
// secret or a token.
type StableTokenClient struct {
	// Client sends the request; nil uses a package-wide client limited to 64 KiB responses.
	Client *fasthttp.Client
	// BaseURL is the API origin; empty means DefaultBaseURL.
	BaseURL string
	// AppID and Secret identify the app.
	AppID, Secret string
	// Timeout bounds one request; zero means DefaultFetchTimeout.
	Timeout time.Duration
}

type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

type stableTokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
}

// Fetch obtains a token; force asks for force_refresh=true.
func (c *StableTokenClient) Fetch(force bool) (string, time.Duration, error) {
	if c.AppID == "" || c.Secret == "" {
		return "", 0, errors.New("credentials: stable_token: AppID and Secret are required")
	}
	body, err := json.Marshal(stableTokenRequest{
		GrantType: "client_credential", AppID: c.AppID, Secret: c.Secret, ForceRefresh: force,
	})
	if err != nil {
		return "", 0, fmt.Errorf("credentials: stable_token for app %s: encode request: %w", c.AppID, err)
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(strings.TrimRight(c.baseURL(), "/") + stableTokenPath)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	if err := c.client().DoTimeout(req, resp, c.timeout()); err != nil {
		return "", 0, fmt.Errorf("credentials: stable_token for app %s: %w", c.AppID, err)
	}
	if code := resp.StatusCode(); code != fasthttp.StatusOK {
		return "", 0, fmt.Errorf("credentials: stable_token for app %s: HTTP status %d", c.AppID, code)
	}
	tok, ttl, err := c.parse(resp.Body())
	if err != nil {
		return "", 0, fmt.Errorf("credentials: stable_token for app %s: %w", c.AppID, err)
	}
	return tok, ttl, nil
}

// parse decodes a stable_token answer. Its errors quote neither the body nor the token.
func (c *StableTokenClient) parse(body []byte) (string, time.Duration, error) {
	var r stableTokenResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "", 0, describeJSONError(len(body), err)
	}
	if r.ErrCode != 0 {
		return "", 0, &WeChatError{Code: r.ErrCode, Msg: c.scrub(r.ErrMsg)}
	}
	if r.AccessToken == "" {
		return "", 0, errors.New("response has no access_token")
	}
	if r.ExpiresIn <= 0 || r.ExpiresIn > math.MaxInt64/int64(time.Second) {
		return "", 0, fmt.Errorf("response has invalid expires_in %d", r.ExpiresIn)
	}
	return r.AccessToken, time.Duration(r.ExpiresIn) * time.Second, nil
}

// describeJSONError reports a decoding failure by kind and offset only: the default messages
// may quote parts of the body.
func describeJSONError(n int, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("response (%d bytes) is not JSON: syntax error at offset %d", n, syn.Offset)
	case errors.As(err, &typ):
		kind, _, _ := strings.Cut(typ.Value, " ") // "number 12" → "number"
		return fmt.Errorf("response field %q has JSON type %s, want %v", typ.Field, kind, typ.Type)
	default:
		return fmt.Errorf("response (%d bytes) is not valid JSON", n)
	}
}

// scrub removes the secret from a WeChat errmsg (defence in depth) and bounds its length.
func (c *StableTokenClient) scrub(msg string) string {
	if c.Secret != "" {
		msg = strings.ReplaceAll(msg, c.Secret, "[redacted]")
	}
	if len(msg) > maxErrMsg {
		msg = strings.ToValidUTF8(msg[:maxErrMsg], "") + "…"
	}
	return msg
}

func (c *StableTokenClient) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return c.BaseURL
}

func (c *StableTokenClient) client() *fasthttp.Client {
	if c.Client == nil {
		return defaultHTTPClient
	}
	return c.Client
}

func (c *StableTokenClient) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultFetchTimeout
	}
	return c.Timeout
}
