package proxy

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wxgate/wxgate/credentials"
	"github.com/wxgate/wxgate/policies"
	"github.com/wxgate/wxgate/signer"
)

// merchantState is one configured WeChat Pay merchant, ready for the request path: keys parsed,
// signer and AEAD built, verification keys loaded.
type merchantState struct {
	name, mchID, appID string
	serialNo           string
	publicKeyID        string // sent as Wechatpay-Serial when the public key is used
	signer             *signer.RSASigner
	aead               *signer.AEADKey // nil without an APIv3 key
	v2                 *signer.V2Key   // nil without an APIv2 key
	secapi             *upstream       // mch upstream with the client certificate; nil without one
	keys               *credentials.PayKeys
	forwardURL         string
	appName            string // the configured app with appid, named on forwarded events; "" when none
}

// newMerchantState prepares a merchant; the certificate download goes through g's mch upstream.
func (g *Gateway) newMerchantState(m *policies.Merchant, tlsBase *tls.Config) (*merchantState, error) {
	k := m.Keys()
	st := &merchantState{
		name: m.Name, mchID: m.MchID, appID: m.AppID, serialNo: m.SerialNo,
		signer:     signer.NewRSASigner(k.PrivateKey),
		forwardURL: m.ForwardURL,
	}
	if m.APIv3Key.IsSet() {
		aead, err := signer.NewAEADKey([]byte(m.APIv3Key.Value()))
		if err != nil {
			return nil, fmt.Errorf("merchant %q apiv3_key: %w", m.Name, err)
		}
		st.aead = aead
	}
	if m.APIv2Key.IsSet() {
		st.v2 = signer.NewV2Key(m.APIv2Key.Value())
	}
	if k.ClientCert != nil {
		cfg := tlsBase.Clone()
		cfg.Certificates = []tls.Certificate{*k.ClientCert}
		up, err := newUpstream(g.cfg.Upstream.Mch, g.cfg.Upstream, cfg)
		if err != nil {
			return nil, err
		}
		st.secapi = up
	}
	opts := credentials.PayKeysOptions{Clock: g.clock}
	if m.UsesPublicKey() {
		opts.PublicKeyID, opts.PublicKey = m.PublicKeyID, k.PublicKey
		st.publicKeyID = m.PublicKeyID
	}
	if m.UsesCertificates() {
		opts.Fetch = func() ([]credentials.PlatformCert, error) { return g.downloadCertificates(st) }
	}
	st.keys = credentials.NewPayKeys(opts)
	return st, nil
}

// merchant picks the merchant named by X-Wxgate-Merchant, or the first configured one.
func (g *Gateway) merchant(ctx *fasthttp.RequestCtx) (*merchantState, *apiError) {
	if g.firstMerchant == nil {
		return nil, newError(fasthttp.StatusBadRequest, CodeMerchantNotConfigured,
			"no [[merchant]] is configured; add the WeChat Pay merchant (mchid, serial_no, private_key_file...) to the config")
	}
	name := ctx.Request.Header.Peek(HeaderMerchant)
	if len(name) == 0 {
		return g.firstMerchant, nil
	}
	if m, ok := g.merchants[string(name)]; ok {
		return m, nil
	}
	return nil, newError(fasthttp.StatusBadRequest, CodeUnknownMerchant,
		fmt.Sprintf("%s names no configured merchant (%q); use the name of a [[merchant]] or leave the header out for the first one", HeaderMerchant, truncate(name, 40)))
}

// signSlots caps concurrent RSA signatures: RSA-2048 costs about a millisecond of CPU, so more
// signatures at once than cores only queue. A request that finds every slot busy waits only when
// the signatures queued ahead of it should finish within half of [server] sign_max_wait; otherwise it is
// answered 503 at once, and a waiter that still gets no slot by nine tenths of sign_max_wait is
// answered 503 then. No request waits longer than sign_max_wait for a slot. The estimate uses how
// long a slot is held, from taking it to giving it back: on a saturated machine that is the
// signature plus the waits for the lower-priority signing thread and for the request's
// goroutine to run again, and it is what decides how soon the next waiter gets the slot.
type signSlots struct {
	slots   chan struct{}
	maxWait time.Duration
	waiting atomic.Int64                            // requests waiting for a slot now
	cost    atomic.Int64                            // moving average of how long a slot is held, in nanoseconds
	maxSeen atomic.Int64                            // the longest wait for a slot so far, in nanoseconds
	waits   [len(signWaitBuckets) + 1]atomic.Uint64 // waits by bucket (the last: longer than all)
	waitSum atomic.Int64                            // total wait, in nanoseconds
}

