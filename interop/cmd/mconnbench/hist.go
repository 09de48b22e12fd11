package main

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// hist is a log-linear histogram of non-negative values (S9 records ages in
// microseconds), safe for concurrent recording without locks: values below
// histSub are counted exactly, larger ones in buckets of 1/histHalf of their
// power of two (within 0.2 %, about what an HdrHistogram with three
// significant digits gives). Quantiles report the highest value of the
// bucket they fall in, as HdrHistogram's ValueAtQuantile does.
type hist struct {
	counts [histBuckets]atomic.Uint64
}

const (
	histSubBits = 10
	histSub     = 1 << histSubBits
	histHalf    = histSub / 2
	// histMaxExp powers of two above histSub: values up to 2^50 µs.
	histMaxExp  = 40
	histBuckets = histSub + histMaxExp*histHalf
	histMax     = uint64(1)<<(histSubBits+histMaxExp) - 1
)

// histIndex is the bucket of v.
func histIndex(v uint64) int {
	v = min(v, histMax)
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits // 1 or more
	return histSub + (e-1)*histHalf + int(v>>uint(e)) - histHalf
}

// histHighest is the highest value bucket i holds.
func histHighest(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	j := i - histSub
	e := j/histHalf + 1
	m := uint64(j%histHalf + histHalf)
	return (m+1)<<uint(e) - 1
}

func (h *hist) record(v uint64) {
	h.counts[histIndex(v)].Add(1)
}

// count is the number of values recorded.
func (h *hist) count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// quantile is the value at q (0 to 1): the smallest recorded value that at
// least q of the values do not exceed; 0 when nothing was recorded.
func (h *hist) quantile(q float64) uint64 {
	total := h.count()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return histHighest(i)
		}
	}
	return histHighest(histBuckets - 1)
}
