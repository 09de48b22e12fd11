package rwswitch

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/cosmos/gogoproto/proto"

	"github.com/cometbft/cometbft/p2p"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// peerEntry holds a peer's received messages until its reactors take them: one FIFO per
// channel, each drained by its own goroutine while it has messages, so a slow reactor or a
// busy peer holds up only its own (peer, channel) pair. Messages that arrive before the
// peer's up event was handled wait here for it.
type peerEntry struct {
	created time.Time

	mu      sync.Mutex
	peer    *peer    // nil until the peer was added
	src     p2p.Peer // the peer as the reactors know it (after InitPeer)
	stopped bool     // the connection is gone: drop what arrives
	queued  int      // bytes waiting in queues
	queues  map[byte]*inbox
}

// inbox is one (peer, channel) FIFO.
type inbox struct {
	msgs    [][]byte
	head    int
	running bool // a goroutine drains it
}

// errQueueOverflow stops a peer whose messages wait faster than its reactors take them.
var errQueueOverflow = errors.New("ringwire: the peer's received messages exceed the switch's queue bound")

// receiveLoop takes channel chID's messages from the node, a batch per call, and queues each
// for its peer.
func (sw *Switch) receiveLoop(chID byte, ch *ringwire.Channel) {
	defer sw.loops.Done()
	var done *ringwire.Batch
	for {
		b, err := ch.ReceiveBatchNext(sw.ctx, done)
		done = nil
		if err != nil {
			if sw.ctx.Err() != nil || errors.Is(err, ringwire.ErrStopped) || errors.Is(err, ringwire.ErrClosed) {
				return
			}
			sw.Logger.Error("ringwire receive", "channel", chID, "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var (
			last ringwire.NodeID
			e    *peerEntry
		)
		for _, m := range b.Messages() {
			if m.Local {
				continue
			}
			if e == nil || m.Peer != last {
				e, last = sw.entryFor(m.Peer), m.Peer
			}
			sw.push(e, chID, bytes.Clone(m.Payload))
		}
		done = b
	}
}

// entryFor returns id's entry, made if needed.
func (sw *Switch) entryFor(id ringwire.NodeID) *peerEntry {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	e := sw.entries[id]
	if e == nil {
		e = &peerEntry{created: time.Now(), queues: make(map[byte]*inbox)}
		sw.entries[id] = e
	}
	return e
}

// push queues msg on e's channel chID and starts its drain when the peer is added.
func (sw *Switch) push(e *peerEntry, chID byte, msg []byte) {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	if e.queued > 0 && e.queued+len(msg) > maxQueuedBytesPerPeer {
		src := e.src
		e.mu.Unlock()
		if src != nil {
			go sw.StopPeerForError(src, errQueueOverflow)
		}
		return
	}
	q := e.queues[chID]
	if q == nil {
		q = &inbox{}
		e.queues[chID] = q
	}
	q.msgs = append(q.msgs, msg)
	e.queued += len(msg)
	start := e.src != nil && !q.running
	if start {
		q.running = true
	}
	e.mu.Unlock()
	if start {
		go sw.drain(e, chID, q)
	}
}

// attach makes p (src as the reactors know it) the receiver of its entry's messages and
// starts delivering those already waiting.
func (sw *Switch) attach(p *peer, src p2p.Peer) {
	e := sw.entryFor(p.id)
	e.mu.Lock()
	e.peer, e.src, e.stopped = p, src, false
	var start []byte
	for chID, q := range e.queues {
		if !q.running && q.head < len(q.msgs) {
			q.running = true
			start = append(start, chID)
		}
	}
	e.mu.Unlock()
	for _, chID := range start {
		go sw.drain(e, chID, e.queues[chID])
	}
}

// detach ends e's deliveries: what waits and what arrives later is dropped.
func (e *peerEntry) detach() {
	e.mu.Lock()
	e.stopped = true
	for _, q := range e.queues {
		q.msgs, q.head = nil, 0
	}
	e.queued = 0
	e.mu.Unlock()
}

// drain hands q's messages to the reactor of chID, in order, until q is empty.
func (sw *Switch) drain(e *peerEntry, chID byte, q *inbox) {
	for {
		e.mu.Lock()
		if q.head >= len(q.msgs) {
			q.msgs, q.head, q.running = q.msgs[:0], 0, false
			e.mu.Unlock()
			return
		}
		msg := q.msgs[q.head]
		q.msgs[q.head] = nil
		q.head++
		if q.head >= 1024 && 2*q.head >= len(q.msgs) {
			n := copy(q.msgs, q.msgs[q.head:])
			clear(q.msgs[n:])
			q.msgs, q.head = q.msgs[:n], 0
		}
		e.queued -= len(msg)
		src := e.src
		e.mu.Unlock()
		if src.IsRunning() {
			sw.deliver(src, chID, msg)
		}
	}
}

// deliver is stock's MConnection receive callback: the reactor's MsgBytesFilter, unmarshal
// with the channel's message type, unwrap, Receive. A failure, or a panic in the reactor,
// stops the peer with the reason.
func (sw *Switch) deliver(src p2p.Peer, chID byte, msgBytes []byte) {
	defer func() {
		if r := recover(); r != nil {
			sw.Logger.Error("Peer panicked in a reactor", "peer", src, "err", r)
			sw.StopPeerForError(src, fmt.Errorf("recovered from panic: %v", r))
		}
	}()
	reactor := sw.reactorsByCh[chID]
	if reactor == nil {
		sw.StopPeerForError(src, fmt.Errorf("unknown channel %X", chID))
		return
	}
	if f, ok := reactor.(p2p.MsgBytesFilter); ok {
		if err := f.FilterMsgBytes(chID, src, msgBytes); err != nil {
			sw.StopPeerForError(src, fmt.Errorf("rejected msg on chID %#x from %s: %w", chID, src.ID(), err))
			return
		}
	}
	mt := sw.msgTypeByChID[chID]
	msg := proto.Clone(mt)
	if err := proto.Unmarshal(msgBytes, msg); err != nil {
		sw.StopPeerForError(src, fmt.Errorf("unmarshaling message: %s into type: %s", err, reflect.TypeOf(mt)))
		return
	}
	if w, ok := msg.(p2p.Unwrapper); ok {
		var err error
		if msg, err = w.Unwrap(); err != nil {
			sw.StopPeerForError(src, fmt.Errorf("unwrapping message: %s", err))
			return
		}
	}
	sw.metrics.PeerReceiveBytesTotal.With("peer_id", string(src.ID()), "chID", fmt.Sprintf("%#x", chID)).Add(float64(len(msgBytes)))
	sw.metrics.MessageReceiveBytesTotal.With("message_type", metricLabel(msg)).Add(float64(len(msgBytes)))
	reactor.Receive(p2p.Envelope{ChannelID: chID, Src: src, Message: msg})
}

// sweepUnknown drops the messages of peers whose up event never came.
func (sw *Switch) sweepUnknown() {
	var old []*peerEntry
	sw.mu.Lock()
	for id, e := range sw.entries {
		e.mu.Lock()
		unknown := e.src == nil
		e.mu.Unlock()
		if unknown && time.Since(e.created) > unknownPeerGrace {
			delete(sw.entries, id)
			old = append(old, e)
		}
	}
	sw.mu.Unlock()
	for _, e := range old {
		e.detach()
	}
}
