package main

import (
	"log/slog"
	"os"
	"runtime"
)

// schedulerProcs returns the GOMAXPROCS wxgate serves with: enough that, with every RSA signing
// worker busy and the garbage collector marking, one scheduler slot is still free for the
// goroutines answering requests (503s included). The GC's background mark workers take a
// quarter of GOMAXPROCS during each mark phase, as whole slots or as one slot most of the time
// (gcMarkProcs); with no slot left the network goes unpolled for the whole phase. On 2 cores with 2 signers that is 4. The
// lower-priority worker threads then yield the cores to the rest. A GOMAXPROCS set in the
// environment is the operator's choice and kept.
func schedulerProcs(current, signers int, fromEnv bool) int {
	if fromEnv {
		return current
	}
	n := max(current, 1)
	for n-signers-gcMarkProcs(n) < 1 {
		n++
	}
	return n
}

// gcMarkProcs is how many Ps the Go GC's background mark workers may hold at GOMAXPROCS n: its
// 25% utilisation goal rounded to the nearest whole P (the runtime makes up the rounding with a
// fractional worker, which holds a P for most of the phase: counted whole here).
func gcMarkProcs(n int) int { return int(float64(n)*0.25 + 0.5) }

// reserveSchedulerProc applies schedulerProcs to this process.
func reserveSchedulerProc(signers int, log *slog.Logger) {
	_, fromEnv := os.LookupEnv("GOMAXPROCS")
	cur := runtime.GOMAXPROCS(0)
	if n := schedulerProcs(cur, signers, fromEnv); n != cur {
		runtime.GOMAXPROCS(n)
		log.Info("GOMAXPROCS raised so that answers find a free scheduler slot while [server] sign_concurrency signatures and the GC run",
			"gomaxprocs", n, "was", cur, "sign_concurrency", signers)
	}
}
