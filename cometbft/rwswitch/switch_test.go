package rwswitch

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
)

// Two ringwire switches: a dial adds the peer on both sides in stock's order (InitPeer before
// AddPeer, the peer running at AddPeer), with the peer's real NodeInfo, address and direction;
// envelopes go both ways (Send, TrySend, BroadcastAsync, TryBroadcast), wrapped on the way out,
// unwrapped on the way in, in order; a slow reactor holds up only its own channel; a message
// that does not decode stops the peer with the reason; stopping a peer removes it on both
// sides.
func TestTwoRingwireSwitches(t *testing.T) {
	ra, rb := newRecorder("A", testChannel, slowChannel), newRecorder("B", testChannel, slowChannel)
	a := newTestSwitch(t, "alpha", map[string]p2p.Reactor{"REC": ra})
	b := newTestSwitch(t, "beta", map[string]p2p.Reactor{"REC": rb})
	idA, idB := a.NodeInfo().ID(), b.NodeInfo().ID()

	if err := a.DialPeerWithAddress(b.NetAddress()); err != nil {
		t.Fatalf("dial: %v", err)
	}
	// DialPeerWithAddress returns once the peer is added.
	if !a.Peers().Has(idB) {
		t.Fatal("the dialed peer is not in the peer set when the dial returns")
	}
	var dialErr p2p.ErrCurrentlyDialingOrExistingAddress
	if err := a.DialPeerWithAddress(b.NetAddress()); err == nil || !errorsAs(err, &dialErr) {
		t.Fatalf("dialing a connected peer again: %v, want ErrCurrentlyDialingOrExistingAddress", err)
	}
	pb := peerOf(t, a, idB)
	pa := peerOf(t, b, idA)
	eventually(t, 5*time.Second, "AddPeer on both sides", func() bool {
		return len(ra.eventsOf(idB)) == 2 && len(rb.eventsOf(idA)) == 2
	})
	for _, c := range []struct {
		r    *recorder
		peer p2p.ID
	}{{ra, idB}, {rb, idA}} {
		if got := c.r.eventsOf(c.peer); !slices.Equal(got, []string{"init", "add"}) {
			t.Errorf("%s saw %v for %s, want [init add]", c.r.name, got, c.peer)
		}
		c.r.mu.Lock()
		running, data := c.r.started[c.peer], c.r.inits[c.peer]["recorder"]
		c.r.mu.Unlock()
		if !running || data != c.r.name {
			t.Errorf("%s: peer running at AddPeer %v, data set in InitPeer %v", c.r.name, running, data)
		}
	}

	// What a peer says about itself.
	if !pb.IsOutbound() || pa.IsOutbound() {
		t.Errorf("directions: a sees %v, b sees %v; want outbound, inbound", pb.IsOutbound(), pa.IsOutbound())
	}
	ni, ok := pb.NodeInfo().(p2p.DefaultNodeInfo)
	if !ok || ni.Moniker != "beta" || ni.Network != testNetwork || ni.ID() != idB || ni.Version != "0.40.0-ringwire-test" {
		t.Errorf("a's view of b's NodeInfo: %+v", pb.NodeInfo())
	}
	if !ni.HasChannel(testChannel) || !ni.HasChannel(slowChannel) {
		t.Errorf("b's NodeInfo lacks the reactor's channels: %x", ni.Channels)
	}
	if got, want := pb.SocketAddr().String(), b.NetAddress().String(); got != want {
		t.Errorf("a's peer b is at %s, want %s (the dialed address)", got, want)
	}
	if pb.RemoteIP().String() != "127.0.0.1" || !strings.HasPrefix(pb.RemoteAddr().String(), "127.0.0.1:") {
		t.Errorf("remote IP %v, address %v", pb.RemoteIP(), pb.RemoteAddr())
	}
	if rp, ok := pb.(*peer); !ok || !rp.IsNative() {
		t.Errorf("two ringwire switches should talk ringwire's native protocol (peer %v)", pb)
	}
	if pb.IsPersistent() {
		t.Error("a peer that was not configured as persistent says it is")
	}
	if st := pb.Status(); len(st.Channels) != 2 || st.Duration <= 0 {
		t.Errorf("status %+v", st)
	}
	if out, in, dialing := a.NumPeers(); out != 1 || in != 0 || dialing != 0 {
		t.Errorf("a.NumPeers = %d out, %d in, %d dialing; want 1, 0, 0", out, in, dialing)
	}
	if out, in, _ := b.NumPeers(); out != 0 || in != 1 {
		t.Errorf("b.NumPeers = %d out, %d in; want 0, 1", out, in)
	}

	// a to b: 200 envelopes in order, with Send and TrySend; b to a likewise.
	const n = 200
	for i := range n {
		e := p2p.Envelope{ChannelID: testChannel, Message: txs(fmt.Sprintf("a%d", i))}
		if i%2 == 0 {
			if !pb.Send(e) {
				t.Fatalf("Send %d failed", i)
			}
		} else {
			for !pb.TrySend(e) {
				time.Sleep(time.Millisecond)
			}
		}
		if !pa.Send(p2p.Envelope{ChannelID: testChannel, Message: txs(fmt.Sprintf("b%d", i))}) {
			t.Fatalf("Send %d from b failed", i)
		}
	}
	eventually(t, 10*time.Second, "all envelopes", func() bool {
		return len(rb.received(testChannel)) == n && len(ra.received(testChannel)) == n
	})
	for i, e := range rb.received(testChannel) {
		if got := texts(t, e); len(got) != 1 || got[0] != fmt.Sprintf("a%d", i) || e.Src.ID() != idA || e.ChannelID != testChannel {
			t.Fatalf("b's envelope %d: %v from %s on %#x", i, got, e.Src.ID(), e.ChannelID)
		}
	}
	for i, e := range ra.received(testChannel) {
		if got := texts(t, e); got[0] != fmt.Sprintf("b%d", i) || e.Src.ID() != idB {
			t.Fatalf("a's envelope %d: %v from %s", i, got, e.Src.ID())
		}
	}

	// Broadcasts reach the peer.
	b.BroadcastAsync(p2p.Envelope{ChannelID: testChannel, Message: txs("broadcast")})
	b.TryBroadcast(p2p.Envelope{ChannelID: testChannel, Message: txs("try-broadcast")})
	eventually(t, 10*time.Second, "broadcasts", func() bool { return len(ra.received(testChannel)) == n+2 })
	var got []string
	for _, e := range ra.received(testChannel)[n:] {
		got = append(got, texts(t, e)...)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"broadcast", "try-broadcast"}) {
		t.Errorf("broadcasts received: %v", got)
	}

	// A reactor that does not return from Receive on slowChannel holds up only that channel.
	rel := make(chan struct{})
	rb.mu.Lock()
	rb.release = rel
	rb.mu.Unlock()
	pb.Send(p2p.Envelope{ChannelID: slowChannel, Message: txs("slow-1")})
	pb.Send(p2p.Envelope{ChannelID: slowChannel, Message: txs("slow-2")})
	for i := range 10 {
		pb.Send(p2p.Envelope{ChannelID: testChannel, Message: txs(fmt.Sprintf("fast%d", i))})
	}
	eventually(t, 10*time.Second, "the other channel while one reactor call blocks", func() bool {
		return len(rb.received(testChannel)) == n+10
	})
	if len(rb.received(slowChannel)) != 0 {
		t.Fatal("the blocked channel delivered")
	}
	close(rel)
	eventually(t, 10*time.Second, "the blocked channel after release", func() bool { return len(rb.received(slowChannel)) == 2 })
	if s := rb.received(slowChannel); texts(t, s[0])[0] != "slow-1" || texts(t, s[1])[0] != "slow-2" {
		t.Errorf("slow channel order: %v, %v", texts(t, s[0]), texts(t, s[1]))
	}

	// Bytes that are not the channel's message type stop the sender on the receiving side,
	// with the decode error as the reason; both sides remove the peer.
	if !pb.(*peer).sendBytes(testChannel, []byte{0xff, 0xff, 0xff}, true, "garbage") {
		t.Fatal("sending raw bytes failed")
	}
	eventually(t, 10*time.Second, "the peer stopped for a decode error", func() bool {
		_, ok := rb.removal(idA)
		return ok
	})
	reason, _ := rb.removal(idA)
	if err, ok := reason.(error); !ok || !strings.Contains(err.Error(), "unmarshaling message") {
		t.Errorf("RemovePeer reason %v, want the decode error", reason)
	}
	if pa.IsRunning() || b.Peers().Has(idA) {
		t.Error("b still runs the peer that sent garbage")
	}
	eventually(t, 10*time.Second, "a removes b after the disconnect", func() bool {
		_, ok := ra.removal(idB)
		return ok && !a.Peers().Has(idB)
	})
	if got := ra.eventsOf(idB); !slices.Equal(got, []string{"init", "add", "remove"}) {
		t.Errorf("a saw %v for b, want [init add remove]", got)
	}
	if pb.Send(p2p.Envelope{ChannelID: testChannel, Message: txs("late")}) {
		t.Error("Send to a stopped peer succeeded")
	}

	// Dial again, then stop gracefully: RemovePeer with no reason on the stopping side.
	if err := b.DialPeerWithAddress(a.NetAddress()); err != nil {
		t.Fatalf("redial: %v", err)
	}
	pa2 := peerOf(t, b, idA)
	if !pa2.IsOutbound() {
		t.Error("b dialed a: the peer should be outbound")
	}
	eventually(t, 5*time.Second, "a adds b again", func() bool { return a.Peers().Has(idB) })
	b.StopPeerGracefully(pa2)
	if reason, ok := rb.removal(idA); !ok || reason != nil {
		t.Errorf("graceful stop: RemovePeer reason %v (called %v), want nil", reason, ok)
	}
	eventually(t, 10*time.Second, "a removes b after the graceful stop", func() bool { return !a.Peers().Has(idB) })

	a.MarkPeerAsGood(pb)
	if a.TimesMarkedGood(idB) != 1 {
		t.Error("MarkPeerAsGood not recorded")
	}
}

