package interop

import (
	"strings"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
	"github.com/cosmos/gogoproto/proto"
)

// TestPrivatePeersNeverReachStock: a ringwire node with `private_peer_ids` naming two
// ringwire nodes, both connected to it (one dialed it, it dialed the other) and both in its
// address book, answers stock's PEX requests with the public node it knows and never with
// a private one: not to stock's PEX reactor (its address book learns the public node only),
// not to a raw stock requester reading the answer itself. The same in seed mode, whose
// answers are its own path.
func TestPrivatePeersNeverReachStock(t *testing.T) {
	for _, seedMode := range []bool{false, true} {
		name := "regular"
		if seedMode {
			name = "seed mode"
		}
		t.Run(name, func(t *testing.T) { privatePeersNeverReachStock(t, seedMode) })
	}
}

func privatePeersNeverReachStock(t *testing.T, seedMode bool) {
	inbound := startPeer(t, "--seed", "51", "--pex", "--channel", "20")
	outbound := startPeer(t, "--seed", "52", "--pex", "--channel", "20")
	public := startPeer(t, "--seed", "53", "--pex", "--channel", "20")
	home := rwHome(t, func(p *cfg.P2PConfig) {
		p.PrivatePeerIDs = inbound.ID + "," + outbound.ID
		p.SeedMode = seedMode
	})
	rw := startPeer(t, "--home", home, "--channel", "20")
	inbound.cmdLine("dial %s", rw.target())
	inbound.expect("dialed "+rw.ID, 10*time.Second)
	public.cmdLine("dial %s", rw.target())
	public.expect("dialed "+rw.ID, 10*time.Second)
	rw.cmdLine("dial %s", outbound.target())
	rw.expect("dialed "+outbound.ID, 10*time.Second)
	// All three are in its book, the private ones as they announced themselves.
	waitFor(t, "the node's book holds all three", 10*time.Second, func() bool {
		rw.cmdLine("pex-addrs")
		got := rw.expect("pex-addrs", 5*time.Second)
		return strings.Contains(got, inbound.target()) && strings.Contains(got, outbound.target()) &&
			strings.Contains(got, public.target())
	})
	private := []string{inbound.ID, outbound.ID}

	// Stock's PEX reactor dials it and asks (stock asks a new outbound peer).
	st, book, _ := stockPex(t)
	st.dial(t, rw)
	waitFor(t, "stock's book learns the public node", 10*time.Second, func() bool {
		return book.HasAddress(netAddr(t, public.target()))
	})
	for _, p := range []*rwPeer{inbound, outbound} {
		if book.HasAddress(netAddr(t, p.target())) {
			t.Fatalf("stock's address book learned private peer %s", p.target())
		}
	}

	// A raw stock requester reads the answer itself.
	rc := dialRaw(t, rw.Addr, []byte{0x00, 0x20})
	rc.writeMsg(t, 0x00, pexRequest(t), 1024)
	for {
		ch, msg, err := rc.readMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		var m tmp2p.Message
		if ch != 0x00 || proto.Unmarshal(msg, &m) != nil || m.GetPexAddrs() == nil {
			continue
		}
		var ids []string
		for _, a := range m.GetPexAddrs().Addrs {
			ids = append(ids, a.ID)
		}
		all := strings.Join(ids, " ")
		if !strings.Contains(all, public.ID) {
			t.Fatalf("the answer lacks the public node: %v", ids)
		}
		for _, id := range private {
			if strings.Contains(all, id) {
				t.Fatalf("the answer names private peer %s: %v", id, ids)
			}
		}
		break
	}
	// The private peers are still connected: they were kept, only never told of.
	rw.cmdLine("peers")
	line := rw.expect("peers", 5*time.Second)
	if !seedMode {
		for _, id := range private {
			if !strings.Contains(line, id) {
				t.Fatalf("private peer %s is no longer connected: %s", id, line)
			}
		}
	}
}
