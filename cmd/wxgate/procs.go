package main

import (
	"log/slog"
	"os"
	"runtime"
)

// schedulerProcs returns the GOMAXPROCS wxgate serves with: one more than its RSA signing
// workers, so a goroutine answering a request (a 503 included) always finds a free scheduler
// slot even when every worker is signing; the lower-priority worker threads then yield the
// cores to it. A GOMAXPROCS set in the environment is the operator's choice and kept.
func schedulerProcs(current, signers int, fromEnv bool) int {
	if fromEnv || current > signers {
		return current
	}
	return signers + 1
}

// reserveSchedulerProc applies schedulerProcs to this process.
func reserveSchedulerProc(signers int, log *slog.Logger) {
	_, fromEnv := os.LookupEnv("GOMAXPROCS")
	cur := runtime.GOMAXPROCS(0)
	if n := schedulerProcs(cur, signers, fromEnv); n != cur {
		runtime.GOMAXPROCS(n)
		log.Info("GOMAXPROCS raised to one above [server] sign_concurrency, so answers never wait behind RSA signing",
			"gomaxprocs", n, "was", cur, "sign_concurrency", signers)
	}
}
