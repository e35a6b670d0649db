package proxy

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultEventTolerance is how old a forwarded event's signature may be when an app checks it.
const DefaultEventTolerance = 5 * time.Minute

// VerifyEventSignature checks an X-Wxgate-Signature header ("t=<unix>,v1=<hex>") against the raw
// body of a forwarded event: v1 must be HMAC-SHA256(secret, t + "." + body) and t within tolerance
// of now. It is the algorithm an app implements (README has PHP and Node versions).
func VerifyEventSignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return errors.New("malformed signature header: want t=<unix>,v1=<hex>")
		case k == "t":
			ts = v
		case k == "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("malformed signature header: want t=<unix>,v1=<hex>")
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("signature timestamp is %s from now (tolerance %s): a replay, or a wrong clock", age.Round(time.Second), tolerance)
	}
	want := newHMACSigner(secret).AppendEventSignature(nil, sec, body)
	_, wantHex, _ := strings.Cut(string(want), ",v1=")
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		exp, _ := hex.DecodeString(wantHex)
		if err == nil && hmac.Equal(got, exp) {
			return nil
		}
	}
	return errors.New("signature does not match: wrong forward secret, or the body was changed")
}
