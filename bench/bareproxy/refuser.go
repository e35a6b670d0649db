package bareproxy

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/internal/threadprio"
	"github.com/wxgate/wxgate/signer"
)

// refusal is the Refuser's answer: the shape and about the size of wxgate's own overload answer.
const refusal = `{"error":{"code":"wxgate.overloaded","message":"every RSA signing slot is busy and the signatures queued ahead would take longer than [server] sign_max_wait; retry shortly"}}`

// Refuser is the overload yardstick. It answers every request 503 at once, as wxgate answers a
// request its signing slots cannot take, while its signing threads compute RSA-2048 signatures
// without pause at a lowered priority, as wxgate's signing workers do while overloaded. Its 503
// latency is what the machine gives a server that decides in microseconds beside the same
// signing load: wxgate's overload answers cannot be faster than that.
type Refuser struct {
	signers int
	nice    int
	signer  *signer.RSASigner
	quit    chan struct{}
	running sync.WaitGroup
	signed  atomic.Uint64
	stop    sync.Once
}

// NewRefuser builds a Refuser with signers signing threads, each niced by nice (wxgate's
// signing workers use 5), over a fresh RSA-2048 key. Start starts the signing.
func NewRefuser(signers, nice int) (*Refuser, error) {
	if signers < 1 {
		return nil, fmt.Errorf("bareproxy: a refuser needs at least one signing thread, not %d", signers)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("bareproxy: RSA key: %w", err)
	}
	return &Refuser{signers: signers, nice: nice, signer: signer.NewRSASigner(key), quit: make(chan struct{})}, nil
}

// Start starts the signing threads; Stop ends them.
func (r *Refuser) Start() {
	// A JSAPI-sized message, as the harness's RSA ceiling signs.
	msg := signer.AppendRequestMessage(nil, "POST", "/v3/pay/transactions/jsapi", "1700000000",
		"593BEC0C930BF1AFEB40B4A08C8FB242", make([]byte, 300))
	for range r.signers {
		r.running.Add(1)
		go func() {
			defer r.running.Done()
			runtime.LockOSThread() // never unlocked: the lowered thread ends with this goroutine
			threadprio.Lower(r.nice)
			var sig []byte
			for {
				select {
				case <-r.quit:
					return
				default:
				}
				var err error
				if sig, err = r.signer.AppendSign(sig[:0], msg); err != nil {
					panic(err) // a fresh key signing a fixed message cannot fail
				}
				r.signed.Add(1)
			}
		}()
	}
}

// Stop ends the signing threads and waits for them.
func (r *Refuser) Stop() {
	r.stop.Do(func() { close(r.quit) })
	r.running.Wait()
}

// Signed returns how many signatures the signing threads computed so far.
func (r *Refuser) Signed() uint64 { return r.signed.Load() }

// Handle answers 503 wxgate.overloaded.
func (r *Refuser) Handle(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(refusal)
}

// Server returns a fasthttp server for r with the pass-through's limits.
func (r *Refuser) Server() *fasthttp.Server { return newServer(r.Handle, "bareproxy-refuser") }
