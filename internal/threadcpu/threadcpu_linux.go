// Package threadcpu reads the CPU time of the calling OS thread, so that work locked to a
// thread (RSA signing) can be measured apart from the rest of its process.
package threadcpu

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID, which the syscall package does not name. Its
// reading includes the running slice of the calling thread, unlike getrusage(RUSAGE_THREAD),
// which the kernel brings up to date only at scheduler ticks and switches.
const clockThreadCPUTime = 3

// Now returns the CPU time (user and system) the calling OS thread has used so far; ok is
// false where it cannot be read. Two readings are comparable only on the same thread: the
// caller should hold its thread (runtime.LockOSThread) between them.
func Now() (cpu time.Duration, ok bool) {
	var ts syscall.Timespec
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
