package main

import "testing"

func TestHistBucketsAreContiguousAndTight(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 1023, 1024, 1025, 2047, 2048, 4095, 4096, 1 << 20, 1<<30 + 7, histMax} {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("bucket of %d is %d, before %d", v, i, prev)
		}
		prev = i
		hi := histHighest(i)
		if hi < v {
			t.Fatalf("bucket %d of %d ends at %d", i, v, hi)
		}
		if v >= histSub && float64(hi-v) > float64(v)/float64(histHalf) {
			t.Fatalf("bucket of %d ends at %d: wider than 1/%d", v, hi, histHalf)
		}
		if i > 0 && histHighest(i-1) >= v {
			t.Fatalf("bucket %d before %d's already holds it", i-1, v)
		}
	}
	if histIndex(histMax+1000) != histBuckets-1 {
		t.Fatal("values above the range go to the last bucket")
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	if h.quantile(0.99) != 0 || h.count() != 0 {
		t.Fatal("an empty histogram has no values")
	}
	for v := uint64(1); v <= 1000; v++ {
		h.record(v)
	}
	if got := h.quantile(0.5); got != 500 {
		t.Fatalf("p50 of 1..1000 is %d", got)
	}
	if got := h.quantile(0.99); got != 990 {
		t.Fatalf("p99 of 1..1000 is %d", got)
	}
	h.record(1_000_000)
	if got := h.quantile(1); got < 1_000_000 || got > 1_000_000+1_000_000/histHalf {
		t.Fatalf("max is %d", got)
	}
	if h.count() != 1001 {
		t.Fatalf("count %d", h.count())
	}
}
