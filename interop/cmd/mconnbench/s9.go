package main

// Scenario s9, overload without stale buildup, on stock MConnection: the mix
// of `ringwire testnet --s9` (cli/src/testnet.rs) on -nodes nodes in this
// process, fully meshed over loopback TCP with SecretConnection and
// MConnection. Every node, every second:
//
//   - broadcasts 1,000 votes of 200 B on channel 0x22 (priority 10),
//   - broadcasts 20 block parts of 64 KiB on channel 0x21 (priority 1),
//   - sends 100 requests of 64 B on channel 0x40 (priority 5), to its peers in
//     turn, one outstanding at a time, each answered with 1 KiB on the same
//     channel and given up after 2 s.
//
// Stock MConnection has no request/response and no delivery deadline: a
// request is a message carrying an id, its answer a message back with that
// id, and nothing is dropped for age. Broadcasts and answers use TrySend
// (non-blocking, as the stock Switch.TryBroadcast), so a slow peer never holds
// up the sender; a copy refused because the peer's channel queue is full is
// counted as a send_queue_full drop. Every message starts with its send time (nanoseconds of the monotonic
// clock since the traffic started, one clock for all nodes), so the receiver
// records its delivered age. Only deliveries while traffic runs count.

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/p2p/conn"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

const (
	s9VoteChannel    = byte(0x22)
	s9PartChannel    = byte(0x21)
	s9RequestChannel = byte(0x40)

	s9VotesPerSec     = 1000
	s9VoteSize        = 200
	s9PartsPerSec     = 20
	s9PartSize        = 64 << 10
	s9RequestsPerSec  = 100
	s9RequestSize     = 64
	s9ResponseSize    = 1024
	s9RequestDeadline = 2 * time.Second
	// s9Tick paces the broadcasts, as the testnet's sender does.
	s9Tick = 10 * time.Millisecond

	// On the request channel the byte after the send time says what the
	// message is; the next 8 bytes are the request id.
	s9IsRequest  = byte(1)
	s9IsResponse = byte(2)
)

// Kinds, indexing ages and drops.
const (
	kindVote = iota
	kindPart
	kindRequest
	kindResponse
	kinds
)

// s9Channels are the stock consensus and blocksync descriptors (send queue
// capacities 100, 100 and 1000) with S9's priorities.
func s9Channels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{
		{ID: s9VoteChannel, Priority: 10, SendQueueCapacity: 100, RecvBufferCapacity: 100 * 100, RecvMessageCapacity: 1 << 20},
		{ID: s9RequestChannel, Priority: 5, SendQueueCapacity: 1000, RecvBufferCapacity: 50 * 4096, RecvMessageCapacity: 1 << 20},
		{ID: s9PartChannel, Priority: 1, SendQueueCapacity: 100, RecvBufferCapacity: 50 * 4096, RecvMessageCapacity: 1 << 20},
	}
}

// s9State is the whole run: the counters every node shares.
type s9State struct {
	o      *options
	epoch  time.Time
	live   atomic.Bool
	ages   [kinds]hist          // µs; kindResponse unused
	rtt    hist                 // µs, answered requests
	counts [kinds]atomic.Uint64 // delivered
	offer  [kinds]atomic.Uint64 // copies offered to TrySend
	full   [kinds]atomic.Uint64 // copies TrySend refused
	issued atomic.Uint64
	inTime atomic.Uint64
	late   atomic.Uint64
	errors atomic.Uint64
}

// now is the send time stamped into messages: ns since the traffic started.
func (r *s9State) now() uint64 {
	return uint64(time.Since(r.epoch))
}

// s9Fill is the body of every S9 message (the largest is a block part).
var s9Fill = benchchild.Payload(s9PartSize)

// stamped is a message of n bytes that starts with the send time.
func (r *s9State) stamped(n int) []byte {
	b := make([]byte, n)
	copy(b, s9Fill)
	binary.LittleEndian.PutUint64(b, r.now())
	return b
}