// Persistent, unconditional and private peer IDs are kept as stock keeps them; bad input is
// refused as stock refuses it.
func TestPeerLists(t *testing.T) {
	sw := newTestSwitch(t, "lists", nil)
	id := "0123456789abcdef0123456789abcdef01234567"
	if err := sw.AddPersistentPeers([]string{id + "@127.0.0.1:26656"}); err != nil {
		t.Fatal(err)
	}
	na, _ := p2p.NewNetAddressString(id + "@127.0.0.1:26656")
	other, _ := p2p.NewNetAddressString(id + "@127.0.0.1:26657")
	if !sw.IsPeerPersistent(na) || sw.IsPeerPersistent(other) {
		t.Error("IsPeerPersistent")
	}
	if err := sw.AddPersistentPeers([]string{"not-an-address"}); err == nil {
		t.Error("a bad persistent peer address was accepted")
	}
	if err := sw.AddUnconditionalPeerIDs([]string{id}); err != nil || !sw.IsPeerUnconditional(p2p.ID(id)) {
		t.Errorf("unconditional: %v", err)
	}
	if err := sw.AddUnconditionalPeerIDs([]string{"xyz"}); err == nil {
		t.Error("a bad unconditional ID was accepted")
	}
	if err := sw.AddPrivatePeerIDs([]string{id}); err != nil || !sw.IsPeerPrivate(p2p.ID(id)) {
		t.Errorf("private: %v", err)
	}
	if err := sw.AddPrivatePeerIDs([]string{"abcd"}); err == nil {
		t.Error("a bad private ID was accepted")
	}
	if err := sw.DialPeersAsync([]string{"nonsense"}); err == nil {
		t.Error("DialPeersAsync accepted a bad address")
	}
	if sw.MaxNumOutboundPeers() != 10 {
		t.Errorf("MaxNumOutboundPeers = %d, want stock's default 10", sw.MaxNumOutboundPeers())
	}
}

