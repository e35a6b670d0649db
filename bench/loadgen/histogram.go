package loadgen

import (
	"math/bits"
	"time"
)

// subBits sets the precision of a Histogram: each power-of-two range of values is split into
// 2^subBits equal buckets, so a recorded value is known to within 1/32 (about 3%).
const subBits = 5

// subCount is the number of linear buckets per power of two.
const subCount = 1 << subBits

// maxShift bounds the exponent range: values up to 2^(maxShift+subBits+1) ns (about 19 hours)
// get their own bucket; larger ones are counted in the last bucket.
const maxShift = 40

// bucketCount is the number of buckets of a Histogram.
const bucketCount = (maxShift + 2) * subCount

// Histogram counts durations in log-linear buckets: exact below 32 ns, then 32 equal buckets per
// power of two. The zero value is ready to use. It is not safe for concurrent use: give each
// goroutine its own and Merge them.
type Histogram struct {
	counts [bucketCount]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// bucketOf returns the bucket index of a value in nanoseconds.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits // v >> shift is in [subCount, 2*subCount)
	if shift > maxShift {
		return bucketCount - 1
	}
	return shift*subCount + int(v>>uint(shift))
}

// bucketHigh returns the largest value (in nanoseconds) that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	m := uint64(i - shift*subCount) // the top subBits+1 bits of the values in bucket i
	return (m+1)<<uint(shift) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value (0 when empty).
func (h *Histogram) Min() time.Duration { return h.min }

// Max returns the largest recorded value (0 when empty).
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the average of the recorded values (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the value below which the fraction q (0..1) of the recorded values fall: the
// upper bound of the bucket holding the value of rank ceil(q*n), clamped to the recorded
// minimum and maximum. It returns 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++ // ceil
	}
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketHigh(i))
			return max(h.min, min(v, h.max))
		}
	}
	return h.max
}
