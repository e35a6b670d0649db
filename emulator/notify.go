package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"
)

// Callbacks: the HTTP requests WeChat sends on its own — WeChat Pay notifications (APIv3 and
// APIv2, wechatpay.md §3, §8) and mini-program message pushes (xpay.md §4). The builders are in
// notify_v3.go, notify_v2.go and notify_push.go, the automatic sends in notify_pay.go and
// notify_xpay.go, delivery and acknowledgement rules in notify_deliver.go.

// Notification kinds.
const (
	KindV3   = "wechatpay.v3" // an APIv3 notification (TRANSACTION.SUCCESS, REFUND.SUCCESS, ...)
	KindV2   = "wechatpay.v2" // an APIv2 pay or refund notification
	KindPush = "message_push" // a mini-program message push (xpay events)
)

// Notification is one HTTP request WeChat sends to a callback URL: POST URL with Header and Body.
type Notification struct {
	Kind   string            // KindV3, KindV2 or KindPush
	URL    string            // the full URL, query included (message pushes carry their signatures there)
	Header map[string]string // e.g. Content-Type, Wechatpay-Timestamp, -Nonce, -Signature, -Serial
	Body   []byte            // the exact bytes sent
	// ID identifies the notification: the APIv3 envelope's "id"; for the others a digest of the
	// plaintext event (SHA-1 hex), the same for every build of the same event.
	ID string
	// Answer is the push event whose business answer WeChat waits for (e.g.
	// xpay_subscribe_ios_refund_query_notify): the answer must be that reply, encrypted and
	// signed when the push was, within the event's deadline; "" when an acknowledgement will do.
	Answer string
}

// NotifyOptions make a built notification a forgery; the zero value builds a genuine one.
type NotifyOptions struct {
	// ID is the notification's id; "" means a fresh one (APIv3) or the event's digest. WeChat
	// sends an event again, newly signed, under the same id (wechatpay.md §3.1).
	ID        string
	Timestamp time.Time // the signed timestamp (and APIv3 create_time); zero means now (the Clock)
	Nonce     string    // the signed nonce; "" means random
	// Serial is the APIv3 Wechatpay-Serial; "" means the key the merchant's mode implies (the
	// public key ID for merchants without platform certificates, else the newest platform
	// certificate). A serial WeChat Pay published (the public key ID, a listed platform
	// certificate) signs genuinely with that key, as during a migration or rotation; any other
	// serial is a forgery: the default key signs under that serial. APIv3 only.
	Serial string
	// ForeignKey signs with a key WeChat never published: an RSA key under the real serial
	// (APIv3), a token nobody configured (message push).
	ForeignKey bool
	// SignTest sends a WECHATPAY/SIGNTEST/ probe signature (APIv3 only).
	SignTest bool
}

// Delivery is the record of one queued notification.
type Delivery struct {
	Notification Notification
	Attempts     int    // delivery attempts made so far
	Acked        bool   // the receiver acknowledged it; no more attempts
	GaveUp       bool   // the retry schedule ended without an acknowledgement
	LastStatus   int    // the HTTP status of the last attempt (0 when it got no answer)
	LastError    string // the transport error of the last attempt, or why it was not acknowledged
}

// retrySchedule is WeChat's notification schedule (wechatpay.md §3.5, xpay.md §4.6): the wait
// after each unacknowledged attempt. The first attempt is immediate; a notification is given up
// after maxAttempts attempts, so the last 6h of the published schedule is never waited.
var retrySchedule = [...]time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
	3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// maxAttempts is how many times WeChat tries a notification ("最多试15次").
const maxAttempts = len(retrySchedule)

var (
	// ErrWaitTimeout is returned (wrapped) by WaitDeliveries when the deliveries did not finish in time.
	ErrWaitTimeout = errors.New("deliveries did not finish in time")
	// ErrShutdown is returned (wrapped) by Serve, WaitDeliveries and Deliver once Shutdown was called.
	ErrShutdown = errors.New("emulator shut down")
)

// notifier owns the notification senders: the delivery records, one goroutine per queued
// notification, and the connections they have open.
type notifier struct {
	scale  float64         // Config.RetryScale (1 when zero)
	ctx    context.Context // cancelled by stop; dials and retry waits end with it
	cancel context.CancelFunc

	mu       sync.Mutex
	changed  *sync.Cond            // on mu: a delivery finished, or the notifier stopped
	list     []*Delivery           // every queued notification, in queue order
	finished int                   // deliveries acked or given up
	stopped  bool                  // stop was called; no new senders start
	conns    map[net.Conn]struct{} // connections open for deliveries, closed by stop
	senders  sync.WaitGroup        // running sender goroutines
}

// newNotifier returns a notifier with WeChat's schedule multiplied by scale (0 means 1).
func newNotifier(scale float64) *notifier {
	if scale == 0 {
		scale = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	nt := &notifier{scale: scale, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]struct{})}
	nt.changed = sync.NewCond(&nt.mu)
	return nt
}

