package ringwire

/*
#include <stdlib.h>
#include "ringwire.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// pollMs is how long one call into the library waits before the context is checked again.
const pollMs = 50

// recvBatch is the most messages one receive call returns.
const recvBatch = 256

// waitMs is how long the next call into the library may wait: pollMs, or less when ctx's
// deadline is nearer (at least 1 ms, so a call that finds no space or no message waits a
// little rather than spinning).
func waitMs(ctx context.Context) C.uint64_t {
	d, ok := ctx.Deadline()
	if !ok {
		return pollMs
	}
	ms := time.Until(d).Milliseconds() + 1
	switch {
	case ms < 1:
		return 1
	case ms < pollMs:
		return C.uint64_t(ms)
	default:
		return pollMs
	}
}

// viewPool recycles the arrays that receive calls fill with message views.
var viewPool = sync.Pool{New: func() any { return new([recvBatch]C.ringwire_message) }}

// Destination says where an Envelope goes.
type Destination uint32

// The destinations.
const (
	// ToPeer sends to one connected peer.
	ToPeer Destination = C.RINGWIRE_TO_PEER
	// ToBroadcast sends to every connected peer that shares the channel.
	ToBroadcast Destination = C.RINGWIRE_TO_BROADCAST
	// ToLocal sends to this node's own receiver of the channel.
	ToLocal Destination = C.RINGWIRE_TO_LOCAL
	// ToRole sends to native peers that announced the capability Role.
	ToRole Destination = C.RINGWIRE_TO_ROLE
)

// Fanout says how many peers with a role a role-addressed envelope reaches.
type Fanout uint32

// The fanouts.
const (
	// FanoutAll reaches every such peer.
	FanoutAll Fanout = C.RINGWIRE_FANOUT_ALL
	// FanoutCount reaches at most FanoutCount of them, chosen at random.
	FanoutCount Fanout = C.RINGWIRE_FANOUT_COUNT
	// FanoutFraction reaches the fraction FanoutFraction of them, rounded up.
	FanoutFraction Fanout = C.RINGWIRE_FANOUT_FRACTION
)

// Envelope is a message to send and its destination. The payload is copied during the send.
type Envelope struct {
	// To is the destination kind.
	To Destination
	// Peer is the peer, for ToPeer.
	Peer NodeID
	// Role is the capability, for ToRole.
	Role string
	// Fanout applies to ToRole.
	Fanout Fanout
	// FanoutCount applies to FanoutCount.
	FanoutCount int
	// FanoutFraction applies to FanoutFraction (0.0 to 1.0).
	FanoutFraction float64
	// Payload is the bytes.
	Payload []byte
	// DeliverWithin is the delivery deadline from the send (0: none): a message not written
	// to the peer by then is dropped, and a native peer drops it if its remaining
	// time-to-live runs out before its application takes it (counted in Stats as
	// ExpiredBeforeSend and ExpiredBeforeDelivery). Rounded up to whole milliseconds.
	DeliverWithin time.Duration
}

// Channel is an open channel of a node (a ringwire_channel handle). Its methods may be called
// from any goroutine; receives are serialised by the library.
type Channel struct {
	mu      sync.RWMutex // held for reading during calls, for writing by Close
	h       *C.ringwire_channel
	node    *Node // keeps the node reachable while the channel is
	id      byte
	cleanup runtime.Cleanup

	pendMu  sync.Mutex
	pending *Batch // messages a Receive loop stopped before; the next receive starts with them

	ready *readiness // receives wait here when nothing is waiting

	// busy: the last receive returned at least busyBatch messages, so the next one waits
	// for more inside the library (see ReceiveBatchNext).
	busy atomic.Bool
}

// busyBatch is the batch size from which a channel counts as busy: its next receive waits
// inside the library rather than in Go's netpoller.
const busyBatch = 32

func newChannel(n *Node, h *C.ringwire_channel, id byte) (*Channel, error) {
	ready, err := newReadiness("channel", func(fd *C.int) C.ringwire_result { return C.ringwire_channel_fd(h, fd) })
	if err != nil {
		countC(1)
		C.ringwire_channel_free(h)
		return nil, err
	}
	c := &Channel{h: h, node: n, id: id, ready: ready}
	c.cleanup = runtime.AddCleanup(c, freeChannel, channelHandles{h: unsafe.Pointer(h), ready: ready})
	return c, nil
}

// channelHandles is what the cleanup of a dropped Channel frees.
type channelHandles struct {
	h     unsafe.Pointer
	ready *readiness
}

// freeChannel frees a channel that was dropped without Close.
func freeChannel(hs channelHandles) {
	hs.ready.close()
	countC(1)
	C.ringwire_channel_free((*C.ringwire_channel)(hs.h))
}

// ID is the channel's ID.
func (c *Channel) ID() byte { return c.id }

// with runs f with the live handle, or returns ErrClosed.
func (c *Channel) with(f func(h *C.ringwire_channel) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return ErrClosed
	}
	err := f(c.h)
	runtime.KeepAlive(c)
	return err
}

// Send sends msg to the peer to, waiting for queue space until ctx is done.
func (c *Channel) Send(ctx context.Context, to NodeID, msg []byte) error {
	return c.SendBatch(ctx, []Envelope{{To: ToPeer, Peer: to, Payload: msg}})
}

// TrySend queues msg for the peer to without waiting: a full queue fails at once with an
// error wrapping ErrFull (as stock CometBFT's Peer.TrySend, which returns false then).
func (c *Channel) TrySend(to NodeID, msg []byte) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	env := C.ringwire_envelope{to: C.RINGWIRE_TO_PEER}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&env.peer.bytes[0])), 20), to[:])
	if len(msg) > 0 {
		pin.Pin(&msg[0])
		env.payload = (*C.uint8_t)(unsafe.Pointer(&msg[0]))
		env.payload_len = C.size_t(len(msg))
	}
	var queued C.size_t
	return c.with(func(h *C.ringwire_channel) error {
		return call("send", func() C.ringwire_result { return C.ringwire_channel_send(h, &env, 1, 0, &queued) })
	})
}

// Broadcast sends msg to every connected peer that shares the channel.
func (c *Channel) Broadcast(ctx context.Context, msg []byte) error {
	return c.SendBatch(ctx, []Envelope{{To: ToBroadcast, Payload: msg}})
}

// SendBatch sends the envelopes in order with one call into the library (more only while it
// waits for queue space, resuming where the last call stopped), until ctx is done. On error,
// the envelopes before the one that failed were queued. When ctx ends while the queue is
// still full, the error wraps both the library's code (ErrFull or ErrTimeout) and ctx.Err(),
// so backpressure is visible as errors.Is(err, ringwire.ErrTimeout).
func (c *Channel) SendBatch(ctx context.Context, envs []Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(envs) == 0 {
		return nil
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	cenvs := make([]C.ringwire_envelope, len(envs))
	var roles []*C.char
	defer func() {
		for _, r := range roles {
			countC(1)
			C.free(unsafe.Pointer(r))
		}
	}()
	for i := range envs {
		e := &envs[i]
		ce := &cenvs[i]
		ce.to = C.uint32_t(e.To)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&ce.peer.bytes[0])), 20), e.Peer[:])
		if e.To == ToRole {
			countC(1)
			r := C.CString(e.Role)
			roles = append(roles, r)
			ce.role = r
		}
		ce.fanout = C.uint32_t(e.Fanout)
		ce.fanout_count = C.size_t(e.FanoutCount)
		ce.fanout_fraction = C.double(e.FanoutFraction)
		if e.DeliverWithin > 0 {
			ce.deliver_within_ms = C.uint64_t((e.DeliverWithin + time.Millisecond - 1) / time.Millisecond)
		}
		if len(e.Payload) > 0 {
			pin.Pin(&e.Payload[0])
			ce.payload = (*C.uint8_t)(unsafe.Pointer(&e.Payload[0]))
			ce.payload_len = C.size_t(len(e.Payload))
		}
	}
	done := 0
	for {
		var queued C.size_t
		rest := cenvs[done:]
		wait := waitMs(ctx)
		err := c.with(func(h *C.ringwire_channel) error {
			return call("send", func() C.ringwire_result {
				return C.ringwire_channel_send(h, &rest[0], C.size_t(len(rest)), wait, &queued)
			})
		})
		runtime.KeepAlive(cenvs)
		done += int(queued)
		if err == nil && done >= len(cenvs) {
			return nil
		}
		if err != nil && !errors.Is(err, ErrFull) && !errors.Is(err, ErrTimeout) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			if err != nil {
				return fmt.Errorf("%w after %d of %d envelopes (%w)", err, done, len(cenvs), cerr)
			}
			return cerr
		}
	}
}

// ReceiveBatch waits until ctx is done for at least one message and returns the batch that
// holds what arrived (at most 256 messages). Release the batch when done with its messages.
// Once the node has stopped and every message was taken, it fails with ErrStopped.
func (c *Channel) ReceiveBatch(ctx context.Context) (*Batch, error) {
	return c.ReceiveBatchNext(ctx, nil)
}

// ReceiveBatchNext releases done (a batch of an earlier receive, or nil) and then receives as
// ReceiveBatch does; the release and the receive are one call into the library. done is
// released whatever the outcome. A receive loop that handles whole batches uses it to make
// one call per batch.
func (c *Channel) ReceiveBatchNext(ctx context.Context, done *Batch) (*Batch, error) {
	var rel *C.ringwire_batch
	if done != nil {
		rel = done.detach()
	}
	defer func() {
		if rel != nil {
			countC(1)
			C.ringwire_batch_release(rel)
		}
	}()
	c.pendMu.Lock()
	b := c.pending
	c.pending = nil
	c.pendMu.Unlock()
	if b != nil {
		return b, nil
	}
	views := viewPool.Get().(*[recvBatch]C.ringwire_message)
	defer viewPool.Put(views)
	// A busy channel (its last batch held busyBatch messages or more) is received inside the
	// library: one call waits up to pollMs for the next message, with no trip through the Go
	// scheduler. Any other channel, or a busy one once such a wait found nothing, is first
	// asked without waiting, and then the goroutine parks in the netpoller on the channel's
	// eventfd (no OS thread held in C; cancelling ctx ends that wait at once). Waiting in C
	// on a channel with a message every few milliseconds, as a consensus node's are, keeps
	// an OS thread blocked in a cgo call and the Go runtime's monitor thread waking every
	// 20 µs to take its processor back: a 4-validator CometBFT localnet used 1.6 times the
	// CPU this way (docs/PERFORMANCE.md, "Go receive").
	idle := !c.busy.Load()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var bh *C.ringwire_batch
		var n C.size_t
		wait := waitMs(ctx)
		if idle {
			wait = 0
		}
		err := c.with(func(h *C.ringwire_channel) error {
			r := rel
			rel = nil // the call releases it, whatever its outcome
			return call("receive", func() C.ringwire_result {
				return C.ringwire_channel_recv_next(h, r, &views[0], C.size_t(len(views)), wait, &bh, &n)
			})
		})
		if err != nil && !errors.Is(err, ErrTimeout) {
			return nil, err
		}
		if err == nil && n > 0 {
			c.busy.Store(n >= busyBatch)
			return newBatch(bh, views[:n]), nil
		}
		c.busy.Store(false)
		if bh != nil {
			countC(1)
			C.ringwire_batch_release(bh)
		}
		if idle {
			if err := c.ready.wait(ctx); err != nil {
				return nil, err
			}
		}
		idle = true
	}
}

// Receive iterates over received messages until ctx is done or the node stops; it then
// yields the error (ctx.Err() or one wrapping ErrStopped) once and ends. Messages are read in
// batches, one call into the library per batch (which also releases the previous batch), and
// are yielded in place: a message's Payload is valid only until the loop body returns. Use
// Clone, or ReceiveCopy, to keep it. Messages of the current batch left when the loop stops
// early are kept for the next receive (run one receive loop per channel at a time: leftovers
// of two loops that stop at once are not merged, and the older are dropped).
func (c *Channel) Receive(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		var done *Batch
		for {
			b, err := c.ReceiveBatchNext(ctx, done)
			done = nil
			if err != nil {
				yield(Message{}, err)
				return
			}
			for i, m := range b.Messages() {
				if !yield(m, nil) {
					c.keep(b, i+1)
					return
				}
			}
			done = b
		}
	}
}

// keep stores the messages of b from index at on for the next receive, or releases b when
// none are left.
func (c *Channel) keep(b *Batch, at int) {
	if at >= len(b.msgs) {
		b.Release()
		return
	}
	b.msgs = b.msgs[at:]
	c.pendMu.Lock()
	old := c.pending
	c.pending = b
	c.pendMu.Unlock()
	if old != nil {
		old.Release()
	}
}

// ReceiveCopy is Receive with every payload copied, so messages may be kept.
func (c *Channel) ReceiveCopy(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for m, err := range c.Receive(ctx) {
			if !yield(m.Clone(), err) {
				return
			}
		}
	}
}

// Request sends a request to peer (a native ringwire peer) and waits for its response. The
// wait is bounded by ctx's deadline (30 seconds without one) and ends when ctx is cancelled:
// the request is then withdrawn (the peer is told) and the error wraps ErrCancelled and
// ctx.Err().
func (c *Channel) Request(ctx context.Context, peer NodeID, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := uint64(30_000)
	d, hasDeadline := ctx.Deadline()
	if hasDeadline {
		ms := time.Until(d).Milliseconds()
		if ms <= 0 {
			return nil, context.DeadlineExceeded
		}
		timeout = uint64(ms) + 1 // round up: give up at or after the deadline, not before
	}
	var p *C.uint8_t
	if len(payload) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&payload[0]))
	}
	var resp C.ringwire_message
	var bh *C.ringwire_batch
	err := c.with(func(h *C.ringwire_channel) error {
		return withCancel(ctx, true, func(tok *C.ringwire_cancel) error {
			return call("request", func() C.ringwire_result {
				return C.ringwire_channel_request_cancellable(h, cID(&peer), p, C.size_t(len(payload)),
					C.uint64_t(timeout), tok, &resp, &bh)
			})
		})
	})
	runtime.KeepAlive(payload)
	if err != nil {
		if errors.Is(err, ErrTimeout) && hasDeadline {
			// The library waited out the deadline; say so even if ctx's timer has not fired yet.
			return nil, fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
		}
		return nil, err
	}
	out := viewToMessage(&resp).Clone().Payload
	countC(1)
	C.ringwire_batch_release(bh)
	return out, nil
}

// Respond answers the request requestID (a received message's RequestID) once.
func (c *Channel) Respond(requestID uint64, payload []byte) error {
	var p *C.uint8_t
	if len(payload) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&payload[0]))
	}
	err := c.with(func(h *C.ringwire_channel) error {
		return call("respond", func() C.ringwire_result {
			return C.ringwire_channel_respond(h, C.uint64_t(requestID), p, C.size_t(len(payload)))
		})
	})
	runtime.KeepAlive(payload)
	return err
}

// Close frees the channel; messages not yet received are dropped, batches already returned
// stay valid. Closing twice is fine.
func (c *Channel) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	h := c.h
	c.h = nil
	c.cleanup.Stop()
	c.ready.close()
	c.pendMu.Lock()
	if c.pending != nil {
		c.pending.Release()
		c.pending = nil
	}
	c.pendMu.Unlock()
	gcAround()
	countC(1)
	C.ringwire_channel_free(h)
	gcAround()
	return nil
}
