package main

import (
	"log/slog"
	"os"
	"runtime"
)

// schedulerProcs returns the GOMAXPROCS wxgate serves with: two more than its RSA signing
// workers. One is for the goroutines answering requests (503s included), so they find a
// scheduler slot while every worker signs; the other is for the garbage collector, whose
// dedicated mark worker takes a whole slot during each mark phase (a quarter of GOMAXPROCS,
// rounded: one for 3 or 4) and with one spare slot would leave the network unpolled for the
// whole phase. The lower-priority worker threads then yield the cores to both. A GOMAXPROCS
// set in the environment is the operator's choice and kept.
func schedulerProcs(current, signers int, fromEnv bool) int {
	if fromEnv || current >= signers+2 {
		return current
	}
	return signers + 2
}

// reserveSchedulerProc applies schedulerProcs to this process.
func reserveSchedulerProc(signers int, log *slog.Logger) {
	_, fromEnv := os.LookupEnv("GOMAXPROCS")
	cur := runtime.GOMAXPROCS(0)
	if n := schedulerProcs(cur, signers, fromEnv); n != cur {
		runtime.GOMAXPROCS(n)
		log.Info("GOMAXPROCS raised to two above [server] sign_concurrency, so answers and the GC never wait behind RSA signing",
			"gomaxprocs", n, "was", cur, "sign_concurrency", signers)
	}
}
