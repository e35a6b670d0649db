package proxy

import (
	"context"

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
func (g *generation) deliver(ctx context.Context, source callbackSource, replay, url string, ev *event.Event) (delivery, string) {
	c, err := g.store.Claim(ctx, replay, ev.ID)
	if err != nil {
		g.countCallback(source, outcomeForwardFailed)
		g.rate.warn("store-claim", "a notification was not delivered: the store is unavailable; WeChat will retry", "err", err)
		return notDelivered, "wxgate's store is unavailable"
	}
	switch c.Verdict {
	case store.Replayed:
		g.countCallback(source, outcomeRejected)
		return replayed, "replayed: this timestamp and nonce were already used"
	case store.AlreadyDelivered:
		g.countCallback(source, outcomeDuplicate)
		return duplicate, ""
	case store.InFlight:
		g.countCallback(source, outcomeForwardFailed)
		return notDelivered, "the same event is being forwarded right now"
	case store.Claimed:
	default: // only a claim is forwarded
		g.countCallback(source, outcomeForwardFailed)
		return notDelivered, "wxgate's store gave no claim"
	}
	if ok, why := g.forwarder.forward(url, ev); !ok {
		if err := g.store.Release(ctx, c); err != nil {
			// The claim lapses by itself after [forward] timeout + 5 s; WeChat retries later.
			g.rate.warn("store-release", "a failed delivery's claim could not be released; it lapses by itself", "err", err)
		}
		g.countCallback(source, outcomeForwardFailed)
		return notDelivered, why
	}
	if err := g.store.Delivered(ctx, c); err != nil {
		// The app has the event: WeChat is acknowledged all the same (a retry would deliver it
		// twice). Only WeChat's retries of this event within 25 h could reach the app again.
		g.rate.warn("store-delivered", "a delivered event could not be recorded as delivered", "err", err)
	}
	g.countCallback(source, outcomeForwarded)
	return delivered, ""
}

// storeCtx is the context of store operations: the store bounds each by [store] timeout itself.
// A request's fasthttp.RequestCtx is not used: as a parent context it would cost a goroutine
// per operation to watch its Done channel.
var storeCtx = context.Background()
