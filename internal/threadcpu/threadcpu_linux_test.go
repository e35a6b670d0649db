package threadcpu

import (
	"crypto/sha256"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// burn spends CPU on the calling thread: a fixed number of SHA-256 rounds (tens of ms: SHA-NI does a round in about 80 ns).
func burn() [32]byte {
	var sum [32]byte
	for range 1_000_000 {
		sum = sha256.Sum256(sum[:])
	}
	return sum
}

// processCPU is the whole process's CPU time, from getrusage(RUSAGE_SELF).
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// now reads the calling thread's clock or fails the test.
func now(t *testing.T) time.Duration {
	t.Helper()
	d, ok := Now()
	if !ok {
		t.Fatal("Now: the thread's CPU time could not be read")
	}
	return d
}

// TestNowCountsOnlyTheCallingThread: CPU burnt on another thread leaves the calling thread's
// clock (almost) where it was while the process's clock moves; the thread's own work moves
// its clock by (almost) all the process used meanwhile.
func TestNowCountsOnlyTheCallingThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	mine0, proc0 := now(t), processCPU(t)
	done := make(chan [32]byte)
	go func() {
		runtime.LockOSThread() // a thread of its own, not the test's
		defer runtime.UnlockOSThread()
		done <- burn()
	}()
	<-done
	mine, proc := now(t)-mine0, processCPU(t)-proc0
	if proc < 10*time.Millisecond {
		t.Fatalf("the other thread's work cost the process only %v; the test needs more", proc)
	}
	if mine > proc/4 {
		t.Errorf("the waiting thread's clock moved %v of the process's %v, all burnt on another thread", mine, proc)
	}

	mine0, proc0 = now(t), processCPU(t)
	burn()
	mine, proc = now(t)-mine0, processCPU(t)-proc0
	if mine < proc/2 || mine > proc+time.Millisecond {
		t.Errorf("the thread's clock moved %v while it burnt CPU itself and the process used %v", mine, proc)
	}
}

// BenchmarkNow is what one reading costs (the signing workers take two per RSA signature).
func BenchmarkNow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Now()
	}
}
