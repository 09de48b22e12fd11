package main

import (
	"sync/atomic"
	"time"
)

// s9Age is the delivered age of one kind, as the testnet reports it.
type s9Age struct {
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	Delivered uint64  `json:"delivered"`
}

func ageOf(h *hist) s9Age {
	return s9Age{
		P50Ms:     float64(h.quantile(0.5)) / 1000,
		P99Ms:     float64(h.quantile(0.99)) / 1000,
		Delivered: h.count(),
	}
}

// byKind counts something per message kind.
type byKind struct {
	Vote      uint64 `json:"vote"`
	BlockPart uint64 `json:"block_part"`
	Request   uint64 `json:"request"`
	Response  uint64 `json:"response"`
}

func countsOf(c *[kinds]atomic.Uint64) byKind {
	return byKind{c[kindVote].Load(), c[kindPart].Load(), c[kindRequest].Load(), c[kindResponse].Load()}
}

// s9Report is the RESULT line: the field names of `ringwire testnet --s9
// --json` where they apply.
type s9Report struct {
	Nodes     int     `json:"nodes"`
	Driver    string  `json:"driver"`
	DurationS float64 `json:"duration_s"`
	Age       struct {
		Vote      s9Age `json:"vote"`
		BlockPart s9Age `json:"block_part"`
		Request   s9Age `json:"request"`
	} `json:"age"`
	ByKind                     byKind `json:"by_kind"`
	RequestsIssued             uint64 `json:"requests_issued"`
	RequestsAnsweredInDeadline uint64 `json:"requests_answered_in_deadline"`
	RequestsTimedOut           uint64 `json:"requests_timed_out"`
	RequestRTTUs               struct {
		P50     uint64 `json:"p50"`
		P99     uint64 `json:"p99"`
		Samples uint64 `json:"samples"`
	} `json:"request_rtt_us"`
	Drops struct {
		SendQueueFull uint64 `json:"send_queue_full"`
	} `json:"drops"`
	Offered          byKind `json:"offered"`
	SendQueueFull    byKind `json:"send_queue_full"`
	ConnectionErrors uint64 `json:"connection_errors"`
	SendRate         int64  `json:"send_rate"`
	RecvRate         int64  `json:"recv_rate"`
	FlushThrottle    string `json:"flush_throttle"`
}

// report is the summary of the run: nodes nodes, traffic for elapsed.
func (r *s9State) report(nodes int, elapsed time.Duration) s9Report {
	var rep s9Report
	rep.Nodes = nodes
	rep.Driver = "mconnection"
	rep.DurationS = elapsed.Seconds()
	rep.Age.Vote = ageOf(&r.ages[kindVote])
	rep.Age.BlockPart = ageOf(&r.ages[kindPart])
	rep.Age.Request = ageOf(&r.ages[kindRequest])
	rep.ByKind = countsOf(&r.counts)
	rep.RequestsIssued = r.issued.Load()
	rep.RequestsAnsweredInDeadline = r.inTime.Load()
	rep.RequestsTimedOut = r.late.Load()
	rep.RequestRTTUs.P50 = r.rtt.quantile(0.5)
	rep.RequestRTTUs.P99 = r.rtt.quantile(0.99)
	rep.RequestRTTUs.Samples = r.rtt.count()
	rep.Offered = countsOf(&r.offer)
	rep.SendQueueFull = countsOf(&r.full)
	rep.Drops.SendQueueFull = rep.SendQueueFull.Vote + rep.SendQueueFull.BlockPart +
		rep.SendQueueFull.Request + rep.SendQueueFull.Response
	rep.ConnectionErrors = r.errors.Load()
	rep.SendRate = r.o.sendRate
	rep.RecvRate = r.o.recvRate
	rep.FlushThrottle = r.o.flushThrottle.String()
	return rep
}
