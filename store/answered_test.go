package store

import "testing"

// TestAnswered: an event whose reply the app gave (message pushes that need the app's answer) is
// never recorded as delivered: WeChat's retry, newly signed, is claimed again and forwarded
// again; the answered request itself cannot be replayed, on disk and across Redis handles too.
func TestAnswered(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			s, again := k.open(t)
			c := mustClaim(t, s, "r1", "ev1", Claimed)
			mustClaim(t, s, "r2", "ev1", InFlight) // a retry while the app answers
			if err := s.Answered(bg, c); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, "r1", "ev1", Replayed) // the answered request, replayed
			other := s
			if again != nil {
				other = again()
			}
			c = mustClaim(t, other, "r3", "ev1", Claimed) // WeChat's retry: forwarded again
			mustClaim(t, s, "r3", "ev1", Replayed)
			if err := other.Answered(bg, c); err != nil {
				t.Fatal(err)
			}
			mustClaim(t, s, "r4", "ev1", Claimed)
		})
	}
}
