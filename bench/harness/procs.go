package harness

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started: its own process group (so stopping it stops
// whatever it started, nginx's workers included), stdout read line by line, the end of stderr
// kept for error messages.
type proc struct {
	name   string
	cmd    *exec.Cmd
	lines  chan string
	stderr *tail
	exited chan struct{}
	err    error // the exit status, set before exited is closed
}

// startProc starts path with args in dir. The child gets SIGKILL if the harness dies first.
func startProc(name, dir, path string, args ...string) (*proc, error) {
	return startProcEnv(name, dir, nil, path, args...)
}

// startProcEnv is startProc with env (KEY=value) added to the harness's environment.
func startProcEnv(name, dir string, env []string, path string, args ...string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 16), stderr: &tail{max: 4 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var readDone sync.WaitGroup
	readDone.Add(1)
	go func() {
		defer readDone.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads further lines; drop them
			}
		}
	}()
	go func() {
		readDone.Wait()
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid returns the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// readLine returns the next line the child printed, waiting at most timeout.
func (p *proc) readLine(timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-p.lines:
		return l, nil
	case <-p.exited:
		return "", p.failure("exited before it was ready")
	case <-t.C:
		return "", p.failure(fmt.Sprintf("printed nothing within %v", timeout))
	}
}

// alive returns an error if the child has exited.
func (p *proc) alive() error {
	select {
	case <-p.exited:
		return p.failure("exited")
	default:
		return nil
	}
}

// failure describes the child's failure with the end of its stderr.
func (p *proc) failure(what string) error {
	msg := fmt.Sprintf("%s %s", p.name, what)
	if p.err != nil {
		msg += " (" + p.err.Error() + ")"
	}
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// stop sends SIGTERM to the child's process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// tail keeps the last max bytes written to it. It is safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
