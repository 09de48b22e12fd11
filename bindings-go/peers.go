package ringwire

/*
#include "ringwire.h"
*/
import "C"

import (
	"unsafe"
)

// PeerInfo describes a connected peer.
type PeerInfo struct {
	// ID is the peer's node ID.
	ID NodeID
	// Outbound is true when this node dialed the peer.
	Outbound bool
	// Native is true when the connection speaks ringwire's native protocol (false: stock
	// MConnection).
	Native bool
	// RemoteAddr is the peer's socket address ("IP:PORT"); empty when unknown.
	RemoteAddr string
	// NodeInfo is the NodeInfo the peer sent, encoded as stock's tendermint.p2p.DefaultNodeInfo
	// protobuf message (no length prefix): CometBFT's own types decode it.
	NodeInfo []byte
}

// Peers lists the IDs of the connected peers.
func (n *Node) Peers() ([]NodeID, error) {
	ids := make([]NodeID, 64)
	for {
		var count, total C.size_t
		err := n.with(func(h *C.ringwire_node) error {
			return call("peers", func() C.ringwire_result {
				return C.ringwire_node_peers(h, cID(&ids[0]), C.size_t(len(ids)), &count, &total)
			})
		})
		if err != nil {
			return nil, err
		}
		if int(total) <= len(ids) {
			return ids[:count], nil
		}
		// More came up than there was room for: ask again with room for them all.
		ids = make([]NodeID, int(total)+16)
	}
}

// PeerInfo describes connected peer id; ErrPeerGone when it is not connected.
func (n *Node) PeerInfo(id NodeID) (PeerInfo, error) {
	var info C.ringwire_peer_info
	info.size = C.size_t(unsafe.Sizeof(info))
	buf := make([]byte, C.RINGWIRE_MAX_NODE_INFO_SIZE)
	err := n.with(func(h *C.ringwire_node) error {
		return call("peer info", func() C.ringwire_result {
			return C.ringwire_node_peer_info(h, cID(&id), &info, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		})
	})
	if err != nil {
		return PeerInfo{}, err
	}
	return PeerInfo{
		ID:         *(*NodeID)(unsafe.Pointer(&info.peer)),
		Outbound:   info.outbound != 0,
		Native:     info.native != 0,
		RemoteAddr: C.GoString(&info.remote_addr[0]),
		NodeInfo:   buf[:info.node_info_len:info.node_info_len],
	}, nil
}
