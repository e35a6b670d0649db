//go:build !linux

// Package threadcpu reads the CPU time of the calling OS thread, so that work locked to a
// thread (RSA signing) can be measured apart from the rest of its process.
package threadcpu

import "time"

// Now reports ok false where a thread's own CPU time cannot be read.
func Now() (cpu time.Duration, ok bool) { return 0, false }