// receive handles a message delivered to n by the connection mc.
func (n *s9Node) receive(mc *conn.MConnection, ch byte, msg []byte) {
	r := n.run
	if !r.live.Load() || len(msg) < 8 {
		return
	}
	now := r.now()
	ageUs := (now - min(binary.LittleEndian.Uint64(msg), now)) / 1000
	switch ch {
	case s9VoteChannel:
		r.counts[kindVote].Add(1)
		r.ages[kindVote].record(ageUs)
	case s9PartChannel:
		r.counts[kindPart].Add(1)
		r.ages[kindPart].record(ageUs)
	case s9RequestChannel:
		if len(msg) < 17 {
			return
		}
		id := binary.LittleEndian.Uint64(msg[9:])
		switch msg[8] {
		case s9IsRequest:
			r.counts[kindRequest].Add(1)
			r.ages[kindRequest].record(ageUs)
			resp := r.stamped(s9ResponseSize)
			resp[8] = s9IsResponse
			binary.LittleEndian.PutUint64(resp[9:], id)
			r.offer[kindResponse].Add(1)
			if !mc.TrySend(s9RequestChannel, resp) {
				r.full[kindResponse].Add(1)
			}
		case s9IsResponse:
			r.counts[kindResponse].Add(1)
			if n.waiting.Load() == id {
				select {
				case n.answers <- id:
				default:
				}
			}
		}
	}
}

// broadcast offers msg to every peer; a full send queue drops that copy.
func (n *s9Node) broadcast(ch byte, kind int, msg []byte) {
	n.run.offer[kind].Add(uint64(len(n.peers)))
	for _, p := range n.peers {
		if !p.TrySend(ch, msg) {
			n.run.full[kind].Add(1)
		}
	}
}

// send broadcasts votes and block parts in ticks of s9Tick until stop closes.
func (n *s9Node) send(stop <-chan struct{}) {
	next := time.Now()
	for tick := 0; ; tick++ {
		select {
		case <-stop:
			return
		default:
		}
		for i := 0; i < s9VotesPerSec/100; i++ {
			n.broadcast(s9VoteChannel, kindVote, n.run.stamped(s9VoteSize))
		}
		if tick%(100/s9PartsPerSec) == 0 {
			n.broadcast(s9PartChannel, kindPart, n.run.stamped(s9PartSize))
		}
		pace(&next, s9Tick)
	}
}

// request sends requests to the peers in turn, one outstanding at a time,
// each waiting up to s9RequestDeadline for its answer.
func (n *s9Node) request(stop <-chan struct{}) {
	r := n.run
	next := time.Now()
	var id uint64
	for turn := 0; ; turn++ {
		select {
		case <-stop:
			return
		default:
		}
		id++
		msg := r.stamped(s9RequestSize)
		msg[8] = s9IsRequest
		binary.LittleEndian.PutUint64(msg[9:], id)
		n.waiting.Store(id)
		r.issued.Add(1)
		r.offer[kindRequest].Add(1)
		start := time.Now()
		if n.peers[turn%len(n.peers)].TrySend(s9RequestChannel, msg) {
			timeout := time.NewTimer(s9RequestDeadline)
		wait:
			for {
				select {
				case got := <-n.answers:
					// An answer to an earlier request that came just after it
					// was given up is not this one's.
					if got != id {
						continue
					}
					if rtt := time.Since(start); rtt <= s9RequestDeadline {
						r.inTime.Add(1)
						r.rtt.record(uint64(rtt.Microseconds()))
					}
				case <-timeout.C:
					r.late.Add(1)
				case <-stop:
				}
				break wait
			}
			timeout.Stop()
		} else {
			r.full[kindRequest].Add(1)
		}
		n.waiting.Store(0)
		pace(&next, time.Second/s9RequestsPerSec)
	}
}

// pace sleeps until *next + period and makes that the new *next; a loop that
// fell behind starts again from now instead of catching up in a burst.
func pace(next *time.Time, period time.Duration) {
	*next = next.Add(period)
	if d := time.Until(*next); d > 0 {
		time.Sleep(d)
	} else {
		*next = time.Now()
	}
}

// s9Run meshes the nodes, runs the traffic for -duration-ms and reports.
func s9Run(o *options) error {
	r := &s9State{o: o}
	nodes, err := r.mesh()
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	r.epoch = time.Now()
	r.live.Store(true)
	for _, n := range nodes {
		go n.send(stop)
		go n.request(stop)
	}
	time.Sleep(o.Duration)
	r.live.Store(false)
	elapsed := time.Since(r.epoch)
	close(stop)

	benchchild.PrintResult(r.report(len(nodes), elapsed))
	// Nothing is torn down: the connections go with the process.
	os.Exit(0)
	return nil
}
