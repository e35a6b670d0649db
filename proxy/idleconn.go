package proxy

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// idleCheckAfter is how long a pooled connection must have been idle before its next request
// first checks that the peer has not closed it meanwhile. Servers close idle connections after
// seconds; a connection reused sooner (any busy pool) pays nothing.
const idleCheckAfter = 200 * time.Millisecond

// errPeerClosedIdle is the write error of a pooled connection found closed by its peer while it
// was idle. Nothing of the request was sent, so sending it on another connection is safe.
var errPeerClosedIdle = errors.New("the peer closed the pooled connection while it was idle; nothing was sent")

// retryIdleClosed is the RetryIfErr of wxgate's pooled clients: a request is sent again only
// when errPeerClosedIdle says nothing of it left. Any other failure may have reached the peer
// (a payment made, an event handled), so it is reported, never retried.
func retryIdleClosed(_ *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	return false, errors.Is(err, errPeerClosedIdle)
}

// idleRetryAttempts is MaxIdemponentCallAttempts for a pool of maxConns connections: every
// pooled connection may have been closed idle at once, then one new connection is dialed. Only
// errPeerClosedIdle is retried, and a new connection never fails with it.
func idleRetryAttempts(maxConns int) int { return maxConns + 1 }

// checkIdle wraps dial so that each connection checks, before the first write of a request
// that follows an answer and an idle time of at least after, whether the peer closed it.
func checkIdle(dial fasthttp.DialFunc, after time.Duration) fasthttp.DialFunc {
	return func(addr string) (net.Conn, error) {
		c, err := dial(addr)
		if err != nil {
			return nil, err
		}
		return newIdleCheckConn(c, after), nil
	}
}

// checkIdleTimeout is checkIdle for fasthttp's default dialer, which honours the request's
// remaining time when it has one.
func checkIdleTimeout(after time.Duration) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		var c net.Conn
		var err error
		if timeout > 0 {
			c, err = fasthttp.DialTimeout(addr, timeout)
		} else {
			c, err = fasthttp.Dial(addr)
		}
		if err != nil {
			return nil, err
		}
		return newIdleCheckConn(c, after), nil
	}
}

// idleCheckConn is a dialed TCP connection (under TLS, when there is TLS: a server's
// close_notify is then unread bytes) that notices a close by the peer while it sat in the pool.
// It relies on the client's use of a connection: a request is written, then its answer read.
type idleCheckConn struct {
	net.Conn
	raw   syscall.RawConn
	after time.Duration
	// lastRead is when the last Read returned (monotonic nanoseconds since idleEpoch), 0 once a
	// Write followed it: a Write that finds it set starts a request on a reused connection.
	lastRead atomic.Int64
}

// idleEpoch is the origin of idleCheckConn's monotonic clock.
var idleEpoch = time.Now()

// newIdleCheckConn wraps c, or returns it unchanged when it offers no descriptor to check.
func newIdleCheckConn(c net.Conn, after time.Duration) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &idleCheckConn{Conn: c, raw: raw, after: after}
}

// Read notes when the answer (or a handshake message) was last read.
func (c *idleCheckConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.lastRead.Store(int64(time.Since(idleEpoch)) | 1) // never 0
	return n, err
}

// Write fails with errPeerClosedIdle, sending nothing, when it starts a request on a connection
// idle for at least c.after that the peer closed (or sent something unasked) meanwhile.
func (c *idleCheckConn) Write(p []byte) (int, error) {
	if t := c.lastRead.Swap(0); t != 0 && time.Duration(int64(time.Since(idleEpoch))-t) >= c.after && peerClosed(c.raw) {
		return 0, errPeerClosedIdle
	}
	return c.Conn.Write(p)
}
