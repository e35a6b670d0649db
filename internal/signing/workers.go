package signing

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/threadcpu"
	"github.com/wxgate/wxgate/internal/threadprio"
	"github.com/wxgate/wxgate/signer"
)

// signWorkerNice is how much lower than the rest of wxgate the signing threads are scheduled
// (a Linux nice increment). When the cores are saturated, the kernel then runs request
// handling first (admission, 503 answers, the HMAC and callback paths) and RSA signing in what
// is left, so a flood of signatures cannot delay the answers that need no signature. Measured
// in bench/optimisations.md: the overload 503 p99 went from 26.7 ms to under 5 ms.
const signWorkerNice = 5

// ErrStopped answers a signature asked for after the gateway shut down.
var ErrStopped = errors.New("the gateway is shutting down")

// signJob is one RSA signature handed to a signing worker; jobs are pooled.
type signJob struct {
	key     *signer.RSASigner
	dst     []byte
	message []byte
	out     []byte
	err     error
	done    chan struct{}
}

var signJobPool = sync.Pool{New: func() any { return &signJob{done: make(chan struct{}, 1)} }}

// Workers compute RSA signatures on n goroutines, each locked to its own OS thread whose
// priority is lowered by signWorkerNice. The signing slots admit at most n signatures at once,
// so a job never waits for a worker. The workers start with the first signature and end at stop.
// Inline ([server] sign_priority = "normal"), no worker starts: each signature runs on its
// caller's goroutine. Either way every signature and its CPU time are counted.
type Workers struct {
	jobs  chan *signJob // buffered: one place per worker
	quit  chan struct{}
	start sync.Once
	end   sync.Once
	procs *Governor // raises GOMAXPROCS while signatures run; nil for none
	// inline signs on the caller's goroutine at normal priority: no worker, no handoff.
	inline bool
	// signed counts the signatures computed; cpu is the CPU time they took on the threads
	// that computed them, in nanoseconds (0 where a thread's CPU time cannot be read). The two clock
	// readings around a signature cost about 1 µs of its 700 (BenchmarkNow in threadcpu).
	signed atomic.Uint64
	cpu    atomic.Int64
}

// NewWorkers makes n workers; inline makes none and signs on the caller's goroutine
// ([server] sign_priority = "normal").
func NewWorkers(n int, procs *Governor, inline bool) *Workers {
	return &Workers{jobs: make(chan *signJob, n), quit: make(chan struct{}), procs: procs, inline: inline}
}

// Sign signs message with key on a worker (or, inline, on the caller's goroutine) and
// appends the signature to dst.
func (w *Workers) Sign(key *signer.RSASigner, dst, message []byte) ([]byte, error) {
	select {
	case <-w.quit:
		return dst, ErrStopped
	default:
	}
	w.procs.begin()
	defer w.procs.end()
	if w.inline {
		runtime.LockOSThread() // for the signature, so that the thread's clock measures it
		defer runtime.UnlockOSThread()
		return w.timed(key, dst, message)
	}
	w.start.Do(func() {
		for range cap(w.jobs) {
			go w.run()
		}
	})
	j := signJobPool.Get().(*signJob)
	j.key, j.dst, j.message = key, dst, message
	select {
	case w.jobs <- j:
	case <-w.quit:
		return dst, ErrStopped
	}
	select {
	case <-j.done:
	case <-w.quit: // the job may never run; it is left to the garbage collector, not pooled
		return dst, ErrStopped
	}
	out, err := j.out, j.err
	*j = signJob{done: j.done}
	signJobPool.Put(j)
	return out, err
}

// run is one worker. Its goroutine never unlocks its thread, so the lowered priority never
// reaches other goroutines: the thread ends with the goroutine.
func (w *Workers) run() {
	runtime.LockOSThread()
	threadprio.Lower(signWorkerNice)
	for {
		select {
		case j := <-w.jobs:
			j.out, j.err = w.timed(j.key, j.dst, j.message)
			j.done <- struct{}{}
		case <-w.quit:
			return
		}
	}
}

// timed signs on the calling thread and counts the signature and its CPU time.
func (w *Workers) timed(key *signer.RSASigner, dst, message []byte) ([]byte, error) {
	before, ok := threadcpu.Now()
	out, err := key.AppendSign(dst, message)
	if after, ok2 := threadcpu.Now(); ok && ok2 {
		w.cpu.Add(int64(after - before))
	}
	w.signed.Add(1)
	return out, err
}

// Counted returns how many signatures were computed and the CPU time those took on the
// threads that computed them, the workers' or, inline, the callers' (0 where a thread's CPU
// time cannot be read).
func (w *Workers) Counted() (signed uint64, cpu time.Duration) {
	return w.signed.Load(), time.Duration(w.cpu.Load())
}

// Stop ends the workers; a signature asked for afterwards fails with ErrStopped.
func (w *Workers) Stop() {
	w.end.Do(func() {
		close(w.quit)
		w.procs.Stop()
	})
}
