package policies

import (
	"net"
	"os"
	"strconv"
	"strings"
)

// UnixSocketPrefix starts a server.app_listen that is a Unix socket: "unix:/run/wxgate/app.sock".
const UnixSocketPrefix = "unix:"

// maxSocketPath is the longest Unix socket path the kernel takes (sun_path holds 108 bytes on
// Linux with the final NUL; 104 on the BSDs and macOS, the stricter one is checked).
const maxSocketPath = 103

// AppSocket returns the app listener's Unix socket path (absolute once the config is loaded) and
// the file mode it gets; ok is false when server.app_listen is host:port.
func (s Server) AppSocket() (path string, mode os.FileMode, ok bool) {
	path, ok = strings.CutPrefix(s.AppListen, UnixSocketPrefix)
	if !ok {
		return "", 0, false
	}
	m, _ := parseSocketMode(s.AppSocketMode) // checked by validation
	return path, m, true
}

// AppListenIsLocal reports whether only this host can reach server.app_listen: a Unix socket, or
// a loopback address (127.0.0.0/8, ::1, localhost). Anything else needs server.app_token.
func (s Server) AppListenIsLocal() bool {
	if strings.HasPrefix(s.AppListen, UnixSocketPrefix) {
		return true
	}
	host, _, err := net.SplitHostPort(s.AppListen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseSocketMode reads an octal permission such as "0660".
func parseSocketMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, strconv.ErrSyntax
	}
	return os.FileMode(m), nil
}

// validateAppListen checks the app listener's Unix socket settings (anchoring a relative socket
// path at baseDir) and that an app listener reachable from other hosts has an app_token.
func (c *Config) validateAppListen(v *validator, baseDir string) {
	s := &c.Server
	if path, ok := strings.CutPrefix(s.AppListen, UnixSocketPrefix); ok {
		if path == "" {
			v.add("server.app_listen", "unix: needs a socket path, such as unix:/run/wxgate/app.sock")
		} else {
			path = resolvePath(baseDir, path)
			if len(path) > maxSocketPath {
				v.add("server.app_listen", "the socket path %s is %d bytes long; the kernel takes at most %d", path, len(path), maxSocketPath)
			}
			s.AppListen = UnixSocketPrefix + path
		}
		if s.AppSocketMode == "" {
			s.AppSocketMode = DefaultAppSocketMode
		}
		if m, err := parseSocketMode(s.AppSocketMode); err != nil {
			v.add("server.app_socket_mode", "must be octal permission bits such as \"0660\" (owner and group may connect), got %q", s.AppSocketMode)
		} else if m&0o200 == 0 {
			v.add("server.app_socket_mode", "%q leaves the owner without write permission: nobody could connect, not even wxgate's user", s.AppSocketMode)
		}
	} else if s.AppSocketMode != "" {
		v.add("server.app_socket_mode", "applies only to a Unix socket (app_listen = \"unix:/path/app.sock\"); app_listen is %q", s.AppListen)
	}
	if !s.AppListenIsLocal() && !s.AppToken.hasRef() {
		v.add("server.app_token", "is required because server.app_listen (%q) is reachable from other hosts: "+
			"set a token (inline, \"env:NAME\" or \"file:PATH\") that every request must send as \"Authorization: Bearer <token>\", "+
			"or listen on loopback (127.0.0.1:8080) or a Unix socket (unix:/run/wxgate/app.sock)", s.AppListen)
	}
}

// minAppTokenLen is the shortest server.app_token accepted: a guessable token is no lock.
const minAppTokenLen = 16
