package procstat

import (
	"os"
	"os/exec"
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
