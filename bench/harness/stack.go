package harness

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/policies"
)

// emuReady is the line `wxgate emulate -json` prints once it serves.
type emuReady struct {
	Weixin      string `json:"weixin"`
	Mch         string `json:"mch"`
	CAFile      string `json:"ca_file"`
	PublicKeyID string `json:"public_key_id"`
}

// stack is a running emulator and wxgate, each its own process.
type stack struct {
	emu, gate  *proc
	emuInfo    emuReady
	apps       []appCreds
	cfg        *policies.Config // wxgate's config, parsed
	appAddr    string           // wxgate's app listener
	cbAddr     string           // wxgate's callback listener
	adminAddr  string
	startedIn  time.Duration // from starting wxgate to its first healthy answer
	configPath string
}

// emulatorEnv runs the emulator without garbage collection of its own accord (GOGC=off), up to a
// soft memory limit: the harness asks it to collect before each measured run instead (settle).
// The emulator keeps every order it is sent, as WeChat does, so its live heap grows through a
// run (~180 MB after the xpay scenario); left to itself it collected every few seconds, after a
// fixed amount of allocation, so its collections fell on the same column round after round and
// decided which proxy's paced p99 looked worst. WeChat's own servers pause on other machines.
var emulatorEnv = []string{"GOGC=off", "GOMEMLIMIT=3GiB"}

// startStack starts the emulator (wxgate emulate) and wxgate for apps and the main merchant in a
// folder of their own under the harness's.
func (h *harness) startStack(name string, apps []appCreds) (*stack, error) {
	return h.startStackFor(name, apps, nil)
}

// startStackFor is startStack for the given merchants (nil: the main merchant).
func (h *harness) startStackFor(name string, apps []appCreds, merchants []merchantCreds) (st *stack, err error) {
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st = &stack{apps: apps}
	defer func() {
		if err != nil {
			st.stop()
		} else {
			h.stacks = append(h.stacks, st)
		}
	}()
	emuCfg := filepath.Join(dir, "emulator.toml")
	base := h.baseConfig(apps, merchants)
	if err := os.WriteFile(emuCfg, []byte(h.mat.render(base)), 0o600); err != nil {
		return nil, err
	}
	if st.emu, err = startProcEnv(name+" emulator", dir, emulatorEnv, h.bin("wxgate"), "emulate", "-config", emuCfg, "-pay-key", h.mat.payKeyFile, "-out", dir,
		"-listen", "127.0.0.1:0", "-mch-listen", "127.0.0.1:0", "-json"); err != nil {
		return nil, err
	}
	line, err := st.emu.readLine(30 * time.Second)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(line), &st.emuInfo); err != nil {
		return nil, fmt.Errorf("emulator ready line %q: %w", line, err)
	}
	return st, h.startGate(st, name, dir, base)
}

// baseConfig is the wxgate config of apps and merchants (nil: the main merchant) before its
// listeners and upstreams are known; its [store] is the memory kind.
func (h *harness) baseConfig(apps []appCreds, merchants []merchantCreds) gateConfig {
	return gateConfig{
		AppListen: "127.0.0.1:0", CallbackListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		Weixin: "http://127.0.0.1:1", Mch: "https://127.0.0.1:1", PublicKeyID: placeholderKeyID,
		ForwardURL: h.app.url + "/events", Apps: apps, Merchants: merchants,
	}
}

// startGate writes the config of base, pointed at st's emulator on three free ports, into dir
// and starts wxgate serve on it, waiting for its first healthy answer (st.startedIn).
func (h *harness) startGate(st *stack, name, dir string, base gateConfig) (err error) {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	st.appAddr, st.cbAddr, st.adminAddr = ports[0], ports[1], ports[2]
	gc := base
	gc.AppListen, gc.CallbackListen, gc.AdminListen = st.appAddr, st.cbAddr, st.adminAddr
	gc.Weixin, gc.Mch, gc.CAFile, gc.PublicKeyID = st.emuInfo.Weixin, st.emuInfo.Mch, st.emuInfo.CAFile, st.emuInfo.PublicKeyID
	st.configPath = filepath.Join(dir, "wxgate.toml")
	if err := os.WriteFile(st.configPath, []byte(h.mat.render(gc)), 0o600); err != nil {
		return err
	}
	if st.cfg, err = policies.Load(st.configPath); err != nil {
		return err
	}
	start := time.Now()
	if st.gate, err = startProc(name+" wxgate", dir, h.bin("wxgate"), "serve", "-config", st.configPath); err != nil {
		return err
	}
	if err := waitHealthy(st.gate, "http://"+st.adminAddr+"/healthz", 15*time.Second); err != nil {
		return err
	}
	st.startedIn = time.Since(start)
	return nil
}

// startGateOn starts another wxgate for the apps of on, served by on's emulator, in a folder
// of its own named name, with the [store] section body storeBody ("" for memory). The stack
// returned has no emulator of its own: stopping it stops that wxgate only.
func (h *harness) startGateOn(on *stack, name, storeBody string) (st *stack, err error) {
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st = &stack{apps: on.apps, emuInfo: on.emuInfo}
	base := h.baseConfig(on.apps, nil)
	base.Store = storeBody
	if err := h.startGate(st, name, dir, base); err != nil {
		st.stop()
		return nil, err
	}
	return st, nil
}

// stop stops wxgate, then the emulator.
func (st *stack) stop() {
	if st.gate != nil {
		st.gate.stop(5 * time.Second)
	}
	if st.emu != nil {
		st.emu.stop(5 * time.Second)
	}
}

// waitHealthy polls url until it answers 200, p exits, or timeout passes. It polls every 2 ms for
// the first second, so that the start times the growth sections report are not rounded up to
// a backoff step, then backs off.
func waitHealthy(p *proc, url string, timeout time.Duration) error {
	start := time.Now()
	deadline := start.Add(timeout)
	for delay := 2 * time.Millisecond; ; {
		if time.Since(start) > time.Second {
			delay = min(2*delay, 200*time.Millisecond)
		}
		if err := p.alive(); err != nil {
			return err
		}
		status, _, err := fasthttp.GetTimeout(nil, url, time.Second)
		if err == nil && status == fasthttp.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return p.failure(fmt.Sprintf("not healthy at %s within %v", url, timeout))
		}
		time.Sleep(delay)
	}
}

// waitListening polls addr until it accepts a TCP connection, p exits, or timeout passes.
func waitListening(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		if err := p.alive(); err != nil {
			return err
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return p.failure(fmt.Sprintf("not listening on %s within %v", addr, timeout))
		}
		time.Sleep(delay)
	}
}

// freePorts returns n loopback addresses that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// metricsURL is wxgate's Prometheus endpoint.
func (st *stack) metricsURL() string { return "http://" + st.adminAddr + "/metrics" }

// pprofURL is wxgate's profiler ([server] pprof, on in every generated config).
func (st *stack) pprofURL() string { return "http://" + st.adminAddr + "/debug/pprof" }

// settle makes a measured run start from the same place whatever ran before it: every running
// emulator collects its garbage (it never does so by itself, emulatorEnv), and so does the
// harness, whose load generator and callback app share this process.
func (h *harness) settle() {
	for _, st := range h.stacks {
		if st.emu == nil || st.emu.alive() != nil {
			continue
		}
		if err := call("POST", st.emuInfo.Weixin+"/_emulator/gc", nil, nil, nil); err != nil {
			h.logf("  emulator gc: %v\n", err)
		}
	}
	runtime.GC()
}
