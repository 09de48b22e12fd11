package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sentTx is one offered transaction.
type sentTx struct {
	at   time.Time
	node int
	// done is when the node it was sent to reported its block (zero until then).
	done time.Time
}

// state is what the sender and the watchers share.
type state struct {
	mu      sync.Mutex
	prefix  string
	sent    []sentTx
	dropped int // offers not sent: the node's RPC queue was full
	failed  int // broadcasts the RPC refused
	nodes   []*nodeState
	// blockTimes are the header times of the blocks node 0 committed, by height.
	blockTimes map[int64]time.Time
}

// nodeState is one node's progress as its watcher sees it.
type nodeState struct {
	height    int64
	committed []time.Time // when each of our transactions in its blocks was seen, any sender
	err       error
}

// run offers the load, watches the nodes and returns the summary.
func run(ctx context.Context, o options) (*summary, error) {
	n := len(o.rpc)
	clients := make([]*client, n)
	for i, a := range o.rpc {
		clients[i] = newClient(a)
	}
	st := &state{
		prefix:     "lt" + strconv.FormatUint(rand.Uint64()%1_000_000, 36) + "-",
		nodes:      make([]*nodeState, n),
		blockTimes: map[int64]time.Time{},
	}
	for i, c := range clients {
		h, err := c.height(ctx)
		if err != nil {
			return nil, fmt.Errorf("node%d at %s: %w", i, o.rpc[i], err)
		}
		st.nodes[i] = &nodeState{height: h}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch(ctx, st, clients[i], i, o.poll)
		}()
	}
	queues := make([]chan []byte, n)
	for i := range clients {
		queues[i] = make(chan []byte, 1024)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for tx := range queues[i] {
					if err := clients[i].broadcastAsync(ctx, tx); err != nil && ctx.Err() == nil {
						st.mu.Lock()
						st.failed++
						st.mu.Unlock()
					}
				}
			}()
		}
	}

	start := time.Now()
	from, to := start.Add(o.warmup), start.Add(o.warmup+o.duration)
	cpu0 := make([]float64, n)
	var cpuTaken bool
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var table *time.Ticker
	var tableC <-chan time.Time
	if o.table > 0 {
		table = time.NewTicker(o.table)
		defer table.Stop()
		tableC = table.C
	}
	lastTable := start
	var seriesC <-chan time.Time
	var series *os.File
	if o.series != "" {
		f, err := openSeries(o.series)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		series = f
		t := time.NewTicker(o.seriesEvery)
		defer t.Stop()
		seriesC = t.C
	}
	lastHeights := make([]int64, n)
	lastCommitted := make([]int, n)
	for i, ns := range st.nodes {
		lastHeights[i] = ns.height
	}
	seq := 0
	pad := strings.Repeat("x", o.size)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			if !cpuTaken && !now.Before(from) {
				for i, p := range o.pids {
					cpu0[i] = cpuSeconds(p)
				}
				cpuTaken = true
			}
			if !now.Before(to) {
				break loop
			}
			due := int(now.Sub(start).Seconds() * float64(o.rate))
			for ; seq < due; seq++ {
				node := seq % n
				key := st.prefix + strconv.Itoa(seq)
				tx := []byte(key + "=" + pad)
				tx = tx[:max(len(key)+2, o.size)]
				st.mu.Lock()
				st.sent = append(st.sent, sentTx{at: now, node: node})
				select {
				case queues[node] <- tx:
				default:
					st.dropped++
				}
				st.mu.Unlock()
			}
		case now := <-seriesC:
			writeSeries(series, st, now, o.seriesEvery)
		case now := <-tableC:
			printTable(os.Stdout, st, o, clients, now.Sub(lastTable), now.Sub(start), lastHeights, lastCommitted)
			lastTable = now
		}
	}
	end := time.Now()
	cpu1 := make([]float64, n)
	for i, p := range o.pids {
		cpu1[i] = cpuSeconds(p)
	}
	for _, q := range queues {
		close(q)
	}
	// Transactions sent near the end get a few blocks to commit.
	grace := time.NewTimer(3 * time.Second)
	select {
	case <-grace.C:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if end.Before(to) {
		to = end // stopped early
	}
	return summarize(st, o, clients, from, to, cpu0, cpu1, cpuTaken), nil
}

// watch polls one node's height and reads each new block it committed.
func watch(ctx context.Context, st *state, c *client, i int, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h, err := c.height(ctx)
		if err != nil {
			st.mu.Lock()
			st.nodes[i].err = err
			st.mu.Unlock()
			continue
		}
		st.mu.Lock()
		next := st.nodes[i].height + 1
		st.mu.Unlock()
		for ; next <= h; next++ {
			b, err := c.block(ctx, next)
			if err != nil {
				break
			}
			seen := time.Now()
			st.mu.Lock()
			ns := st.nodes[i]
			ns.height = next
			ns.err = nil
			if i == 0 {
				st.blockTimes[next] = b.time
			}
			for _, tx := range b.txs {
				s, ok := strings.CutPrefix(string(tx), st.prefix)
				if !ok {
					continue
				}
				k, _, _ := strings.Cut(s, "=")
				seq, err := strconv.Atoi(k)
				if err != nil || seq < 0 || seq >= len(st.sent) {
					continue
				}
				ns.committed = append(ns.committed, seen)
				if tx := &st.sent[seq]; tx.node == i && tx.done.IsZero() {
					tx.done = seen
				}
			}
			st.mu.Unlock()
		}
	}
}

// cpuSeconds reads a process's user plus system time from /proc (0 when unknown).
func cpuSeconds(pid string) float64 {
	if pid == "" {
		return 0
	}
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it start past the last ')'.
	s := string(b)
	j := strings.LastIndexByte(s, ')')
	if j < 0 {
		return 0
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ is 100 on Linux
}

// protocols counts a node's current peers by the protocol its log last named for each
// (ringwire-cometbft logs "Added peer ... peer=ID protocol=native|stock").
func protocols(logFile string, peers []string) (native, stock int, known bool) {
	if logFile == "" {
		return 0, 0, false
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		return 0, 0, false
	}
	last := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "Added peer") {
			continue
		}
		_, rest, ok := strings.Cut(line, " peer=")
		if !ok {
			continue
		}
		id, rest, _ := strings.Cut(rest, " ")
		_, proto, ok := strings.Cut(rest, "protocol=")
		if !ok {
			continue
		}
		proto, _, _ = strings.Cut(proto, " ")
		last[id] = proto
	}
	if len(last) == 0 {
		return 0, 0, false
	}
	for _, p := range peers {
		switch last[p] {
		case "native":
			native++
		case "stock":
			stock++
		}
	}
	return native, stock, true
}
