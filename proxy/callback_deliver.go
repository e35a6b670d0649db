package proxy

import (
	"context"
	"time"

	"github.com/wxgate/wxgate/event"
	"github.com/wxgate/wxgate/store"
)

// delivery is what became of a verified notification.
type delivery int

const (
	delivered    delivery = iota // forwarded now and accepted by the app: acknowledge WeChat
	duplicate                    // the app accepted it before: acknowledge WeChat, nothing sent
	replayed                     // these signed values were used before: refuse
	notDelivered                 // not accepted (yet): answer a failure so that WeChat retries
)

// deliver forwards a verified notification to url once across every instance sharing the store:
// the store records its replay key (its signed timestamp and nonce, "" when the protocol has
// none) and claims its event id; the claim is released when the forward fails, so that WeChat's
// retry is delivered, and marked delivered when the app accepted it. why says what failed.
// Refusals and failed forwards are logged with c's fields.
func (g *generation) deliver(c *callbackCall, replay, url string, ev *event.Event) (delivery, string) {
	c.id = ev.ID
	start := time.Now()
	cl, err := g.store.Claim(storeCtx, replay, ev.ID)
	g.metrics.store(storeClaim, start, err)
	if err != nil {
		g.countCallback(c.ctx, c.source, outcomeForwardFailed)
		g.rate.error("store-claim", "a notification was not delivered: the store is unavailable; WeChat will retry", c.attrs("err", err.Error())...)
		return notDelivered, "wxgate's store is unavailable"
	}
	switch cl.Verdict {
	case store.Replayed:
		why := "replayed: this timestamp and nonce were already used"
		g.refused(c, why)
		return replayed, why
	case store.AlreadyDelivered:
		g.countCallback(c.ctx, c.source, outcomeDuplicate)
		return duplicate, ""
	case store.InFlight:
		g.countCallback(c.ctx, c.source, outcomeForwardFailed)
		return notDelivered, "the same event is being forwarded right now"
	case store.Claimed:
	default: // only a claim is forwarded
		g.countCallback(c.ctx, c.source, outcomeForwardFailed)
		return notDelivered, "wxgate's store gave no claim"
	}
	fstart := time.Now()
	ok, why, cause := g.forwarder.forward(url, ev)
	took := time.Since(fstart)
	g.metrics.forward(c.source, ok, took)
	if !ok {
		start = time.Now()
		err := g.store.Release(storeCtx, cl)
		g.metrics.store(storeRelease, start, err)
		if err != nil {
			// The claim lapses by itself after [forward] timeout + 5 s; WeChat retries later.
			g.rate.warn("store-release", "a failed delivery's claim could not be released; it lapses by itself", "err", err.Error())
		}
		g.countCallback(c.ctx, c.source, outcomeForwardFailed)
		args := c.attrs("host", forwardHost(url), "reason", why, "duration_ms", millis(took))
		if cause != nil { // a dial or TLS error names the app's address, never the event
			args = append(args, "cause", cause.Error())
		}
		g.rate.error("forward-failed\x00"+c.name+"\x00"+why, "forward to the app failed; WeChat will retry", args...)
		return notDelivered, why
	}
	start = time.Now()
	err = g.store.Delivered(storeCtx, cl)
	g.metrics.store(storeDelivered, start, err)
	if err != nil {
		// The app has the event: WeChat is acknowledged all the same (a retry would deliver it
		// twice). Only WeChat's retries of this event within 25 h could reach the app again.
		g.rate.warn("store-delivered", "a delivered event could not be recorded as delivered", "err", err.Error())
	}
	g.countCallback(c.ctx, c.source, outcomeForwarded)
	g.log.Debug("callback forwarded", c.attrs("host", forwardHost(url), "duration_ms", millis(took))...)
	return delivered, ""
}

// storeCtx is the context of store operations: the store bounds each by [store] timeout itself.
// A request's fasthttp.RequestCtx is not used: as a parent context it would cost a goroutine
// per operation to watch its Done channel.
var storeCtx = context.Background()
