package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// Server runs a Gateway's listeners: the app listener, the WeChat-facing callback listener and the
// admin listener.
type Server struct {
	Gateway  *Gateway
	app      *fasthttp.Server
	callback *fasthttp.Server
	admin    *fasthttp.Server
	wg       sync.WaitGroup
	mu       sync.Mutex
	errs     []error
	lns      []net.Listener // what Start serves on, closed again by Shutdown

	stopping atomic.Bool
	failOnce sync.Once
	failed   chan struct{} // closed when a listener stopped serving on its own
}

// Listener names, as logs, metrics and /healthz show them.
const (
	listenerApp      = "app listener"
	listenerCallback = "callback listener"
	listenerAdmin    = "admin listener"
)

// adminMaxConns caps the admin listener's connections (probes and scrapes).
const adminMaxConns = 256

// NewServer builds the fasthttp servers for g with the config's limits. The callback listener
// faces the Internet and has the tightest: its own body limit and read timeout, a per-IP
// connection cap, and bodies read as they arrive (streamed), so that a Content-Length announced
// but never sent costs no memory.
func NewServer(g *Gateway) *Server {
	s := g.current().cfg.Server
	app := &fasthttp.Server{
		Handler:                       g.AppHandler,
		ErrorHandler:                  g.appServerError,
		Logger:                        fastLogger{rate: g.rate, where: listenerApp},
		Name:                          "wxgate",
		Concurrency:                   s.MaxConns,
		MaxRequestBodySize:            s.MaxBodyBytes,
		HeaderReceived:                g.appRequestConfig(uploadLimits(s)), // no body without app_token; max_upload_bytes on the upload routes
		ReadTimeout:                   s.ReadTimeout,
		WriteTimeout:                  s.WriteTimeout,
		IdleTimeout:                   s.IdleTimeout,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		MaxConnsPerIP:                 0,
		MaxRequestsPerConn:            0,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         false,
		NoDefaultDate:                 true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
	}
	admin := &fasthttp.Server{
		Handler:            g.AdminHandler,
		ErrorHandler:       serverError(""),
		Logger:             fastLogger{rate: g.rate, where: listenerAdmin},
		Name:               "wxgate-admin",
		Concurrency:        adminMaxConns,
		MaxRequestBodySize: 4 << 10,
		ReadTimeout:        s.ReadTimeout,
		WriteTimeout:       s.WriteTimeout,
		IdleTimeout:        s.IdleTimeout,
		CloseOnShutdown:    true,
	}
	callback := &fasthttp.Server{
		Handler:                      g.CallbackHandler,
		ErrorHandler:                 serverError("server.callback_max_body_bytes"),
		Logger:                       fastLogger{rate: g.rate, where: listenerCallback},
		Name:                         "wxgate",
		Concurrency:                  s.CallbackMaxConns,
		MaxConnsPerIP:                s.CallbackMaxConnsPerIP,
		MaxRequestBodySize:           s.CallbackMaxBodyBytes,
		StreamRequestBody:            true,
		HeaderReceived:               refuseAnnouncedOver(s.CallbackMaxBodyBytes),
		ReadTimeout:                  s.CallbackReadTimeout,
		WriteTimeout:                 s.WriteTimeout,
		IdleTimeout:                  min(s.IdleTimeout, callbackIdleTimeout),
		ReadBufferSize:               4 << 10,
		WriteBufferSize:              4 << 10,
		DisablePreParseMultipartForm: true,
		NoDefaultDate:                true,
		CloseOnShutdown:              true,
	}
	return &Server{Gateway: g, app: app, callback: callback, admin: admin, failed: make(chan struct{})}
}

// refuseAnnouncedOver makes a streamed request that announces a body over limit reach the handler
// (which answers 413) after one byte of it, instead of after the first 8 KiB fasthttp reads ahead.
func refuseAnnouncedOver(limit int) func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		if h.ContentLength() > limit {
			return fasthttp.RequestConfig{MaxRequestBodySize: 1}
		}
		return fasthttp.RequestConfig{}
	}
}

// callbackIdleTimeout bounds how long the callback listener keeps an idle keep-alive connection.
const callbackIdleTimeout = 15 * time.Second

// Listeners are the bound sockets of a Server.
type Listeners struct {
	App, Callback, Admin net.Listener
}

