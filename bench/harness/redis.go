package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// redisServer is a redis-server the harness started for the store scenario: its own process
// (group) on a free loopback port, in a folder of the harness's, persisting nothing.
type redisServer struct {
	p    *proc
	addr string
	// mon is the harness's own connection, for INFO: its commands are told apart from wxgate's
	// (cmdstat_info), and it sends nothing else.
	mon *respConn
}

// redisReady is the line redis-server logs once it accepts connections.
const redisReady = "Ready to accept connections"

// startRedis starts redis-server in a folder named name under the harness's; the caller stops
// it. It is ready when it logs redisReady (its log goes to stdout), or answers PING should that
// line have been missed.
func (h *harness) startRedis(name string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed (apt-get install redis-server): the store scenario compares wxgate on Redis")
	}
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ports[0])
	p, err := startProc(name, dir, bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--logfile", "")
	if err != nil {
		return nil, err
	}
	r := &redisServer{p: p, addr: ports[0]}
	if err := r.waitReady(20 * time.Second); err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	if r.mon, err = dialRedis(r.addr); err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	return r, nil
}

func (r *redisServer) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		line, err := r.p.readLine(100 * time.Millisecond)
		if err == nil && strings.Contains(line, redisReady) {
			return nil
		}
		if err := r.p.alive(); err != nil {
			return err
		}
		if err != nil { // nothing logged for a while: a dropped line?
			if c, err := dialRedis(r.addr); err == nil {
				pong, err := c.do("PING")
				c.close()
				if err == nil && pong == "PONG" {
					return nil
				}
			}
		}
	}
	return r.p.failure(fmt.Sprintf("did not log %q within %v", redisReady, timeout))
}

// url is the redis_url of the server.
func (r *redisServer) url() string { return "redis://" + r.addr }

// pid is redis-server's process id.
func (r *redisServer) pid() int { return r.p.pid() }

// info returns the fields of INFO section.
func (r *redisServer) info(section string) (map[string]string, error) {
	s, err := r.mon.do("INFO", section)
	if err != nil {
		return nil, fmt.Errorf("redis INFO %s: %w", section, err)
	}
	return parseInfo(s), nil
}

// commands returns the calls of every command so far (INFO commandstats), the harness's own
// INFO calls left out.
func (r *redisServer) commands() (map[string]int64, error) {
	info, err := r.info("commandstats")
	if err != nil {
		return nil, err
	}
	calls := commandCalls(info)
	delete(calls, "info")
	return calls, nil
}

func (r *redisServer) stop() {
	if r.mon != nil {
		r.mon.close()
	}
	r.p.stop(5 * time.Second)
}

// parseInfo reads the "field:value" lines of an INFO answer; "# Section" headings and blank
// lines are skipped.
func parseInfo(s string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// commandCalls reads the calls of each command from INFO commandstats fields
// (cmdstat_set -> "calls=3,usec=12,..."); subcommands keep their name ("config|get").
func commandCalls(info map[string]string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range info {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		for f := range strings.SplitSeq(v, ",") {
			if n, ok := strings.CutPrefix(f, "calls="); ok {
				if c, err := strconv.ParseInt(n, 10, 64); err == nil {
					out[name] = c
				}
			}
		}
	}
	return out
}

// callsDelta is after minus before, per command, leaving out commands not called in between.
func callsDelta(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// perCommand renders calls per unit ("set 2.00, get 0.01"), the most called first, and
// returns their total per unit too.
func perCommand(calls map[string]int64, units float64) (string, float64) {
	if units <= 0 {
		return "n/a", 0
	}
	names := make([]string, 0, len(calls))
	var total int64
	for k, v := range calls {
		names = append(names, k)
		total += v
	}
	sort.Slice(names, func(i, j int) bool {
		if calls[names[i]] != calls[names[j]] {
			return calls[names[i]] > calls[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.3g", strings.ToUpper(n), float64(calls[n])/units)
	}
	if len(parts) == 0 {
		return "none", 0
	}
	return strings.Join(parts, ", "), float64(total) / units
}

// infoInt returns an integer field of an INFO answer.
func infoInt(info map[string]string, key string) (int64, bool) {
	v, ok := info[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// respConn is a minimal RESP2 client: one command at a time, for the harness's INFO and
// FLUSHALL (wxgate and the store package use their own client).
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRedis(addr string) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, r: bufio.NewReader(c)}, nil
}

func (c *respConn) close() { c.c.Close() }

// do sends a command and returns its answer as text: a status, an error (as error), an
// integer or a bulk string.
func (c *respConn) do(args ...string) (string, error) {
	if err := c.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return "", err
	}
	if _, err := c.c.Write(appendCommand(nil, args...)); err != nil {
		return "", err
	}
	return readReply(c.r)
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(b []byte, args ...string) []byte {
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// readReply reads one RESP2 reply that is not an array.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redis: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redis: bulk length %q", line)
		}
		if n < 0 {
			return "", nil // nil bulk
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
}
