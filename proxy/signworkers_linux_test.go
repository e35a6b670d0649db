package proxy

import (
	"syscall"
	"testing"
	"time"
)

// TestSignWorkersCountTheirCPU: the workers count every signature and the CPU time it took on
// their threads, which is more than nothing and no more than the whole process used meanwhile.
func TestSignWorkersCountTheirCPU(t *testing.T) {
	m, _ := testMerchant(t)
	w := newSignWorkers(2, nil)
	defer w.stop()
	proc0 := processCPU(t)
	const n = 20
	for i := range n {
		if _, err := w.sign(m, nil, []byte{'c', byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	proc := processCPU(t) - proc0
	signed, cpu := w.signingCPU()
	if signed != n {
		t.Errorf("signed %d, want %d", signed, n)
	}
	if cpu <= 0 || cpu > proc {
		t.Errorf("the signatures took %v of CPU on the workers' threads while the process used %v", cpu, proc)
	}
}

// processCPU is the whole process's CPU time so far.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
