// Package threadprio lowers the scheduling priority of single OS threads, so that CPU-heavy
// work locked to a thread (RSA signing) yields the cores to the rest of its process.
package threadprio

import "syscall"

// Lower raises the nice value of the calling OS thread by inc (Linux schedules threads apart;
// an unprivileged process may always lower its own priority). The caller should hold its
// thread (runtime.LockOSThread) and never unlock it, so that the lowered priority never reaches
// another goroutine. A failure leaves the thread at normal priority, which is only slower to
// yield.
func Lower(inc int) {
	tid := syscall.Gettid()
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return
	}
	// The raw getpriority system call returns 20 - nice.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 20-cur+inc)
}
