package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/wxgate/wxgate/policies"
)

// staleProbeTimeout bounds the connect that tells a live socket from a stale one.
const staleProbeTimeout = time.Second

// listenApp binds the app listener: TCP, or the Unix socket of app_listen = "unix:PATH".
func listenApp(cfg policies.Server) (net.Listener, error) {
	path, mode, ok := cfg.AppSocket()
	if !ok {
		return net.Listen("tcp", cfg.AppListen)
	}
	return listenUnix(path, mode)
}

// listenUnix binds a Unix socket at path with the file mode mode. A socket file left by a
// process that died without removing it is removed first, but only when nothing accepts
// connections on it; a live socket or a file that is not a socket is an error, never removed.
// Closing the listener removes the file.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The file is created with the process umask; the mode is set before anything is accepted.
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set the socket's mode %#o: %w", mode, err)
	}
	return ln, nil
}

// removeStaleSocket removes the socket file at path when no process listens on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%s); wxgate removes only a stale socket file, remove it yourself or choose another path", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, staleProbeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another process is listening on this socket (a wxgate already running?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: cannot tell whether the socket is in use (%w); not removing it", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the stale socket %s: %w", path, err)
	}
	return nil
}
