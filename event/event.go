// Package event is the contract between wxgate and an app for forwarded WeChat notifications:
// the JSON envelope (Event), its headers, and the X-Wxgate-Signature HMAC that wxgate signs it
// with and an app checks (Verify). An app written in Go may import it; README shows the same
// check in PHP and Node.
//
// It imports only signer; never proxy, policies or anything with I/O.
package event

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/signer"
)

// Headers on every event forwarded to the app.
const (
	HeaderSignature = "X-Wxgate-Signature" // t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
	HeaderEventID   = "X-Wxgate-Event-Id"  // stable across WeChat's retries of the same event
)

// Event sources.
const (
	SourceWeChatPayV3 = "wechatpay.v3"
	SourceWeChatPayV2 = "wechatpay.v2"
	SourceMessagePush = "message_push"
)

// DefaultTolerance is how old a forwarded event's signature may be when an app checks it.
const DefaultTolerance = 5 * time.Minute

// Event is the JSON envelope forwarded to the app for every verified callback.
type Event struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"` // SourceWeChatPayV3, SourceWeChatPayV2 or SourceMessagePush
	Type       string          `json:"type"`   // e.g. TRANSACTION.SUCCESS, REFUND.SUCCESS, xpay_goods_deliver_notify
	App        string          `json:"app,omitempty"`
	Merchant   string          `json:"merchant,omitempty"`
	ReceivedAt string          `json:"received_at"` // RFC 3339, UTC, whole seconds
	Data       json.RawMessage `json:"data"`        // the decrypted resource or message
}

// Marshal encodes the envelope as the app receives it (no HTML escaping: the app reads JSON,
// not HTML). Data must be valid JSON.
func (ev *Event) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Signer signs event bodies with the forward secret.
type Signer struct{ key *signer.HMACKey }

// NewSigner returns a Signer for secret ([forward] secret).
func NewSigner(secret string) *Signer { return &Signer{key: signer.NewHMACKey([]byte(secret))} }

// Signature returns the X-Wxgate-Signature value for body at unix time t:
// t=<t>,v1=<hex HMAC-SHA256(secret, t + "." + body)>.
func (s *Signer) Signature(t int64, body []byte) string {
	ts := strconv.FormatInt(t, 10)
	return "t=" + ts + ",v1=" + string(s.key.AppendHex(nil, ts, ".", body))
}

// Verify checks an X-Wxgate-Signature header against the raw body of a forwarded event: v1
// must be HMAC-SHA256(secret, t + "." + body) and t within tolerance of now. Several v1 values
// are allowed (one per secret, during a rotation).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return errMalformed
		case k == "t":
			ts = v
		case k == "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errMalformed
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("signature timestamp is %s from now (tolerance %s): a replay, or a wrong clock", age.Round(time.Second), tolerance)
	}
	want := NewSigner(secret).key.AppendHex(nil, strconv.FormatInt(sec, 10), ".", body)
	exp, _ := hex.DecodeString(string(want))
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, exp) {
			return nil
		}
	}
	return errors.New("signature does not match: wrong forward secret, or the body was changed")
}

var errMalformed = errors.New("malformed signature header: want t=<unix>,v1=<hex>")
