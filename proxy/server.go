package proxy

import (
	"errors"
	"fmt"
	"net"
	"sync"

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
}

// NewServer builds the fasthttp servers for g with the config's limits.
func NewServer(g *Gateway) *Server {
	s := g.cfg.Server
	app := &fasthttp.Server{
		Handler:                       g.AppHandler,
		ErrorHandler:                  serverError,
		Name:                          "wxgate",
		Concurrency:                   s.MaxConns,
		MaxRequestBodySize:            s.MaxBodyBytes,
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
		ErrorHandler:       serverError,
		Name:               "wxgate-admin",
		Concurrency:        256,
		MaxRequestBodySize: 4 << 10,
		ReadTimeout:        s.ReadTimeout,
		WriteTimeout:       s.WriteTimeout,
		IdleTimeout:        s.IdleTimeout,
		CloseOnShutdown:    true,
	}
	callback := &fasthttp.Server{
		Handler:                      g.CallbackHandler,
		ErrorHandler:                 serverError,
		Name:                         "wxgate",
		Concurrency:                  s.MaxConns,
		MaxRequestBodySize:           s.MaxBodyBytes,
		ReadTimeout:                  s.ReadTimeout,
		WriteTimeout:                 s.WriteTimeout,
		IdleTimeout:                  s.IdleTimeout,
		DisablePreParseMultipartForm: true,
		NoDefaultDate:                true,
		CloseOnShutdown:              true,
	}
	return &Server{Gateway: g, app: app, callback: callback, admin: admin}
}

// Listeners are the bound sockets of a Server.
type Listeners struct {
	App, Callback, Admin net.Listener
}

// Listen binds the configured addresses.
func Listen(cfg policies.Server) (Listeners, error) {
	app, err := net.Listen("tcp", cfg.AppListen)
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

// Start serves on the listeners in the background; Shutdown stops it.
func (s *Server) Start(l Listeners) {
	s.serve(s.app, l.App)
	s.serve(s.callback, l.Callback)
	s.serve(s.admin, l.Admin)
}

func (s *Server) serve(srv *fasthttp.Server, ln net.Listener) {
	if ln == nil {
		return
	}
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s on %s: %w", srv.Name, ln.Addr(), err))
			s.mu.Unlock()
		}
	}()
}

// Shutdown stops accepting, lets requests in flight finish, and returns any serve error.
func (s *Server) Shutdown() error {
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
	s.Gateway.workers.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(append(s.errs, err1, err2, err3)...)
}
