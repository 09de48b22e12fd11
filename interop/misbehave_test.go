package interop

import (
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
)

// badFrames are stock-framed violations written over a real stock SecretConnection after a
// valid NodeInfo exchange, each with the full text of the error stock's MConnection stops with
// (p2p/conn/connection.go, libs/protoio/reader.go). Garbage before or during the handshake is
// covered by engine/tests/node_garbage.rs.
var badFrames = []struct {
	name   string
	reason string
	write  func(t *testing.T, rc *rawClient)
}{
	{
		// One PacketMsg with 2,000 payload bytes: over the 1024-byte-payload packet limit.
		name: "oversize packet", reason: "message exceeds max size (2010 > 1034)",
		write: func(t *testing.T, rc *rawClient) { rc.writeMsg(t, 0x20, payload(2000, 1), 2000) },
	},
	{
		name: "unknown channel", reason: "unknown channel 99",
		write: func(t *testing.T, rc *rawClient) { rc.writeMsg(t, 0x99, payload(10, 1), 1024) },
	},
	{
		// 2,048 bytes in stock-sized chunks on a channel whose receive cap is 1,024.
		name: "message over the channel cap", reason: "received message exceeds available capacity: 1024 < 2048",
		write: func(t *testing.T, rc *rawClient) { rc.writeMsg(t, 0x20, payload(2048, 1), 1024) },
	},
}

// smallCap is channel 0x20 with a 1,024-byte receive cap, on both sides.
var smallCap = chanSpec{0x20, 6, 100, 1024}

// TestMisbehavingPeerStockReference: what stock itself says for each bad frame.
func TestMisbehavingPeerStockReference(t *testing.T) {
	for _, bf := range badFrames {
		t.Run(bf.name, func(t *testing.T) {
			r := newRawReactor([]chanSpec{smallCap})
			st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
			rc := dialRaw(t, st.addr.DialString(), []byte{0x20})
			r.waitUp(t, 10*time.Second)
			bf.write(t, rc)
			d := r.waitDown(t, 10*time.Second)
			if d.id != rc.ID || !strings.Contains(errText(d.reason), bf.reason) {
				t.Fatalf("stock dropped %s for %v; want %q", d.id, d.reason, bf.reason)
			}
			t.Logf("stock: %v", d.reason)
			rc.expectClosed(t, 5*time.Second)
		})
	}
}

// TestMisbehavingPeerDroppedByRingwire: ringwire drops a stock-framed peer for each bad
// frame with stock's reason, and keeps serving a well-behaved stock peer meanwhile.
func TestMisbehavingPeerDroppedByRingwire(t *testing.T) {
	rw := startPeer(t, "--channel", "20:1024")
	r := newRawReactor([]chanSpec{smallCap})
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
	st.dial(t, rw)
	good := r.waitUp(t, 10*time.Second)
	rw.expect("peer-up "+string(st.key.ID()), 10*time.Second)

	for i, bf := range badFrames {
		rc := dialRaw(t, rw.Addr, []byte{0x20})
		rw.expect("peer-up "+string(rc.ID), 10*time.Second)
		bf.write(t, rc)
		down := rw.expect("peer-down "+string(rc.ID), 10*time.Second)
		if !strings.Contains(down, bf.reason) {
			t.Fatalf("%s: ringwire said %q; stock says %q", bf.name, down, bf.reason)
		}
		t.Logf("ringwire: %s", down)
		rc.expectClosed(t, 5*time.Second)

		// The honest stock peer is still served, both ways.
		if !good.Send(p2p.Envelope{ChannelID: 0x20, Message: &rawMsg{B: payload(100, uint32(i))}}) {
			t.Fatal("stock send failed")
		}
		if got := <-rw.recvs; !strings.HasSuffix(got, digest(payload(100, uint32(i)))) {
			t.Fatalf("ringwire got %s", got)
		}
		rw.cmdLine("send %s 20 100 %d", st.key.ID(), i)
		deadline := time.Now().Add(5 * time.Second)
		for len(r.received(0x20)) <= i {
			if time.Now().After(deadline) {
				t.Fatal("the honest stock peer received nothing")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {
	case d := <-r.down:
		t.Fatalf("stock dropped ringwire: %v", d.reason)
	default:
	}
}
