// Package signing schedules wxgate's RSA signatures (WeChat Pay APIv3 requests and payment
// parameters), the one CPU-heavy step of a request: Slots admit at most sign_concurrency
// signatures at once, queue the others in order, and refuse at once a request whose wait would
// exceed three quarters of sign_max_wait (half while refusals go on; 1 s by default, so that a
// closed loop of clients waits its turn),
// Workers compute them on threads of lowered priority so that answers needing no signature go
// first on saturated cores, and Governor with SchedulerProcs and SigningProcs is the one home of
// the GOMAXPROCS policy while signatures run.
//
// It imports only signer and the thread helpers of internal/; never proxy or policies.
package signing
