package signing

import (
	"log/slog"
	"os"
	"runtime"
)

// SchedulerProcs returns the GOMAXPROCS wxgate signs with: enough that, with every RSA signing
// worker busy and the garbage collector marking, one scheduler slot is still free for the
// goroutines answering requests (503s included). The GC's background mark workers take a
// quarter of GOMAXPROCS during each mark phase, as whole slots or as one slot most of the time
// (gcMarkProcs); with no slot left the network goes unpolled for the whole phase. On 2 cores
// with 2 signers that is 4. The lower-priority worker threads then yield the cores to the rest.
// A GOMAXPROCS set in the environment is the operator's choice and kept.
func SchedulerProcs(current, signers int, fromEnv bool) int {
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

// SigningProcs returns the GOMAXPROCS wxgate raises to while RSA signatures run (SchedulerProcs;
// the gateway lowers it again when signing is idle), or 0 to leave it alone.
func SigningProcs(signers int, log *slog.Logger) int {
	_, fromEnv := os.LookupEnv("GOMAXPROCS")
	cur := runtime.GOMAXPROCS(0)
	n := SchedulerProcs(cur, signers, fromEnv)
	if n == cur {
		return 0
	}
	log.Info("GOMAXPROCS rises while RSA signatures run, so that answers find a free scheduler slot beside [server] sign_concurrency signatures and the GC",
		"gomaxprocs", cur, "while_signing", n, "sign_concurrency", signers)
	return n
}
