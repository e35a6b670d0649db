// Package bareproxy is the benchmark's yardstick: a minimal fasthttp pass-through with the same
// kind of pooled upstream client and server limits as wxgate, that signs and verifies nothing.
// What wxgate costs beyond it is the price of its signing, verification and bookkeeping.
package bareproxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// Config configures a Proxy.
type Config struct {
	Upstream string        // http://host:port or https://host:port
	CAFile   string        // extra CA certificates (PEM) trusted for an https upstream
	Timeout  time.Duration // one upstream call; 5 s when zero
	MaxConns int           // pooled upstream connections; 512 when zero (wxgate's default)
}

// Proxy forwards every request to one upstream unchanged and hands back its answer unchanged.
type Proxy struct {
	client  *fasthttp.HostClient
	timeout time.Duration
}

// New builds a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("bareproxy: upstream %q is not http(s)://host:port", cfg.Upstream)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("bareproxy: upstream %q has no port", cfg.Upstream)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	maxConns := cfg.MaxConns
	if maxConns == 0 {
		maxConns = 512
	}
	var tlsConfig *tls.Config
	if u.Scheme == "https" {
		if tlsConfig, err = upstreamTLS(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	return &Proxy{timeout: timeout, client: &fasthttp.HostClient{
		Addr:                      u.Host,
		Name:                      "bareproxy",
		IsTLS:                     tlsConfig != nil,
		TLSConfig:                 tlsConfig,
		MaxConns:                  maxConns,
		MaxIdleConnDuration:       60 * time.Second,
		MaxConnWaitTimeout:        timeout / 2,
		ReadTimeout:               timeout,
		WriteTimeout:              timeout,
		MaxResponseBodySize:       16 << 20,
		ReadBufferSize:            16 << 10,
		WriteBufferSize:           16 << 10,
		DisablePathNormalizing:    true,
		MaxIdemponentCallAttempts: 1,
	}}, nil
}

// upstreamTLS trusts the system roots plus the certificates of caFile.
func upstreamTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("bareproxy: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("bareproxy: %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// Handle forwards the request of ctx and answers with the upstream's answer.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	req.Header.Del(fasthttp.HeaderConnection) // hop-by-hop: the upstream connection is pooled
	if p.client.IsTLS {
		req.URI().SetScheme("https")
	}
	if err := p.client.DoTimeout(req, &ctx.Response, p.timeout); err != nil {
		ctx.ResetBody()
		ctx.Error("bareproxy: upstream: "+err.Error(), fasthttp.StatusBadGateway)
		return
	}
	ctx.Response.Header.Del(fasthttp.HeaderConnection)
}

// Server returns a fasthttp server for p with limits like wxgate's app listener.
func (p *Proxy) Server() *fasthttp.Server { return newServer(p.Handle, "bareproxy") }

// newServer returns a fasthttp server for handler with limits like wxgate's app listener.
func newServer(handler fasthttp.RequestHandler, name string) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      handler,
		Name:                         name,
		Concurrency:                  10000,
		MaxRequestBodySize:           1 << 20,
		ReadTimeout:                  10 * time.Second,
		WriteTimeout:                 10 * time.Second,
		IdleTimeout:                  60 * time.Second,
		ReadBufferSize:               16 << 10,
		WriteBufferSize:              16 << 10,
		DisablePreParseMultipartForm: true,
		NoDefaultDate:                true,
		CloseOnShutdown:              true,
	}
}
