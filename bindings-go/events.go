package ringwire

/*
#include "ringwire.h"
*/
import "C"

import (
	"context"
	"iter"
	"time"
	"unsafe"
)

// PeerEventKind says whether a peer came up or went down.
type PeerEventKind uint32

// The peer event kinds.
const (
	// PeerUp: a peer connected and passed every check.
	PeerUp PeerEventKind = C.RINGWIRE_PEER_EVENT_KIND_UP
	// PeerDown: a peer that was up is gone.
	PeerDown PeerEventKind = C.RINGWIRE_PEER_EVENT_KIND_DOWN
)

// PeerEvent is a peer up/down event.
type PeerEvent struct {
	// Kind is up or down.
	Kind PeerEventKind
	// Peer is the peer.
	Peer NodeID
	// Outbound (up events): this node dialed the peer.
	Outbound bool
	// Native (up events): the connection speaks ringwire's native protocol.
	Native bool
	// Reason (down events): why the connection ended.
	Reason string
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Peers                uint64 // connected peers
	FanoutDropped        uint64 // role-addressed sends skipped for a full peer queue
	LateResponses        uint64 // responses that arrived after their request gave up
	Refused              uint64 // connections refused by admission
	ProtocolErrors       uint64 // connections closed for a protocol error
	IOErrors             uint64 // connections closed for a socket error
	Accepted             uint64 // inbound connections accepted
	AcceptRefused        uint64 // inbound connections refused at accept
	EventsLagged         uint64 // peer events lost because a subscriber fell behind
	ReadBuffersExhausted uint64 // reads that found no lent read buffer free
	AcceptErrors         uint64 // accepts that failed (out of descriptors or memory)
	ControlFloods        uint64 // connections closed for too many control frames per second
	PartialBudget        uint64 // connections closed for too many partly received bytes
	QueuedDropped        uint64 // queued messages a connection refused for good
	PexRateLimited       uint64 // PEX addresses over their peer's rate, dropped
	PexRefused           uint64 // PEX addresses refused by policy
	PexEvicted           uint64 // PEX addresses evicted from a full address book
	PexReplaced          uint64 // outbound peers let go for a capable one (p2p.capability_targets)
	// ExpiredBeforeSend counts messages whose delivery deadline passed before they were written.
	ExpiredBeforeSend uint64
	// ExpiredBeforeDelivery counts received messages whose time-to-live ran out before the
	// application took them.
	ExpiredBeforeDelivery uint64
}

// Stats reads the node's counters.
func (n *Node) Stats() (Stats, error) {
	var s C.ringwire_node_stats
	err := n.with(func(h *C.ringwire_node) error {
		return call("stats", func() C.ringwire_result { return C.ringwire_node_get_stats(h, &s) })
	})
	return Stats{
		Peers:                 uint64(s.peers),
		FanoutDropped:         uint64(s.fanout_dropped),
		LateResponses:         uint64(s.late_responses),
		Refused:               uint64(s.refused),
		ProtocolErrors:        uint64(s.protocol_errors),
		IOErrors:              uint64(s.io_errors),
		Accepted:              uint64(s.accepted),
		AcceptRefused:         uint64(s.accept_refused),
		EventsLagged:          uint64(s.events_lagged),
		ReadBuffersExhausted:  uint64(s.read_buffers_exhausted),
		AcceptErrors:          uint64(s.accept_errors),
		ControlFloods:         uint64(s.control_floods),
		PartialBudget:         uint64(s.partial_budget_exceeded),
		QueuedDropped:         uint64(s.queued_dropped),
		PexRateLimited:        uint64(s.pex_addresses_rate_limited),
		PexRefused:            uint64(s.pex_addresses_refused),
		PexEvicted:            uint64(s.pex_addresses_evicted),
		PexReplaced:           uint64(s.pex_capability_replacements),
		ExpiredBeforeSend:     uint64(s.expired_before_send),
		ExpiredBeforeDelivery: uint64(s.expired_before_delivery),
	}, err
}

// Disconnect closes the connection to peer (ErrPeerGone when it was not connected).
func (n *Node) Disconnect(peer NodeID) error {
	return n.with(func(h *C.ringwire_node) error {
		return call("disconnect", func() C.ringwire_result { return C.ringwire_node_disconnect(h, cID(&peer)) })
	})
}

// Ban closes peer's connection and refuses it, inbound and outbound, for d.
func (n *Node) Ban(peer NodeID, d time.Duration) error {
	return n.with(func(h *C.ringwire_node) error {
		return call("ban", func() C.ringwire_result {
			return C.ringwire_node_ban(h, cID(&peer), C.uint64_t(d.Milliseconds()))
		})
	})
}

// PollEvents waits until ctx is done for at least one peer event and returns those waiting
// (up to 32, oldest first). While none waits the goroutine parks in Go's netpoller on the
// node's event descriptor, holding no OS thread.
func (n *Node) PollEvents(ctx context.Context) ([]PeerEvent, error) {
	var evs [32]C.ringwire_peer_event
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var cnt C.size_t
		err := n.with(func(h *C.ringwire_node) error {
			return call("poll events", func() C.ringwire_result {
				return C.ringwire_node_poll_events(h, &evs[0], C.size_t(len(evs)), 0, &cnt)
			})
		})
		if err != nil {
			return nil, err
		}
		if cnt == 0 {
			if err := n.events.wait(ctx); err != nil {
				return nil, err
			}
			continue
		}
		out := make([]PeerEvent, cnt)
		for i := range out {
			e := &evs[i]
			out[i] = PeerEvent{
				Kind:     PeerEventKind(e.kind),
				Outbound: bool(e.outbound),
				Native:   bool(e.native),
				Reason:   C.GoString(&e.reason[0]),
			}
			copy(out[i].Peer[:], unsafe.Slice((*byte)(unsafe.Pointer(&e.peer.bytes[0])), 20))
		}
		return out, nil
	}
}

// Events yields peer events as they come, oldest first, until ctx ends or the node closes
// (then it yields the error once). It parks in Go's netpoller between events.
func (n *Node) Events(ctx context.Context) iter.Seq2[PeerEvent, error] {
	return func(yield func(PeerEvent, error) bool) {
		for {
			evs, err := n.PollEvents(ctx)
			if err != nil {
				yield(PeerEvent{}, err)
				return
			}
			for _, e := range evs {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}
