package proxy

import "syscall"

// lowerThreadPriority raises the nice value of the calling OS thread by inc (Linux schedules
// threads apart; an unprivileged process may always lower its own priority). A failure leaves
// the thread at normal priority, which is only slower to yield.
func lowerThreadPriority(inc int) {
	tid := syscall.Gettid()
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return
	}
	// The raw getpriority system call returns 20 - nice.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 20-cur+inc)
}
