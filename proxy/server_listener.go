package proxy

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Accept backoff after a temporary failure: doubling from the first to the last.
const (
	acceptBackoffFirst = 5 * time.Millisecond
	acceptBackoffMax   = time.Second
)

// keepAccepting is a listener that rides out temporary accept failures: no file descriptor left
// (EMFILE, ENFILE), no buffer memory, a connection aborted before it was taken. fasthttp treats
// every accept error but a timeout as permanent and stops serving for good, so without it one
// burst of connections past the descriptor limit would close the door until a restart.
type keepAccepting struct {
	net.Listener
	name     string // "callback listener", ...
	failures *vm.Counter
	log      *rateLog

	closeOnce sync.Once
	closed    chan struct{}
}

func newKeepAccepting(ln net.Listener, name string, failures *vm.Counter, log *rateLog) *keepAccepting {
	return &keepAccepting{Listener: ln, name: name, failures: failures, log: log, closed: make(chan struct{})}
}

// Accept waits for the next connection, retrying temporary failures with a backoff.
func (l *keepAccepting) Accept() (net.Conn, error) {
	delay := acceptBackoffFirst
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		if !temporaryAcceptError(err) {
			return nil, err
		}
		l.failures.Inc()
		l.log.warn("accept "+l.name, "accepting a connection failed; retrying", "listener", l.name, "error", err.Error(), "retry_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
		delay = min(2*delay, acceptBackoffMax)
	}
}

// Close closes the listener and ends a backoff in progress.
func (l *keepAccepting) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// temporaryAcceptErrnos are the accept(2) failures that pass: resources that come back, and
// connections that went away before they were taken.
var temporaryAcceptErrnos = []syscall.Errno{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM,
}

// temporaryAcceptError reports whether an Accept error may pass if retried.
func temporaryAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range temporaryAcceptErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
