package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// upstream is the pooled client for one WeChat host.
type upstream struct {
	base    string // scheme://host[:port], no trailing slash
	client  *fasthttp.HostClient
	timeout time.Duration
}

// upstreamDialer dials every upstream client: one DNS cache, and one cleaner goroutine for it
// however many clients reloads have built (each dialer runs its own until its entries expire).
var upstreamDialer = &fasthttp.TCPDialer{Concurrency: 0}

// newUpstream builds the pooled client for base with every limit set from the config.
func newUpstream(base string, u policies.Upstream, tlsConfig *tls.Config) (*upstream, error) {
	p, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", base, err)
	}
	addr := p.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "80"
		if p.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(p.Hostname(), port)
	}
	hc := &fasthttp.HostClient{
		Addr:                          addr,
		Name:                          "wxgate",
		IsTLS:                         p.Scheme == "https",
		MaxConns:                      u.MaxConnsPerHost,
		MaxIdleConnDuration:           u.MaxIdleDuration,
		MaxConnDuration:               10 * time.Minute,
		MaxConnWaitTimeout:            u.Timeout / 2,
		ReadTimeout:                   u.Timeout,
		WriteTimeout:                  u.Timeout,
		MaxResponseBodySize:           u.MaxResponseBytes,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		DisableHeaderNamesNormalizing: false,
		DisablePathNormalizing:        true,
		// A call goes out again only on a pooled connection WeChat closed while it was idle,
		// found before anything was sent; every other failure is the app's to resolve.
		MaxIdemponentCallAttempts: idleRetryAttempts(u.MaxConnsPerHost),
		RetryIfErr:                retryIdleClosed,
		Dial:                      checkIdle(upstreamDialer.Dial, idleCheckAfter),
		TLSConfig:                 tlsConfig,
	}
	return &upstream{base: p.Scheme + "://" + p.Host, client: hc, timeout: u.Timeout}, nil
}

// do sends req and reads the answer into resp within the upstream timeout.
func (u *upstream) do(req *fasthttp.Request, resp *fasthttp.Response) *apiError {
	err := u.client.DoTimeout(req, resp, u.timeout)
	if err == nil {
		return nil
	}
	return upstreamError(err)
}

// upstreamError turns a client failure into the answer the app gets.
func upstreamError(err error) *apiError {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrTLSHandshakeTimeout):
		return newError(fasthttp.StatusGatewayTimeout, CodeUpstreamTimeout, "WeChat did not answer within [upstream] timeout; the call may or may not have been executed, query before retrying a payment")
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrConnPoolStrategyNotImpl):
		return newError(fasthttp.StatusServiceUnavailable, CodeUpstreamBusy, "all upstream connections are busy ([upstream] max_conns_per_host); retry shortly")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return newError(fasthttp.StatusBadGateway, CodeUpstreamTooLarge, "WeChat's answer exceeded [upstream] max_response_bytes")
	default:
		return newError(fasthttp.StatusBadGateway, CodeUpstreamUnreach, "could not reach WeChat ("+errorKind(err)+"); the call may not have been executed, query before retrying a payment")
	}
}

// errorKind names a transport error briefly without echoing anything the request carried.
func errorKind(err error) string {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe):
		return oe.Op + " " + oe.Net + " failed"
	case errors.As(err, &ne):
		return "network error"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "connection closed by WeChat before answering"
	case errors.Is(err, errPeerClosedIdle):
		return "every pooled connection was closed while idle"
	default:
		return "transport error"
	}
}

// readCAFile returns the contents of [upstream] ca_file (nil when none is configured).
func readCAFile(u policies.Upstream) ([]byte, error) {
	if u.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(u.CAFile)
	if err != nil {
		return nil, fmt.Errorf("upstream ca_file: %w", err)
	}
	return pem, nil
}

// upstreamTLS is the TLS configuration for WeChat hosts: the system roots plus caPEM, the
// contents of [upstream] ca_file (readCAFile).
func upstreamTLS(u policies.Upstream, caPEM []byte) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if u.CAFile == "" {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("upstream ca_file %s holds no PEM certificate", u.CAFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