// A peer filter that refuses a peer keeps it from the reactors and closes its connection.
func TestPeerFilterRefuses(t *testing.T) {
	ra, rb := newRecorder("A", testChannel), newRecorder("B", testChannel)
	refused := make(chan p2p.ID, 1)
	a := newTestSwitch(t, "filtering", map[string]p2p.Reactor{"REC": ra}, func(c *Config) {
		c.PeerFilters = []p2p.PeerFilterFunc{func(_ p2p.IPeerSet, p p2p.Peer) error {
			refused <- p.ID()
			return fmt.Errorf("not welcome")
		}}
	})
	b := newTestSwitch(t, "refused", map[string]p2p.Reactor{"REC": rb})
	_ = b.DialPeerWithAddress(a.NetAddress())
	select {
	case id := <-refused:
		if id != b.NodeInfo().ID() {
			t.Errorf("the filter saw %s", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the filter never ran")
	}
	eventually(t, 10*time.Second, "the refused peer disconnected", func() bool {
		n, _ := b.Node().PeerCount()
		return n == 0 && !b.Peers().Has(a.NodeInfo().ID())
	})
	if ev := ra.eventsOf(b.NodeInfo().ID()); len(ev) != 0 {
		t.Errorf("the filtering side's reactor saw %v", ev)
	}
}

// When the engine reports dropped peer events, the switch compares its peers with the
// engine's: a peer whose up event it missed is added.
func TestResyncAfterLostEvents(t *testing.T) {
	ra := newRecorder("A", testChannel)
	a := newTestSwitch(t, "resync", map[string]p2p.Reactor{"REC": ra})
	rb := newRecorder("B", testChannel)
	b := newTestSwitch(t, "other", map[string]p2p.Reactor{"REC": rb})
	if err := a.DialPeerWithAddress(b.NetAddress()); err != nil {
		t.Fatal(err)
	}
	idB := b.NodeInfo().ID()
	// Forget the peer as if its up event had been lost: out of the set, not disconnected.
	p := a.Peers().Get(idB).(*peer)
	p.gone.Store(true)
	a.stopAndRemovePeer(p, nil)
	if a.Peers().Has(idB) {
		t.Fatal("the peer is still in the set")
	}
	if n, _ := a.Node().PeerCount(); n != 1 {
		t.Fatalf("the engine has %d peers, want the connection kept", n)
	}
	a.lagged.Add(1) // the engine's count (0) now differs from the one last seen
	a.resyncIfLagged()
	if !a.Peers().Has(idB) {
		t.Fatal("resynchronising did not add the engine's peer")
	}
	if got := ra.eventsOf(idB); !slices.Equal(got, []string{"init", "add", "remove", "init", "add"}) {
		t.Errorf("reactor saw %v", got)
	}
	if !a.Peers().Get(idB).Send(p2p.Envelope{ChannelID: testChannel, Message: txs("after")}) {
		t.Fatal("the resynchronised peer cannot send")
	}
	eventually(t, 10*time.Second, "the message sent after resynchronising", func() bool {
		return len(rb.received(testChannel)) == 1
	})
}