// Listen binds the configured addresses. An app listener on a Unix socket removes its file when
// closed; a stale file left by a crash is removed first (see listenUnix).
func Listen(cfg policies.Server) (Listeners, error) {
	app, err := listenApp(cfg)
	if err != nil {
		return Listeners{}, fmt.Errorf("app listener %s: %w", cfg.AppListen, err)
	}
	callback, err := net.Listen("tcp", cfg.CallbackListen)
	if err != nil {
		app.Close()
		return Listeners{}, fmt.Errorf("callback listener %s: %w", cfg.CallbackListen, err)
	}
	admin, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		app.Close()
		callback.Close()
		return Listeners{}, fmt.Errorf("admin listener %s: %w", cfg.AdminListen, err)
	}
	return Listeners{App: app, Callback: callback, Admin: admin}, nil
}

// Start serves on the listeners in the background; Shutdown stops it. Each listener keeps
// accepting through temporary failures (descriptors exhausted); one that stops on its own
// fails /healthz and closes Failed.
func (s *Server) Start(l Listeners) {
	s.serve(s.app, l.App, listenerApp)
	s.serve(s.callback, l.Callback, listenerCallback)
	s.serve(s.admin, l.Admin, listenerAdmin)
}

func (s *Server) serve(srv *fasthttp.Server, ln net.Listener, name string) {
	if ln == nil {
		return
	}
	g := s.Gateway
	ln = newKeepAccepting(ln, name, g.metrics.acceptFailure(name), g.rate)
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.Serve(ln)
		if s.stopping.Load() {
			return
		}
		if err == nil {
			err = errors.New("stopped serving")
		}
		err = fmt.Errorf("%s on %s: %w", name, ln.Addr(), err)
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		g.setUnhealthy(err.Error())
		g.log.Error("a listener stopped accepting connections; wxgate must be restarted", "listener", name, "error", err.Error())
		s.failOnce.Do(func() { close(s.failed) })
	}()
}

// Failed is closed when a listener stopped serving on its own (not by Shutdown): the process
// should exit non-zero so that its supervisor restarts it.
func (s *Server) Failed() <-chan struct{} { return s.failed }

// Err returns the errors of the listeners that stopped on their own.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Shutdown stops accepting, lets requests in flight finish, and returns any serve error.
func (s *Server) Shutdown() error {
	s.stopping.Store(true)
	err1 := s.app.Shutdown()
	err2 := s.callback.Shutdown()
	err3 := s.admin.Shutdown()
	// fasthttp's Shutdown closes only the listeners its Serve has taken already; a serving
	// goroutine that had not got that far would take its listener afterwards and accept forever.
	// Closing them here ends that Serve too (the ones already closed answer net.ErrClosed).
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(append(s.errs, err1, err2, err3)...)
}

// fdReserve is the descriptors counted for everything but connections: the listeners, files
// (the disk store holds one; the redis store a pipe and a subscription per node, a dozen for a
// cluster), the runtime's poller, pipes.
const fdReserve = 64

// DescriptorsNeeded is the number of file descriptors a gateway for cfg may hold at once with
// every limit reached: each listener's connection cap, the pooled connections to both WeChat
// hosts and to each distinct forward URL host, and a small reserve.
func DescriptorsNeeded(cfg *policies.Config) int {
	s, u := cfg.Server, cfg.Upstream
	n := s.MaxConns + s.CallbackMaxConns + adminMaxConns
	n += 2 * (u.MaxConnsPerHost + tokenClientMaxConns)
	hosts := map[string]bool{}
	for _, a := range cfg.Apps {
		hosts[forwardHost(a.ForwardURL)] = true
	}
	for _, m := range cfg.Merchants {
		hosts[forwardHost(m.ForwardURL)] = true
	}
	delete(hosts, "")
	n += len(hosts) * cfg.Forward.MaxConns
	return n + fdReserve
}

// forwardHost is the host:port part of a forward URL ("" when there is none).
func forwardHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// serverError returns the handler of fasthttp's own failures on a listener whose body limit is
// the config key limitKey: a body too large or a malformed request is answered as JSON, and a
// connection that sent nothing before the read timeout is closed without an answer.
func serverError(limitKey string) func(*fasthttp.RequestCtx, error) {
	return func(ctx *fasthttp.RequestCtx, err error) {
		if _, nothingRead := err.(*net.OpError); nothingRead {
			// fasthttp passes the raw read error only when not one byte of a request came:
			// whatever it writes now fails at once, and the connection is closed.
			_ = ctx.Conn().SetWriteDeadline(time.Unix(1, 0))
			return
		}
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge) && limitKey != "":
			writeError(ctx, newError(fasthttp.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the request body exceeds "+limitKey))
		default:
			writeError(ctx, newError(fasthttp.StatusBadRequest, CodeBadRequest, "malformed HTTP request"))
		}
	}
}
