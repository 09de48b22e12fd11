package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// nodeSummary is one node's figures over the measured window.
type nodeSummary struct {
	Node            int     `json:"node"`
	Kind            string  `json:"kind"`
	HeightEnd       int64   `json:"height_end"`
	CommittedPerSec float64 `json:"committed_tx_per_s"`
	P50Ms           float64 `json:"commit_latency_p50_ms"`
	P99Ms           float64 `json:"commit_latency_p99_ms"`
	CPUSeconds      float64 `json:"cpu_s"`
	Peers           int     `json:"peers"`
	Native          int     `json:"peers_native"`
	Stock           int     `json:"peers_stock"`
	// Split says whether Native and Stock are known (from a ringwire-cometbft node's log).
	Split bool `json:"peers_split_known"`
}

// summary is the run's result.
type summary struct {
	Label           string        `json:"label,omitempty"`
	Rate            int           `json:"offered_tx_per_s"`
	Size            int           `json:"tx_bytes"`
	WindowSec       float64       `json:"window_s"`
	Sent            int           `json:"sent"`
	Dropped         int           `json:"offers_dropped"`
	Failed          int           `json:"broadcasts_failed"`
	Committed       int           `json:"committed"`
	Uncommitted     int           `json:"uncommitted"`
	CommittedPerSec float64       `json:"committed_tx_per_s"`
	P50Ms           float64       `json:"commit_latency_p50_ms"`
	P99Ms           float64       `json:"commit_latency_p99_ms"`
	BlockMs         float64       `json:"block_interval_mean_ms"`
	BlockP99Ms      float64       `json:"block_interval_p99_ms"`
	Blocks          int           `json:"blocks"`
	CPUSeconds      float64       `json:"cpu_s_all_nodes"`
	Nodes           []nodeSummary `json:"nodes"`
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// peerSplit reads a node's peers and splits them by protocol.
func peerSplit(c *client, logFile string) (peers, native, stock int, known bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ids, err := c.peers(ctx)
	if err != nil {
		return -1, 0, 0, false
	}
	native, stock, known = protocols(logFile, ids)
	return len(ids), native, stock, known
}

func printTable(w io.Writer, st *state, o options, clients []*client, since, elapsed time.Duration,
	lastHeights []int64, lastCommitted []int) {
	type row struct {
		height    int64
		committed int
		lat       []float64
		err       error
	}
	now := time.Now()
	st.mu.Lock()
	rows := make([]row, len(st.nodes))
	for i, ns := range st.nodes {
		rows[i] = row{height: ns.height, committed: len(ns.committed), err: ns.err}
	}
	for _, tx := range st.sent {
		if !tx.done.IsZero() && now.Sub(tx.done) <= since {
			rows[tx.node].lat = append(rows[tx.node].lat, ms(tx.done.Sub(tx.at)))
		}
	}
	st.mu.Unlock()
	phase := "warm-up"
	if elapsed >= o.warmup {
		phase = "measuring"
	}
	fmt.Fprintf(w, "\n t=%4.0fs (%s, %d tx/s of %d B offered)\n", elapsed.Seconds(), phase, o.rate, o.size)
	fmt.Fprintf(w, " %-6s %-9s %7s %6s %-22s %8s %9s\n", "node", "kind", "height", "blk/s", "peers", "tx/s", "p50 ms")
	for i, r := range rows {
		peers := "?"
		if p, nat, stk, known := peerSplit(clients[i], o.logs[i]); p >= 0 {
			peers = fmt.Sprintf("%d", p)
			if known {
				peers = fmt.Sprintf("%d (%d native, %d stock)", p, nat, stk)
			}
		}
		secs := since.Seconds()
		note := ""
		if r.err != nil {
			note = "  (RPC: " + r.err.Error() + ")"
		}
		fmt.Fprintf(w, " node%-2d %-9s %7d %6.1f %-22s %8.0f %9.0f%s\n", i, o.kinds[i], r.height,
			float64(r.height-lastHeights[i])/secs, peers, float64(r.committed-lastCommitted[i])/secs,
			quantile(r.lat, 0.5), note)
		lastHeights[i], lastCommitted[i] = r.height, r.committed
	}
}

func summarize(st *state, o options, clients []*client, from, to time.Time, cpu0, cpu1 []float64,
	cpuTaken bool) *summary {
	st.mu.Lock()
	defer st.mu.Unlock()
	window := to.Sub(from)
	s := &summary{Label: o.label, Rate: o.rate, Size: o.size, WindowSec: window.Seconds(),
		Dropped: st.dropped, Failed: st.failed}
	perNode := make([][]float64, len(st.nodes))
	committedIn := make([]int, len(st.nodes))
	var all []float64
	for _, tx := range st.sent {
		if tx.at.Before(from) || !tx.at.Before(to) {
			continue
		}
		s.Sent++
		if tx.done.IsZero() {
			s.Uncommitted++
			continue
		}
		s.Committed++
		l := ms(tx.done.Sub(tx.at))
		perNode[tx.node] = append(perNode[tx.node], l)
		all = append(all, l)
	}
	for _, tx := range st.sent {
		if !tx.done.IsZero() && !tx.done.Before(from) && tx.done.Before(to) {
			committedIn[tx.node]++
		}
	}
	total := 0
	for _, c := range committedIn {
		total += c
	}
	s.CommittedPerSec = float64(total) / window.Seconds()
	s.P50Ms, s.P99Ms = quantile(all, 0.5), quantile(all, 0.99)
	// Block intervals from header times of the blocks node 0 committed in the window's span.
	var heights []int64
	for h := range st.blockTimes {
		heights = append(heights, h)
	}
	slices.Sort(heights)
	var gaps []float64
	for k := 1; k < len(heights); k++ {
		a, b := st.blockTimes[heights[k-1]], st.blockTimes[heights[k]]
		if heights[k] != heights[k-1]+1 || b.Before(from) || a.After(to) {
			continue
		}
		gaps = append(gaps, ms(b.Sub(a)))
	}
	s.Blocks = len(gaps)
	if len(gaps) > 0 {
		sum := 0.0
		for _, g := range gaps {
			sum += g
		}
		s.BlockMs = sum / float64(len(gaps))
		s.BlockP99Ms = quantile(gaps, 0.99)
	}
	for i, ns := range st.nodes {
		n := nodeSummary{Node: i, Kind: o.kinds[i], HeightEnd: ns.height,
			CommittedPerSec: float64(committedIn[i]) / window.Seconds(),
			P50Ms:           quantile(perNode[i], 0.5), P99Ms: quantile(perNode[i], 0.99)}
		if cpuTaken && o.pids[i] != "" {
			n.CPUSeconds = cpu1[i] - cpu0[i]
			s.CPUSeconds += n.CPUSeconds
		}
		n.Peers, n.Native, n.Stock, n.Split = peerSplit(clients[i], o.logs[i])
		s.Nodes = append(s.Nodes, n)
	}
	return s
}

func (s *summary) print(w io.Writer) {
	title := "summary"
	if s.Label != "" {
		title += " (" + s.Label + ")"
	}
	fmt.Fprintf(w, "\n%s: %d tx/s of %d B offered for %.0f s: %d sent, %d committed, %d not committed, %d offers dropped, %d refused\n",
		title, s.Rate, s.Size, s.WindowSec, s.Sent, s.Committed, s.Uncommitted, s.Dropped, s.Failed)
	fmt.Fprintf(w, "committed %.1f tx/s; commit latency p50 %.0f ms, p99 %.0f ms; block interval mean %.0f ms, p99 %.0f ms (%d blocks); CPU %.1f s over all nodes\n",
		s.CommittedPerSec, s.P50Ms, s.P99Ms, s.BlockMs, s.BlockP99Ms, s.Blocks, s.CPUSeconds)
	fmt.Fprintf(w, " %-6s %-9s %7s %8s %8s %8s %7s %s\n", "node", "kind", "height", "tx/s", "p50 ms", "p99 ms", "CPU s", "peers")
	for _, n := range s.Nodes {
		peers := fmt.Sprint(n.Peers)
		if n.Split {
			peers += fmt.Sprintf(" (%d native, %d stock)", n.Native, n.Stock)
		}
		fmt.Fprintf(w, " node%-2d %-9s %7d %8.1f %8.0f %8.0f %7.1f %s\n",
			n.Node, n.Kind, n.HeightEnd, n.CommittedPerSec, n.P50Ms, n.P99Ms, n.CPUSeconds, peers)
	}
}

// seriesHeader names the columns of the -series file.
const seriesHeader = "unix_s,height_max,committed,p50_ms,p99_ms\n"

// openSeries opens the -series file for appending and writes the header to a new file.
func openSeries(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
		if _, err := f.WriteString(seriesHeader); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// writeSeries appends one row: the highest height any node reported, and the number and
// commit latency p50/p99 of the transactions committed in the last interval (0 when none).
func writeSeries(w io.Writer, st *state, now time.Time, interval time.Duration) {
	st.mu.Lock()
	var top int64
	for _, ns := range st.nodes {
		top = max(top, ns.height)
	}
	var lat []float64
	for _, tx := range st.sent {
		if !tx.done.IsZero() && now.Sub(tx.done) <= interval {
			lat = append(lat, ms(tx.done.Sub(tx.at)))
		}
	}
	st.mu.Unlock()
	fmt.Fprintf(w, "%d,%d,%d,%.0f,%.0f\n", now.Unix(), top, len(lat), quantile(lat, 0.5), quantile(lat, 0.99))
}
