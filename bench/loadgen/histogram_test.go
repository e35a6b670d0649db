package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	// Every value must fall in a bucket whose upper bound is at least the value and at most 1/32
	// above it, and bucket indexes must grow with the value.
	prev := -1
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 1000, 4095, 4096, 1 << 20, 1<<30 + 12345, 1 << 45} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the previous value's %d", v, i, prev)
		}
		prev = i
		hi := bucketHigh(i)
		if hi < v || float64(hi-v) > float64(v)/subCount+1 {
			t.Fatalf("value %d in bucket %d whose upper bound is %d", v, i, hi)
		}
	}
	if got := bucketOf(math.MaxUint64); got != bucketCount-1 {
		t.Fatalf("huge value in bucket %d, want the last (%d)", got, bucketCount-1)
	}
}

func TestQuantilesOfUniformLatencies(t *testing.T) {
	var h Histogram
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 99900 * time.Microsecond},
	} {
		got := h.Quantile(c.q)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 1.0/subCount {
			t.Errorf("p%v = %v, want %v within 3%%", c.q*100, got, c.want)
		}
	}
	if h.Count() != 100000 || h.Min() != time.Microsecond || h.Max() != 100*time.Millisecond {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if m := h.Mean(); m != 50000500*time.Nanosecond {
		t.Errorf("mean %v", m)
	}
}

func TestQuantilesOfSkewedLatencies(t *testing.T) {
	// 990 fast answers and 10 slow ones: p50 is fast, p99 still fast (rank 990), p99.9 slow.
	var h Histogram
	for range 990 {
		h.Record(100 * time.Microsecond)
	}
	for range 10 {
		h.Record(20 * time.Millisecond)
	}
	near := func(got, want time.Duration) bool {
		return got >= want && float64(got-want) <= float64(want)/subCount
	}
	if got := h.Quantile(0.5); !near(got, 100*time.Microsecond) {
		t.Errorf("p50 %v", got)
	}
	if got := h.Quantile(0.99); !near(got, 100*time.Microsecond) {
		t.Errorf("p99 %v", got)
	}
	if got := h.Quantile(0.999); got != 20*time.Millisecond {
		t.Errorf("p99.9 %v (clamped to the max)", got)
	}
}

func TestEmptySingleAndMerged(t *testing.T) {
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Fatal("an empty histogram reports zero")
	}
	var one Histogram
	one.Record(1234 * time.Microsecond)
	for _, q := range []float64{0, 0.5, 0.999, 1} {
		if got := one.Quantile(q); got != 1234*time.Microsecond {
			t.Errorf("single value: q%v = %v", q, got)
		}
	}
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(-time.Second) // counted as zero
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != 3 || a.Min() != 0 || a.Max() != 3*time.Millisecond {
		t.Errorf("merged: count %d min %v max %v", a.Count(), a.Min(), a.Max())
	}
}