// stop abandons pending retries, cuts deliveries in flight, and waits for the senders to return.
func (nt *notifier) stop() {
	nt.mu.Lock()
	nt.stopped = true
	nt.cancel()
	conns := slices.Collect(maps.Keys(nt.conns))
	nt.changed.Broadcast()
	nt.mu.Unlock()
	for _, c := range conns {
		_ = c.Close() // its sender sees an error at once (Close takes nt.mu: not held here)
	}
	nt.senders.Wait()
}

// wait returns the pause after attempt number attempt (1-based), scaled.
func (nt *notifier) wait(attempt int) time.Duration {
	return time.Duration(float64(retrySchedule[attempt-1]) * nt.scale)
}

// Send queues n for delivery with WeChat's retry schedule (scaled by Config.RetryScale): the
// first attempt at once, then again after each unacknowledged attempt until one is
// acknowledged (see Deliver) or 15 attempts were made. Each queued notification has its own
// sender goroutine; Shutdown stops them. After Shutdown, n is recorded but never sent.
func (e *Emulator) Send(n Notification) {
	e.queue(n)
}

// queue records n and starts its sender; it returns n's index in Deliveries.
func (e *Emulator) queue(n Notification) int {
	nt := e.notify
	d := &Delivery{Notification: cloneNotification(n)}
	nt.mu.Lock()
	defer nt.mu.Unlock()
	nt.list = append(nt.list, d)
	index := len(nt.list) - 1
	if nt.stopped {
		d.LastError = ErrShutdown.Error()
		return index
	}
	nt.senders.Add(1)
	go e.sendLoop(d)
	return index
}

// sendLoop delivers d until it is acknowledged, the schedule ends, or the notifier stops.
func (e *Emulator) sendLoop(d *Delivery) {
	nt := e.notify
	defer nt.senders.Done()
	n := d.Notification // never changed after queue
	for attempt := 1; ; attempt++ {
		acked, status, _, err := e.Deliver(n)
		if !nt.record(d, attempt, acked, status, err) {
			return
		}
		t := time.NewTimer(nt.wait(attempt))
		select {
		case <-t.C:
		case <-nt.ctx.Done():
			t.Stop()
			return
		}
	}
}

// record stores the outcome of one attempt and reports whether another is due.
func (nt *notifier) record(d *Delivery, attempt int, acked bool, status int, err error) bool {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	d.Attempts, d.Acked, d.LastStatus, d.LastError = attempt, acked, status, ""
	switch {
	case err != nil:
		d.LastError = err.Error()
	case !acked:
		d.LastError = fmt.Sprintf("not acknowledged (HTTP %d)", status)
	}
	if !acked && attempt >= maxAttempts {
		d.GaveUp = true
	}
	if acked || d.GaveUp {
		nt.finished++
		nt.changed.Broadcast()
		return false
	}
	return !nt.stopped
}

// Deliveries returns a snapshot of every queued notification's record, in queue order.
func (e *Emulator) Deliveries() []Delivery {
	nt := e.notify
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return nt.snapshot()
}

// snapshot copies the records. Callers hold nt.mu.
func (nt *notifier) snapshot() []Delivery {
	out := make([]Delivery, len(nt.list))
	for i, d := range nt.list {
		out[i] = *d
		out[i].Notification = cloneNotification(d.Notification)
	}
	return out
}

// WaitDeliveries blocks until at least n queued notifications are finished (acknowledged or
// given up) and returns the records, in queue order. When the timeout passes first, or the
// emulator shuts down, it returns the records it has and an error wrapping ErrWaitTimeout or
// ErrShutdown.
func (e *Emulator) WaitDeliveries(n int, timeout time.Duration) ([]Delivery, error) {
	nt := e.notify
	timedOut := false
	t := time.AfterFunc(timeout, func() {
		nt.mu.Lock()
		timedOut = true
		nt.changed.Broadcast()
		nt.mu.Unlock()
	})
	defer t.Stop()
	nt.mu.Lock()
	defer nt.mu.Unlock()
	for nt.finished < n {
		switch {
		case nt.stopped:
			return nt.snapshot(), fmt.Errorf("emulator: wait for %d deliveries (%d finished): %w", n, nt.finished, ErrShutdown)
		case timedOut:
			return nt.snapshot(), fmt.Errorf("emulator: wait for %d deliveries (%d finished after %v): %w", n, nt.finished, timeout, ErrWaitTimeout)
		}
		nt.changed.Wait()
	}
	return nt.snapshot(), nil
}

// resend queues an exact replay of delivery index (a replay attack, for tests) and returns the
// replay's index.
func (e *Emulator) resend(index int) (int, error) {
	nt := e.notify
	nt.mu.Lock()
	if index < 0 || index >= len(nt.list) {
		count := len(nt.list)
		nt.mu.Unlock()
		return 0, fmt.Errorf("emulator: resend delivery %d: %d deliveries queued", index, count)
	}
	n := nt.list[index].Notification
	nt.mu.Unlock()
	return e.queue(n), nil
}

// cloneNotification copies n so that callers share no memory with the records.
func cloneNotification(n Notification) Notification {
	out := n
	out.Body = bytes.Clone(n.Body)
	out.Header = maps.Clone(n.Header)
	return out
}
