package harness

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/signer"
)

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }

// cpuPerOp is the CPU time one operation takes when all cores together do rate per second.
func cpuPerOp(rate float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(gomaxprocs()) / rate * float64(time.Second))
}

// ceilingRuns is how many times a ceiling is measured; the best run is the ceiling, since other
// load on the machine only ever lowers it.
const ceilingRuns = 3

// loopCeiling runs op on GOMAXPROCS goroutines for d, ceilingRuns times, and returns the best
// rate in operations per second (0 when op fails).
func loopCeiling(d time.Duration, op func() error) float64 {
	best := 0.0
	for range ceilingRuns {
		rate := loopOnce(d, op)
		if rate == 0 {
			return 0
		}
		best = max(best, rate)
	}
	return best
}

// loopOnce runs op on GOMAXPROCS goroutines for d and returns the operations per second.
func loopOnce(d time.Duration, op func() error) float64 {
	var n atomic.Int64
	var failed atomic.Bool
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range gomaxprocs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if op() != nil {
					failed.Store(true)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return 0
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}

// rsaSignCeiling measures RSA-2048 signatures per second over a JSAPI-sized message.
func rsaSignCeiling(key *rsa.PrivateKey, d time.Duration) float64 {
	s := signer.NewRSASigner(key)
	msg := signer.AppendRequestMessage(nil, "POST", jsapiPath, "1700000000", "593BEC0C930BF1AFEB40B4A08C8FB242", make([]byte, 300))
	return loopCeiling(d, func() error {
		_, err := s.AppendSign(nil, msg)
		return err
	})
}

// rsaVerifyCeiling measures RSA-2048 verifications per second of a signed JSAPI answer, the check
// wxgate makes on every answer WeChat Pay signs.
func rsaVerifyCeiling(key *rsa.PrivateKey, d time.Duration) (float64, error) {
	msg := signer.AppendResponseMessage(nil, "1700000000", "593BEC0C930BF1AFEB40B4A08C8FB242",
		[]byte(`{"prepay_id":"wx201410272009395522657a690389285100"}`))
	sig, err := signer.NewRSASigner(key).AppendSign(nil, msg)
	if err != nil {
		return 0, err
	}
	v := signer.NewRSAVerifier(&key.PublicKey)
	rate := loopCeiling(d, func() error { return v.Verify(msg, string(sig)) })
	if rate == 0 {
		return 0, errors.New("the ceiling loop failed to verify an answer")
	}
	return rate, nil
}

// cpuFloor is the least CPU a request can cost any proxy: the crypto a ceiling measures and the
// rest of the work no proxy can skip. crypto ÷ (crypto + rest) is the most of the ceiling that any
// proxy's own CPU allows.
type cpuFloor struct{ crypto, rest time.Duration }

func (f cpuFloor) total() time.Duration { return f.crypto + f.rest }

// reach is the share of the ceiling a proxy adding nothing to the floor reaches.
func (f cpuFloor) reach() float64 { return float64(f.crypto) / float64(f.total()) }

// restAllowed is what the rest may cost at most for a proxy to reach limit of the ceiling.
func (f cpuFloor) restAllowed(limit float64) time.Duration {
	return time.Duration(float64(f.crypto) * (1/limit - 1))
}

// of is gate's CPU per request against the floor.
func (f cpuFloor) of(gate *row) float64 { return float64(gate.cpuPerReq()) / float64(f.total()) }

// jsapiFloor is the floor of a JSAPI order whose signature costs sign: the signature, the RSA
// verification of the answer (cores ÷ verifyCeiling) and the bare column's TLS hop.
func jsapiFloor(sign time.Duration, bare *row, verifyCeiling float64) (f cpuFloor, verify, hop time.Duration) {
	verify, hop = cpuPerOp(verifyCeiling), bare.cpuPerReq()
	return cpuFloor{crypto: sign, rest: verify + hop}, verify, hop
}

// signingBound explains what the JSAPI CPU-bound rate can physically reach: besides the signature
// the ceiling measures, every order costs the RSA verification of WeChat Pay's answer and an HTTP
// hop over TLS both ways, whose CPU the bare column measures.
func signingBound(gate, bare *row, signCeiling, verifyCeiling, limit float64) []string {
	if gate == nil || bare == nil || signCeiling <= 0 || verifyCeiling <= 0 || gate.cpuPerReq() == 0 || bare.cpuPerReq() == 0 {
		return nil
	}
	f, verify, hop := jsapiFloor(cpuPerOp(signCeiling), bare, verifyCeiling)
	return []string{
		fmt.Sprintf("v3 JSAPI, the physical bound of the CPU-bound rate: besides the signature (%s of CPU, cores ÷ ceiling) every order costs "+
			"the RSA verification of WeChat Pay's answer (%s, best of %d runs) and the bare proxy's TLS hop (%s), so even a proxy adding nothing "+
			"to these reaches at most %s ÷ %s = **%.2fx** of the ceiling; %.2fx would need the verification and the hop to cost at most %s together. "+
			"wxgate's CPU per order is **%.2fx** that floor (%s ÷ %s)",
			fmtDur(f.crypto), fmtDur(verify), ceilingRuns, fmtDur(hop), fmtDur(f.crypto), fmtDur(f.total()), f.reach(),
			limit, fmtDur(f.restAllowed(limit)), f.of(gate), fmtDur(gate.cpuPerReq()), fmtDur(f.total())),
	}
}

// inRunSigning compares wxgate's CPU per order with what each of its signatures cost during
// the same run, read from its signing threads' clocks: the signing ceiling of these cores at
// that moment, with the emulator and the load generator running beside it. The ceiling measured
// alone before the run sees a machine doing nothing else, and a signature inside the run may cost
// more (shared caches, a sibling hyperthread, context switches); the target row reads the
// ceiling of the very run, and the note says how far the two are apart.
func inRunSigning(what string, gate, bare *row, alone, verifyCeiling, limit float64) (targetCheck, string) {
	t := targetCheck{what: what + " CPU-bound rate ÷ the signing ceiling during the run", limit: limit, unit: "x"}
	switch {
	case gate == nil || gate.res == nil || gate.res.Requests == 0:
		t.why = "n/a (wxgate run failed)"
		return t, ""
	case gate.signed == 0 || gate.signCPU <= 0 || gate.cpuPerReq() == 0:
		t.why = "n/a (wxgate_sign_cpu_seconds_total not read)"
		return t, ""
	}
	perSign := time.Duration(float64(gate.signCPU) / gate.signed)
	per := gate.cpuPerReq()
	t.value, t.ok = float64(perSign)/float64(per), true
	inRun := cpuRate(perSign)
	t.remark = fmt.Sprintf("wxgate's signing threads took %s of CPU per signature during the run (wxgate_sign_cpu_seconds_total), "+
		"so these cores signed at most %.0f/s then; wxgate's CPU per order %s", fmtDur(perSign), inRun, fmtDur(per))
	if alone <= 0 {
		return t, ""
	}
	note := fmt.Sprintf("%s, the signatures inside the run: %.0f of them (%.2f per order) took %s of CPU each on wxgate's signing threads, "+
		"%.2fx the %s a signature took alone before the run (the ceiling of %.0f/s): with the emulator and the load generator on the same cores "+
		"the ceiling during the run was %.0f/s, and a proxy doing nothing but sign would have reached **%.2fx** of the ceiling measured alone. "+
		"The signatures were %.0f%% of wxgate's CPU per order (%s); cores ÷ that CPU is **%s** of the ceiling during the run",
		what, gate.signed, gate.signed/float64(gate.res.Requests), fmtDur(perSign), float64(perSign)/float64(cpuPerOp(alone)), fmtDur(cpuPerOp(alone)), alone,
		inRun, inRun/alone, 100*t.value, fmtDur(per), t.value2())
	if bare != nil && bare.cpuPerReq() > 0 && verifyCeiling > 0 {
		f, verify, hop := jsapiFloor(perSign, bare, verifyCeiling)
		note += fmt.Sprintf(". With the answer's verification (%s) and the bare proxy's TLS hop (%s), the floor during the run is %s ÷ %s = **%.2fx** "+
			"of that ceiling; wxgate's CPU per order is **%.2fx** that floor", fmtDur(verify), fmtDur(hop), fmtDur(f.crypto), fmtDur(f.total()), f.reach(), f.of(gate))
	}
	return t, note
}

// cpuRate is how many operations per second all cores do when one costs d of CPU.
func cpuRate(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(gomaxprocs()) / d.Seconds()
}

// hopBound explains what a crypto-ceiling target can physically reach end to end: every callback
// also costs an HTTP hop in (WeChat -> proxy) and out (proxy -> app), whose CPU the bare column
// measures. The notes give the bound, wxgate's CPU against the floor, and the hop the target
// would allow.
func hopBound(what string, gate, bare *row, ceiling, limit float64) []string {
	if gate == nil || bare == nil || ceiling <= 0 || gate.cpuPerReq() == 0 || bare.cpuPerReq() == 0 {
		return nil
	}
	f := cpuFloor{crypto: cpuPerOp(ceiling), rest: bare.cpuPerReq()}
	return []string{
		fmt.Sprintf("%s, the physical bound: the crypto costs %s of CPU per request (cores ÷ ceiling) and the bare proxy's HTTP hop %s, "+
			"so even a proxy adding nothing to both reaches at most %s ÷ %s = **%.2fx** of the ceiling; %.2fx would need a hop of at most %s. "+
			"wxgate's CPU per request is **%.2fx** that floor (%s ÷ %s)",
			what, fmtDur(f.crypto), fmtDur(f.rest), fmtDur(f.crypto), fmtDur(f.total()), f.reach(),
			limit, fmtDur(f.restAllowed(limit)), f.of(gate), fmtDur(gate.cpuPerReq()), fmtDur(f.total())),
	}
}

// ceilingChecks compares a wxgate row with a crypto ceiling twice: its throughput on this shared
// machine, and the rate its own CPU per request would allow on all cores (what the target means
// when the emulator and load generator did not share the cores).
func ceilingChecks(what string, gate *row, ceiling, limit float64) []targetCheck {
	tput := targetCheck{what: what + " throughput ÷ crypto ceiling", limit: limit, unit: "x",
		remark: "shared machine: the load generator, emulator and app use the same cores"}
	cpu := targetCheck{what: what + " CPU-bound rate ÷ crypto ceiling", limit: limit, unit: "x",
		remark: "cores ÷ wxgate CPU per request, against the ceiling: wxgate's own cost, whoever else runs"}
	switch {
	case ceiling <= 0:
		tput.why, cpu.why = "n/a (ceiling failed)", "n/a (ceiling failed)"
	case gate == nil || gate.res == nil || gate.res.Requests == 0:
		tput.why, cpu.why = "n/a (wxgate run failed)", "n/a (wxgate run failed)"
	case gate.res.Errors > 0:
		tput.why, cpu.why = "n/a (failed requests)", "n/a (failed requests)"
	default:
		tput.value, tput.ok = gate.rps()/ceiling, true
		if per := gate.cpuPerReq(); per > 0 {
			cpu.value, cpu.ok = float64(gomaxprocs())/per.Seconds()/ceiling, true
		} else {
			cpu.why = "n/a (CPU not measured)"
		}
	}
	return []targetCheck{tput, cpu}
}
