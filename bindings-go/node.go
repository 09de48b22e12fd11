package ringwire

/*
#include <stdlib.h>
#include "ringwire.h"
*/
import "C"

import (
	"context"
	"encoding/hex"
	"runtime"
	"sync"
	"unsafe"
)

// NodeID is a node's ID: 20 bytes, shown as 40 hex characters.
type NodeID [20]byte

// String is the ID in lowercase hex.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// stopTimeoutMs bounds the wait for connections to close when a node is closed.
const stopTimeoutMs = 2000

// Node is a running ringwire node (a ringwire_node handle). Its methods may be called from
// any goroutine.
type Node struct {
	mu      sync.RWMutex // held for reading during calls, for writing by Close
	h       *C.ringwire_node
	cleanup runtime.Cleanup
	events  *readiness // the node's peer-event eventfd, waited on in the netpoller
}

// NewNode starts a node with the settings of cfg.
func NewNode(cfg Config) (*Node, error) {
	c, err := cfg.build()
	if err != nil {
		return nil, err
	}
	defer func() {
		countC(1)
		C.ringwire_config_free(c)
	}()
	var h *C.ringwire_node
	if err := call("start", func() C.ringwire_result { return C.ringwire_node_start(c, &h) }); err != nil {
		return nil, err
	}
	events, err := newReadiness("node events", func(fd *C.int) C.ringwire_result { return C.ringwire_node_events_fd(h, fd) })
	if err != nil {
		countC(1)
		C.ringwire_node_free(h)
		return nil, err
	}
	n := &Node{h: h, events: events}
	n.cleanup = runtime.AddCleanup(n, freeNode, unsafe.Pointer(h))
	return n, nil
}

// freeNode frees a node that was dropped without Close.
func freeNode(h unsafe.Pointer) {
	countC(1)
	C.ringwire_node_free((*C.ringwire_node)(h))
}

// with runs f with the live handle, or returns ErrClosed.
func (n *Node) with(f func(h *C.ringwire_node) error) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.h == nil {
		return ErrClosed
	}
	err := f(n.h)
	runtime.KeepAlive(n)
	return err
}

// ID is the node's ID.
func (n *Node) ID() (NodeID, error) {
	var id NodeID
	err := n.with(func(h *C.ringwire_node) error {
		return call("id", func() C.ringwire_result { return C.ringwire_node_get_id(h, cID(&id)) })
	})
	return id, err
}

// ListenAddr is the bound listen address, such as "127.0.0.1:40123".
func (n *Node) ListenAddr() (string, error) {
	var buf [64]C.char
	var w C.size_t
	err := n.with(func(h *C.ringwire_node) error {
		return call("listen addr", func() C.ringwire_result {
			return C.ringwire_node_listen_addr(h, &buf[0], C.size_t(len(buf)), &w)
		})
	})
	if err != nil {
		return "", err
	}
	return C.GoStringN(&buf[0], C.int(w)), nil
}

// Dial connects to addr and waits until the peer is up. With expected non-nil the peer must
// prove that ID. It returns the peer's ID. The wait is bounded by the node's dial timeout
// (limits.dial_timeout); DialContext also ends it with a context.
func (n *Node) Dial(addr string, expected *NodeID) (NodeID, error) {
	return n.DialContext(context.Background(), addr, expected)
}

// DialContext is Dial that also gives up when ctx is done: a connect in progress is dropped
// and a connection still in its handshake is closed instead of admitted; the error then
// wraps ErrCancelled and ctx.Err(). A peer that came up before ctx ended stays connected.
// The node's dial timeout (limits.dial_timeout) still bounds the dial.
func (n *Node) DialContext(ctx context.Context, addr string, expected *NodeID) (NodeID, error) {
	var peer NodeID
	if err := ctx.Err(); err != nil {
		return peer, err
	}
	err := n.with(func(h *C.ringwire_node) error {
		return withCString(addr, func(s *C.char) error {
			var exp *C.ringwire_node_id
			if expected != nil {
				e := *expected
				exp = cID(&e)
				defer runtime.KeepAlive(&e)
			}
			return withCancel(ctx, false, func(tok *C.ringwire_cancel) error {
				return call("dial", func() C.ringwire_result {
					return C.ringwire_node_dial_cancellable(h, s, exp, tok, cID(&peer))
				})
			})
		})
	})
	return peer, err
}

// PeerCount is the number of connected peers.
func (n *Node) PeerCount() (int, error) {
	var c C.size_t
	err := n.with(func(h *C.ringwire_node) error {
		return call("peer count", func() C.ringwire_result { return C.ringwire_node_peer_count(h, &c) })
	})
	return int(c), err
}

// ChannelDesc describes a channel to open.
type ChannelDesc struct {
	// ID is the channel's one-byte ID.
	ID byte
	// Priority is the channel's share of each link (0 means 1).
	Priority uint32
	// SendQueueCapacity bounds the messages waiting to be sent to one peer on this channel
	// (0 means the node's default: the configuration's limits.channel_send_queue_capacity,
	// 64 unless set).
	SendQueueCapacity int
	// RecvMessageCapacity is the largest message accepted, in bytes (0 means 1 MiB).
	RecvMessageCapacity int
	// Compress turns on zstd for messages large and compressible enough to gain, towards
	// native peers that accept it (stock peers always get plain bytes).
	Compress bool
}

// options is d as the C struct, with the defaults filled in.
func (d ChannelDesc) options() C.ringwire_channel_options {
	if d.Priority == 0 {
		d.Priority = 1
	}
	if d.SendQueueCapacity < 0 {
		d.SendQueueCapacity = 0
	}
	if d.RecvMessageCapacity <= 0 {
		d.RecvMessageCapacity = 1 << 20
	}
	opts := C.ringwire_channel_options{
		size:                  C.size_t(unsafe.Sizeof(C.ringwire_channel_options{})),
		priority:              C.uint32_t(d.Priority),
		send_queue_capacity:   C.size_t(d.SendQueueCapacity),
		recv_message_capacity: C.size_t(d.RecvMessageCapacity),
		compression:           C.RINGWIRE_COMPRESSION_OFF,
	}
	if d.Compress {
		opts.compression = C.RINGWIRE_COMPRESSION_AUTO
	}
	return opts
}

// OpenChannel opens a channel on the node. Each channel ID is opened once per node. A channel
// of Config.Channels is opened with the same ChannelDesc (another one fails with ErrChannel).
func (n *Node) OpenChannel(d ChannelDesc) (*Channel, error) {
	opts := d.options()
	var ch *C.ringwire_channel
	err := n.with(func(h *C.ringwire_node) error {
		return call("open channel", func() C.ringwire_result {
			return C.ringwire_node_open_channel_with(h, C.uint8_t(d.ID), &opts, &ch)
		})
	})
	if err != nil {
		return nil, err
	}
	return newChannel(n, ch, d.ID)
}

// Close stops the node and frees it. Its channels then report ErrStopped. Closing twice is
// fine: the second call does nothing and returns nil.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h == nil {
		return nil
	}
	h := n.h
	n.h = nil
	n.cleanup.Stop()
	n.events.close()
	err := call("stop", func() C.ringwire_result { return C.ringwire_node_stop(h, stopTimeoutMs) })
	gcAround()
	countC(1)
	C.ringwire_node_free(h)
	gcAround()
	if err != nil && err.(*Error).Code == ErrStopped {
		err = nil
	}
	return err
}
