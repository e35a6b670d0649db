// Package redistest starts real redis-server processes for tests: one server, a three-node
// Redis Cluster, or a Sentinel watching a server. Each runs on a free loopback port in a
// temporary folder and is stopped when the test ends.
//
// When redis-server is not installed the tests that need it are skipped with a message, unless
// WXGATE_REQUIRE_REDIS=1 (set by .ci/run), which makes them fail instead.
//
// It must never be imported by non-test code.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a redis-server may take to accept connections.
const startTimeout = 20 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	dir  string
	port int
	args []string
	tls  bool // the port speaks TLS only

	mu  sync.Mutex
	cmd *exec.Cmd
}

// binary returns the path of a redis tool, skipping (or failing, under WXGATE_REQUIRE_REDIS=1)
// the test when it is missing.
func binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := name + " is not installed (apt-get install -y redis-server): the tests against a real Redis cannot run"
		if os.Getenv("WXGATE_REQUIRE_REDIS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// Start runs a redis-server with extra config args (e.g. "--requirepass", "pw") and stops it
// when the test ends.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), args: args}
	s.start(freePort(t))
	t.Cleanup(s.Kill)
	return s
}

// StartTLS runs a redis-server that accepts only TLS connections, with the PEM files certFile
// and keyFile; clients are not asked for certificates. Addr is its TLS port.
func StartTLS(t testing.TB, certFile, keyFile string) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir()}
	s.args = []string{"--tls-port", "", "--port", "0", "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"}
	s.tls = true
	s.start(freePort(t))
	t.Cleanup(s.Kill)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// URL is redis://host:port.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Dir is the server's working folder (its dump and config files).
func (s *Server) Dir() string { return s.dir }

func (s *Server) start(port int) {
	s.t.Helper()
	s.port = port
	extra := s.args
	if s.tls {
		extra = append([]string(nil), s.args...)
		extra[1] = strconv.Itoa(port) // --tls-port
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--logfile", ""}, extra...)
	s.run(binary(s.t, "redis-server"), args, "Ready to accept connections")
}

// run starts bin with args and waits until its log prints ready.
func (s *Server) run(bin string, args []string, ready string) {
	s.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", bin, err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	readyCh := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var log strings.Builder
		found := false
		for sc.Scan() {
			if !found {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), ready) {
					found = true
					readyCh <- nil
				}
			}
		}
		if !found {
			readyCh <- fmt.Errorf("exited before %q:\n%s", ready, log.String())
		}
	}()
	select {
	case err := <-readyCh:
		if err != nil {
			s.t.Fatalf("%s on port %d: %v", filepath.Base(bin), s.port, err)
		}
	case <-time.After(startTimeout):
		s.Kill()
		s.t.Fatalf("%s on port %d did not start within %s", filepath.Base(bin), s.port, startTimeout)
	}
}

// Kill stops the server with SIGKILL (idempotent).
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop stops the server with SIGTERM and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_ = cmd.Wait()
}

// Restart starts the server again on the same port and folder after Stop or Kill.
func (s *Server) Restart() {
	s.t.Helper()
	s.start(s.port)
}

// Do runs one command with redis-cli against the server and returns its output, trimmed.
func (s *Server) Do(args ...string) string {
	s.t.Helper()
	return cli(s.t, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...)
}

func cli(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary(t, "redis-cli"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(bytes.TrimSpace(out))
}

// freePort returns a loopback TCP port that was free a moment ago, whose port+10000 (the
// cluster bus port) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free loopback port pair found")
	return 0
}

// Cluster is a Redis Cluster of three masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// StartCluster runs three cluster-enabled servers and joins them with redis-cli --cluster
// create, returning once the cluster answers with state ok on every node.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{}
	var addrs []string
	for range 3 {
		n := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr())
	}
	cli(t, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.Nodes {
		for !strings.Contains(n.Do("cluster", "info"), "cluster_state:ok") {
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s did not reach cluster_state:ok", n.Addr())
			}
			waitABit()
		}
	}
	return c
}

// Addrs are the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr())
	}
	return a
}

// StartSentinel runs a Sentinel that monitors master under the name masterName.
func StartSentinel(t testing.TB, masterName string, master *Server) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir()}
	s.port = freePort(t)
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 2000\n",
		s.port, s.dir, masterName, master.Port(), masterName)
	path := filepath.Join(s.dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.run(binary(t, "redis-server"), []string{path, "--sentinel"}, "+monitor master")
	t.Cleanup(s.Kill)
	return s
}

// waitABit pauses between two polls of a cluster's state, which no event announces.
func waitABit() { time.Sleep(50 * time.Millisecond) }
