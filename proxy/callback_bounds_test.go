package proxy

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCheckFreshBoundary: a timestamp exactly maxClockSkew away either way is fresh; a second
// more is not.
func TestCheckFreshBoundary(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := &Gateway{clock: func() time.Time { return now }}
	for _, tc := range []struct {
		offset time.Duration
		fresh  bool
	}{
		{0, true}, {-maxClockSkew, true}, {maxClockSkew, true},
		{-maxClockSkew - time.Second, false}, {maxClockSkew + time.Second, false},
	} {
		ts := strconv.FormatInt(now.Add(tc.offset).Unix(), 10)
		if got := g.checkFresh(ts) == ""; got != tc.fresh {
			t.Errorf("timestamp %+v from now: fresh %v, want %v", tc.offset, got, tc.fresh)
		}
	}
}

// TestPushXMLLimits: a push document exactly maxPushDepth deep and one of exactly
// maxPushElements elements convert; one more of either is refused.
func TestPushXMLLimits(t *testing.T) {
	deep := func(n int) string {
		return "<xml>" + strings.Repeat("<a>", n-1) + "x" + strings.Repeat("</a>", n-1) + "</xml>"
	}
	wide := func(n int) string {
		return "<xml>" + strings.Repeat("<a>1</a>", n-1) + "</xml>"
	}
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"max depth", deep(maxPushDepth), true},
		{"one level deeper", deep(maxPushDepth + 1), false},
		{"max elements", wide(maxPushElements), true},
		{"one element more", wide(maxPushElements + 1), false},
	} {
		if _, err := pushXMLToJSON([]byte(tc.doc)); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestFirstError: the first non-nil error is the one reported, so a notification's first bad
// member is the one named.
func TestFirstError(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	for _, tc := range []struct {
		errs []error
		want error
	}{{nil, nil}, {[]error{nil, nil}, nil}, {[]error{nil, a, b}, a}, {[]error{b, a}, b}} {
		if got := firstError(tc.errs...); got != tc.want {
			t.Errorf("firstError(%v) = %v, want %v", tc.errs, got, tc.want)
		}
	}
}
