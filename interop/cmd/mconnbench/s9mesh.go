package main

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/p2p/conn"
)

// s9MeshTimeout bounds dialling S9's full mesh.
const s9MeshTimeout = 60 * time.Second

// s9Node is one node: its key, listener and connections to every other node.
type s9Node struct {
	run   *s9State
	key   crypto.PrivKey
	ln    net.Listener
	mu    sync.Mutex
	peers []*conn.MConnection
	// waiting is the id of the outstanding request (0: none); answers
	// carries the id of an answer that matched it.
	waiting atomic.Uint64
	answers chan uint64
}

// add starts an MConnection over an established SecretConnection to a peer.
func (n *s9Node) add(sc *conn.SecretConnection) error {
	var mc *conn.MConnection
	ready := make(chan struct{})
	onReceive := func(ch byte, msg []byte) {
		<-ready
		n.receive(mc, ch, msg)
	}
	onError := func(any) { n.run.errors.Add(1) }
	mc, err := mconnOver(sc, n.run.o, s9Channels(), onReceive, onError)
	if err != nil {
		return err
	}
	close(ready)
	n.mu.Lock()
	n.peers = append(n.peers, mc)
	n.mu.Unlock()
	return nil
}

// accept completes the handshake of every inbound connection.
func (n *s9Node) accept(failed chan<- error) {
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			sc, err := secure(c, n.key)
			if err == nil {
				err = n.add(sc)
			}
			if err != nil {
				failed <- fmt.Errorf("accepting: %w", err)
			}
		}()
	}
}

// dial connects n to the node listening at addr.
func (n *s9Node) dial(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	sc, err := secure(c, n.key)
	if err != nil {
		return err
	}
	return n.add(sc)
}

func (n *s9Node) peerCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.peers)
}

// mesh starts o.nodes nodes and connects every pair (each node dials the
// ones started before it, dialParallel handshakes at a time).
func (r *s9State) mesh() ([]*s9Node, error) {
	if r.o.nodes < 2 {
		return nil, fmt.Errorf("-nodes: need at least 2, got %d", r.o.nodes)
	}
	nodes := make([]*s9Node, r.o.nodes)
	failed := make(chan error, r.o.nodes*r.o.nodes)
	for i := range nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		nodes[i] = &s9Node{run: r, key: nodeKey(), ln: ln, answers: make(chan uint64, 4)}
		go nodes[i].accept(failed)
	}
	sem := make(chan struct{}, dialParallel)
	for i := range nodes {
		for j := 0; j < i; j++ {
			sem <- struct{}{}
			go func(a, b *s9Node) {
				defer func() { <-sem }()
				if err := a.dial(b.ln.Addr().String()); err != nil {
					failed <- fmt.Errorf("dialling: %w", err)
				}
			}(nodes[i], nodes[j])
		}
	}
	deadline := time.Now().Add(s9MeshTimeout)
	for _, n := range nodes {
		for n.peerCount() < len(nodes)-1 {
			select {
			case err := <-failed:
				return nil, err
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("the mesh was not complete within %v", s9MeshTimeout)
			}
		}
	}
	for _, n := range nodes {
		n.ln.Close()
	}
	return nodes, nil
}
