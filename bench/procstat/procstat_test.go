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

// TestMachineSteal: the steal time reads, never goes back, and is at most the machine's CPU
// time since boot.
func TestMachineSteal(t *testing.T) {
	s0, err := MachineSteal()
	if err != nil {
		t.Fatal(err)
	}
	s1, err := MachineSteal()
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
	if limit := time.Duration(up*float64(runtime.NumCPU())*float64(time.Second)) + time.Second; s0 < 0 || s1 < s0 || s1 > limit {
		t.Fatalf("steal %v then %v; want 0 <= first <= second <= %v (uptime × CPUs)", s0, s1, limit)
	}
}