// signWaitBuckets are the upper bounds of the wxgate_sign_wait_seconds histogram.
var signWaitBuckets = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// initialSignCost is the slot hold time assumed before any was measured (RSA-2048, one core).
const initialSignCost = time.Millisecond

func newSignSlots(n int, maxWait time.Duration) *signSlots {
	s := &signSlots{slots: make(chan struct{}, n), maxWait: maxWait}
	s.cost.Store(int64(initialSignCost))
	return s
}

// Overload answers: the queue was too long to join, or the wait ran out.
const (
	msgSignQueueFull = "every RSA signing slot is busy and the signatures queued ahead would take longer than [server] sign_max_wait; retry shortly"
	msgSignWaitOver  = "every RSA signing slot stayed busy for as long as [server] sign_max_wait allows; retry shortly"
)

// acquire takes a slot or reports overload.
func (s *signSlots) acquire() *apiError {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	ahead := s.waiting.Add(1)
	defer s.waiting.Add(-1)
	// Half the bound: the estimate leaves out the wait for a CPU once a slot is free, which on a
	// saturated machine is of the same order; an admitted request then rarely times out.
	if expected := time.Duration(ahead * s.cost.Load() / int64(cap(s.slots))); expected > s.maxWait/2 {
		return newError(fasthttp.StatusServiceUnavailable, CodeOverloaded, msgSignQueueFull)
	}
	start := time.Now()
	defer func() { s.recordWait(time.Since(start)) }()
	t := time.NewTimer(s.giveUpAfter())
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-t.C:
		return newError(fasthttp.StatusServiceUnavailable, CodeOverloaded, msgSignWaitOver)
	}
}

// giveUpAfter is how long a waiter waits for a slot before its 503: nine tenths of
// sign_max_wait, so that the wake-up after the timer fires, which on a saturated machine takes
// milliseconds, still ends inside the bound (measured: up to 5 ms past a 250 ms timer).
func (s *signSlots) giveUpAfter() time.Duration { return s.maxWait - s.maxWait/10 }

// recordWait counts a wait for a slot (the /metrics histogram wxgate_sign_wait_seconds) and keeps
// the longest (the gauge wxgate_sign_wait_max_seconds).
func (s *signSlots) recordWait(d time.Duration) {
	i := 0
	for i < len(signWaitBuckets) && d > signWaitBuckets[i] {
		i++
	}
	s.waits[i].Add(1)
	s.waitSum.Add(int64(d))
	for {
		old := s.maxSeen.Load()
		if int64(d) <= old || s.maxSeen.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// maxCostStep bounds one slot hold's weight in the average: a hold counts for at most this many
// times the average so far. A single hold stretched by a stall (the hypervisor taking the CPU, a
// collection) then moves the estimate by at most 3/8 of itself instead of refusing the queue
// behind it; a lasting slowdown still shows within a few holds. (Seen in a bench run with 7.5%
// steal: 14 of 4214 closed-loop orders refused.)
const maxCostStep = 4

// release frees a slot that was held for d.
func (s *signSlots) release(d time.Duration) {
	<-s.slots
	// An exponentially weighted average (1/8 weight to the newest); a lost update between two
	// concurrent releases only delays the average by one sample.
	old := s.cost.Load()
	sample := min(int64(d), maxCostStep*old)
	s.cost.Store(old + (sample-old)/8)
}

// rsaSign signs message with the merchant key inside a signing slot.
func (g *Gateway) rsaSign(m *merchantState, dst, message []byte) ([]byte, *apiError) {
	if aerr := g.signing.acquire(); aerr != nil {
		g.metrics.overloaded.Add(1)
		return nil, aerr
	}
	held := time.Now()
	out, err := g.workers.sign(m, dst, message)
	g.signing.release(time.Since(held))
	if err != nil {
		return nil, newError(fasthttp.StatusInternalServerError, CodeInternal, "RSA signing failed: "+err.Error())
	}
	return out, nil
}
