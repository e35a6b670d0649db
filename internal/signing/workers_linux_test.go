package signing

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/threadcpu"
)

// TestSignWorkersCountTheirCPU: the workers count every signature and the CPU time it took on
// their threads, which is more than nothing and no more than the whole process used meanwhile.
func TestSignWorkersCountTheirCPU(t *testing.T) {
	m, _ := testMerchant(t)
	for _, inline := range []bool{false, true} {
		w := NewWorkers(2, nil, inline)
		proc0 := processCPU(t)
		const n = 20
		for i := range n {
			if _, err := w.Sign(m, nil, []byte{'c', byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		proc := processCPU(t) - proc0
		w.Stop()
		signed, cpu := w.Counted()
		if signed != n {
			t.Errorf("inline %v: signed %d, want %d", inline, signed, n)
		}
		if cpu <= 0 || cpu > proc {
			t.Errorf("inline %v: the signatures took %v of CPU on the signing threads while the process used %v", inline, cpu, proc)
		}
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

// TestSignInlineRunsOnTheCallersThread: inline, the caller's own thread spends the signature's
// CPU; through the workers it spends next to none of it.
func TestSignInlineRunsOnTheCallersThread(t *testing.T) {
	m, _ := testMerchant(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, inline := range []bool{false, true} {
		w := NewWorkers(1, nil, inline)
		// Start the worker, and finish the sweeping that earlier tests' garbage would otherwise
		// leave to this thread's allocations, outside the measurement.
		if _, err := w.Sign(m, nil, []byte("warm")); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		signed0, cpu0 := w.Counted()
		mine0, _ := threadcpu.Now()
		for i := range 10 {
			if _, err := w.Sign(m, nil, []byte{'t', byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		mine1, _ := threadcpu.Now()
		w.Stop()
		signed, cpu := w.Counted()
		if signed-signed0 != 10 {
			t.Fatalf("inline %v: %d signatures counted, want 10", inline, signed-signed0)
		}
		cpu -= cpu0
		if mine := mine1 - mine0; inline && mine < cpu || !inline && mine > cpu/4 {
			t.Errorf("inline %v: the caller's thread used %v while the signatures took %v", inline, mine, cpu)
		}
	}
}
