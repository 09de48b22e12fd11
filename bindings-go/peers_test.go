package ringwire

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// A peer's ID, direction, protocol, address and NodeInfo are readable, and the NodeInfo says
// what the peer's NodeInfoSettings set.
func TestPeerInfoAndNodeInfoSettings(t *testing.T) {
	a, err := NewNode(Config{
		Seed:    bytes.Repeat([]byte{1}, 32),
		Network: "go-test",
		Listen:  "127.0.0.1:0",
		Shards:  1,
		NodeInfo: &NodeInfoSettings{
			Moniker:     "alpha",
			Version:     "0.40.0",
			AppProtocol: 7,
			TxIndex:     "on",
			RPCAddress:  "tcp://0.0.0.0:26657",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, 2)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	addr, _ := a.ListenAddr()
	ida, err := b.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := b.Peers()
	if err != nil || len(ids) != 1 || ids[0] != ida {
		t.Fatalf("Peers = %v, %v; want [%v]", ids, err, ida)
	}
	info, err := b.PeerInfo(ida)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != ida || !info.Outbound || !info.Native || info.RemoteAddr != addr {
		t.Fatalf("PeerInfo = %+v; want %v, outbound, native, %s", info, ida, addr)
	}
	for _, want := range []string{"alpha", "0.40.0", "go-test", "tcp://0.0.0.0:26657"} {
		if !bytes.Contains(info.NodeInfo, []byte(want)) {
			t.Errorf("the peer's NodeInfo lacks %q", want)
		}
	}
	idb, _ := b.ID()
	// The listening side has the peer up a moment after the dial returns.
	deadline := time.Now().Add(10 * time.Second)
	for c, _ := a.PeerCount(); c < 1 && time.Now().Before(deadline); c, _ = a.PeerCount() {
		time.Sleep(5 * time.Millisecond)
	}
	back, err := a.PeerInfo(idb)
	if err != nil || back.Outbound || !bytes.Contains(back.NodeInfo, []byte("ringwire")) {
		t.Fatalf("the inbound side: %+v, %v", back, err)
	}
	if _, err := a.PeerInfo(NodeID{7}); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("an unknown peer: %v, want ErrPeerGone", err)
	}
	if _, err := NewNode(Config{Seed: bytes.Repeat([]byte{3}, 32), NodeInfo: &NodeInfoSettings{TxIndex: "maybe"}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a bad tx_index: %v, want ErrInvalidArgument", err)
	}
}

// A compressed channel carries messages like any other.
func TestCompressedChannel(t *testing.T) {
	_, _, ca, cb, _, idb := pairDesc(t, ChannelDesc{ID: 0x41, Compress: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := bytes.Repeat([]byte("compressible "), 20000)
	if err := ca.Send(ctx, idb, msg); err != nil {
		t.Fatal(err)
	}
	for m, err := range cb.ReceiveCopy(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Payload, msg) {
			t.Fatalf("got %d bytes, want %d", len(m.Payload), len(msg))
		}
		break
	}
}

// Events yields up and down events as they come, a down event with its reason, and ends with
// the context's error.
func TestEventsIteratorWithReasons(t *testing.T) {
	a, b := startNode(t, 5), startNode(t, 6)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	ida, _ := a.ID()
	idb, _ := b.ID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, _ := a.ListenAddr()
	go func() {
		if _, err := b.Dial(addr, nil); err == nil {
			time.Sleep(50 * time.Millisecond)
			_ = b.Disconnect(ida)
		}
	}()
	var seen []PeerEvent
	for e, err := range a.Events(ctx) {
		if err != nil {
			t.Fatalf("after %+v: %v", seen, err)
		}
		seen = append(seen, e)
		if e.Kind == PeerDown {
			break
		}
	}
	if len(seen) != 2 || seen[0].Kind != PeerUp || seen[0].Peer != idb || seen[1].Peer != idb || seen[1].Reason == "" {
		t.Fatalf("events %+v; want up then down of %v with a reason", seen, idb)
	}
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	start := time.Now()
	for _, err := range a.Events(short) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a quiet node's events end with the context: %v", err)
		}
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the iterator took %v to see its context end", time.Since(start))
	}
}

// A persistent peer is dialled without a Dial call; a malformed one is refused.
func TestPersistentPeersFromConfig(t *testing.T) {
	target := startNode(t, 7)
	t.Cleanup(func() { _ = target.Close() })
	id, _ := target.ID()
	addr, _ := target.ListenAddr()
	n, err := NewNode(Config{
		Seed:                 bytes.Repeat([]byte{8}, 32),
		Network:              "go-test",
		Shards:               1,
		PersistentPeers:      []string{id.String() + "@" + addr},
		UnconditionalPeerIDs: []NodeID{id},
		PrivatePeerIDs:       []NodeID{id},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for c, _ := n.PeerCount(); c < 1; c, _ = n.PeerCount() {
		if time.Now().After(deadline) {
			t.Fatal("the persistent peer was never dialled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := NewNode(Config{Seed: bytes.Repeat([]byte{9}, 32), PersistentPeers: []string{"nope"}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a malformed persistent peer: %v, want ErrInvalidArgument", err)
	}
}

// Channels of Config.Channels are known to connections made before they are opened: two nodes
// connect first, open the channel afterwards, and messages flow. TrySend never waits: towards a
// peer that does not drain, it fails with ErrFull once the queue is full, at once.
func TestConfigChannelsAndTrySend(t *testing.T) {
	desc := ChannelDesc{ID: 0x42, Priority: 3, SendQueueCapacity: 1, RecvMessageCapacity: 1 << 16}
	start := func(seed byte) *Node {
		n, err := NewNode(Config{
			Seed:     bytes.Repeat([]byte{seed}, 32),
			Network:  "go-test",
			Listen:   "127.0.0.1:0",
			Shards:   1,
			Channels: []ChannelDesc{desc},
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b := start(11), start(12)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	addr, _ := b.ListenAddr()
	idb, err := a.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenChannel(ChannelDesc{ID: 0x42, Priority: 4, SendQueueCapacity: 1, RecvMessageCapacity: 1 << 16}); !errors.Is(err, ErrChannel) {
		t.Fatalf("opening with other options than the config's: %v, want ErrChannel", err)
	}
	ca, err := a.OpenChannel(desc)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.OpenChannel(desc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ca.Close(); _ = cb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ca.Send(ctx, idb, []byte("first")); err != nil {
		t.Fatalf("a channel opened after the connection: %v", err)
	}
	for m, err := range cb.ReceiveCopy(ctx) {
		if err != nil || string(m.Payload) != "first" {
			t.Fatalf("received %q, %v", m.Payload, err)
		}
		break
	}
	// b stops receiving: a's queue (one message) and the link's buffers fill up.
	msg := bytes.Repeat([]byte{9}, 60000)
	full := false
	for i := 0; i < 10000 && !full; i++ {
		t0 := time.Now()
		err := ca.TrySend(idb, msg)
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("TrySend waited %v", d)
		}
		switch {
		case errors.Is(err, ErrFull):
			full = true
		case err != nil:
			t.Fatalf("TrySend: %v", err)
		}
	}
	if !full {
		t.Fatal("TrySend never reported a full queue towards a peer that does not drain")
	}
	if err := ca.TrySend(NodeID{7}, msg); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("TrySend to an unknown peer: %v, want ErrPeerGone", err)
	}
}
