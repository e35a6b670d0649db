package proxy_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/wxgate/wxgate/emulator"
	"github.com/wxgate/wxgate/signer"
)

// withQuery returns a copy of n with its query changed by edit.
func withQuery(t *testing.T, n emulator.Notification, edit func(url.Values)) emulator.Notification {
	t.Helper()
	c := clone(n)
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	edit(q)
	u.RawQuery = q.Encode()
	c.URL = u.String()
	return c
}

// TestPushReplayThroughUnsignedQuery: once a signed push URL was used, no unsigned query value
// added (msg_signature of a plaintext push, openid), no other body and no rearrangement of the
// signed parts that still verifies (timestamp and nonce swapped) makes it new: each replay is
// refused, and the app gets the message once. For a plaintext app and a safe-mode one.
func TestPushReplayThroughUnsignedQuery(t *testing.T) {
	e := startEnv(t, nil)
	msg := func(event string) []byte {
		return []byte(`{"ToUserName":"gh_d","FromUserName":"o2","CreateTime":1,"MsgType":"event","Event":"` + event + `"}`)
	}
	apps := []struct{ name, appID string }{{"drama", "wx00000000000000b2"}, {"shop", "wx00000000000000a1"}}
	for i, app := range apps {
		t.Run(app.name, func(t *testing.T) {
			// The nonce is itself a fresh timestamp, so that the two may be swapped.
			now := time.Now()
			genuine, err := e.emu.BuildPushMessage(app.appID, msg("genuine"), e.callbackURL+"/callbacks/message/"+app.name,
				emulator.NotifyOptions{Timestamp: now, Nonce: fmt.Sprint(now.Unix() + 1)})
			if err != nil {
				t.Fatal(err)
			}
			if acked, status, body, err := e.emu.Deliver(genuine); !acked {
				t.Fatalf("genuine push: %d %s %v", status, body, err)
			}
			e.recv.waitEvents(i+1, waitTime)
			otherBody := clone(genuine)
			if app.name == "drama" { // plaintext: the body is the message, unsigned
				otherBody.Body = msg("forged")
			}
			variants := []struct {
				name string
				n    emulator.Notification
			}{
				{"exact replay", genuine},
				{"msg_signature=1 added", withQuery(t, genuine, func(q url.Values) { q.Add("msg_signature", "1") })},
				{"msg_signature=2 added", withQuery(t, genuine, func(q url.Values) { q.Add("msg_signature", "2") })},
				{"msg_signature=3 added, another body", withQuery(t, otherBody, func(q url.Values) { q.Add("msg_signature", "3") })},
				{"openid changed", withQuery(t, genuine, func(q url.Values) { q.Set("openid", "o-other") })},
				{"timestamp and nonce swapped", withQuery(t, genuine, func(q url.Values) {
					ts, nonce := q.Get("timestamp"), q.Get("nonce")
					q.Set("timestamp", nonce)
					q.Set("nonce", ts)
				})},
			}
			for _, v := range variants {
				if acked, status, body, err := e.emu.Deliver(v.n); acked || err != nil || status != 401 {
					t.Errorf("%s: acked %v, status %d %s %v; want 401", v.name, acked, status, body, err)
				}
			}
			if evs, ids, _ := e.recv.snapshot(); len(evs) != i+1 {
				t.Fatalf("the app got %d events, want %d: %v", len(evs), i+1, ids)
			}
		})
	}
}

// TestPushHandshakeFreshness: the GET echostr handshake needs a valid signature over a fresh
// timestamp; an old signed handshake URL is refused.
func TestPushHandshakeFreshness(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now()
	cases := []struct {
		name   string
		ts     string // "-" leaves timestamp out
		forged bool
		want   int
	}{
		{"fresh", fmt.Sprint(now.Unix()), false, 200},
		{"10 minutes old", fmt.Sprint(now.Add(-10 * time.Minute).Unix()), false, 401},
		{"10 minutes ahead", fmt.Sprint(now.Add(10 * time.Minute).Unix()), false, 401},
		{"6 minutes old", fmt.Sprint(now.Add(-6 * time.Minute).Unix()), false, 401},
		{"not a number", "yesterday", false, 401},
		{"missing", "-", false, 401},
		{"fresh, forged signature", fmt.Sprint(now.Unix()), true, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := c.ts
			if ts == "-" {
				ts = ""
			}
			token := "drama-push-token"
			if c.forged {
				token = "not-the-token"
			}
			q := url.Values{"signature": {signer.PushSignature(token, ts, "hs1")}, "nonce": {"hs1"}, "echostr": {"8731926450"}}
			if c.ts != "-" {
				q.Set("timestamp", ts)
			}
			a := e.doURL("GET", e.callbackURL+"/callbacks/message/drama?"+q.Encode(), nil)
			if a.Status != c.want || c.want == 200 && string(a.Body) != "8731926450" || c.want != 200 && string(a.Body) == "8731926450" {
				t.Fatalf("status %d %q, want %d", a.Status, a.Body, c.want)
			}
		})
	}
}
