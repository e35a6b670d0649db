//go:build unix

package proxy

import (
	"errors"
	"syscall"
)

// peerClosed reports whether the peer closed the connection or sent bytes nobody asked for (for
// HTTP/1.1 between requests, both mean it is unusable). It peeks without blocking: Go's sockets
// are non-blocking, and Control (unlike RawConn.Read) ignores the read deadline, which the last
// answer's timeout may have left in the past.
func peerClosed(raw syscall.RawConn) bool {
	closed := true
	err := raw.Control(func(fd uintptr) {
		var b [1]byte
		for {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			// EAGAIN: nothing to read, the connection is open. n == 0 without an error is the
			// peer's FIN; n > 0 unsolicited bytes; any other error (ECONNRESET) a dead connection.
			closed = !errors.Is(err, syscall.EAGAIN) || n > 0
			return
		}
	})
	return err != nil || closed
}
