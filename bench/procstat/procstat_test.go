package procstat

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadsThisProcess(t *testing.T) {
	before, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU, bounded in time, so the counter must move by at least a tick.
	deadline := time.Now().Add(60 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU <= before.CPU || after.RSS == 0 || after.PeakRSS < after.RSS/2 || x == 0 {
		t.Fatalf("before %+v after %+v", before, after)
	}
	if err := ResetPeak(os.Getpid()); err != nil {
		t.Logf("ResetPeak unsupported here: %v", err)
	}
}

func TestReadTreeIncludesChildren(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	s, err := ReadTree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.Procs < 2 {
		t.Fatalf("tree of %d processes, want this one and its child", s.Procs)
	}
	if _, err := Read(1 << 30); err == nil {
		t.Fatal("a missing process must be an error")
	}
}

// TestMachineTimes: the times read, never go back, add up to at most the machine's CPU time
// since boot, and Busy grows by at least what this process spends spinning.
func TestMachineTimes(t *testing.T) {
	m0, err := Machine()
	if err != nil {
		t.Fatal(err)
	}
	self0, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until this process has used 200 ms of CPU more (read, not timed).
	x := uint64(1)
	for {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		s, err := Read(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if s.CPU-self0.CPU >= 200*time.Millisecond {
			break
		}
	}
	m1, err := Machine()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	up, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	limit := time.Duration(up*float64(runtime.NumCPU())*float64(time.Second)) + time.Second
	if all := m1.Busy + m1.Idle + m1.Steal; m0.Steal < 0 || m0.Busy <= 0 || all > limit {
		t.Fatalf("machine times %+v (sum %v); want non-negative, some busy time, sum <= %v (uptime × CPUs)", m1, all, limit)
	}
	d := m1.Sub(m0)
	if d.Busy < 0 || d.Idle < 0 || d.Steal < 0 {
		t.Fatalf("machine times went back: %+v", d)
	}
	// Ticks are counted per CPU at USER_HZ, so allow two ticks per CPU of rounding.
	if slack := 2 * time.Duration(runtime.NumCPU()) * time.Second / time.Duration(clockTicks); d.Busy+d.Steal < 200*time.Millisecond-slack {
		t.Fatalf("the machine was busy %v (steal %v) while this process spun 200 ms of CPU", d.Busy, d.Steal)
	}
	if x == 0 {
		t.Log(x) // keep the spin
	}
}

func TestBusyShare(t *testing.T) {
	for _, tc := range []struct {
		m           MachineTimes
		busy, steal float64
	}{
		{MachineTimes{}, 0, 0},
		{MachineTimes{Busy: 3 * time.Second, Idle: time.Second}, 0.75, 0},
		{MachineTimes{Busy: time.Second, Idle: 2 * time.Second, Steal: time.Second}, 0.5, 0.25},
	} {
		if got := tc.m.BusyShare(); got != tc.busy {
			t.Errorf("%+v: busy share %v, want %v", tc.m, got, tc.busy)
		}
		if got := tc.m.StealShare(); got != tc.steal {
			t.Errorf("%+v: steal share %v, want %v", tc.m, got, tc.steal)
		}
	}
}
