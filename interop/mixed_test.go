package interop

import (
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
)

// TestOnlyAdvertisedChannelsReachStock: ringwire (offering native) runs channels 0x20, 0x21,
// 0x77 and PEX; the stock peer advertises only 0x20. Sends on 0x21 and 0x77 are refused
// locally, PEX asks the outbound stock peer nothing (it has no 0x00), and the stock peer —
// which drops a connection on any unknown channel or undecodable packet — stays connected and
// receives 0x20. A proxy between them counts what ringwire sent: the 35-byte ephemeral key
// message and then only whole 1044-byte SecretConnection frames (a native record has another
// size), so not one native byte reached the stock peer.
func TestOnlyAdvertisedChannelsReachStock(t *testing.T) {
	rw := startPeer(t, "--channel", "20", "--channel", "21", "--channel", "77", "--pex")
	r := newRawReactor(stockChannelSpecs[1:2])
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
	px := startProxy(t, st.addr.DialString())
	rw.cmdLine("dial %s@%s", st.key.ID(), px.Addr)
	rw.expect("dialed "+string(st.key.ID())+" compat", 10*time.Second)
	r.waitUp(t, 10*time.Second)
	for _, ch := range []string{"21", "77"} {
		rw.cmdLine("send %s %s 10 1", st.key.ID(), ch)
		if got := rw.expect("send-err ", 5*time.Second); !strings.Contains(got, "does not accept channel 0x"+ch) {
			t.Fatalf("send on %s: %s", ch, got)
		}
	}
	rw.cmdLine("send %s 20 10 1", st.key.ID())
	deadline := time.Now().Add(5 * time.Second)
	for len(r.received(0x20)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("stock received nothing on 0x20")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case d := <-r.down:
		t.Fatalf("stock dropped ringwire: %v", d.reason)
	case <-time.After(500 * time.Millisecond):
	}
	rw.stop()
	select {
	case n := <-px.done:
		if n < 35+1044 || (n-35)%1044 != 0 {
			t.Fatalf("ringwire sent %d bytes to the stock peer: not 35 + whole 1044-byte frames", n)
		}
		t.Logf("ringwire sent 35 + %d × 1044 bytes", (n-35)/1044)
	case <-time.After(10 * time.Second):
		t.Fatal("the proxied connection did not close")
	}
}

// TestNativeAndCompatAtOnce: ringwire node A holds a native connection to ringwire node B and
// a compat connection to a stock node at the same time, and carries messages on both.
func TestNativeAndCompatAtOnce(t *testing.T) {
	a := startPeer(t, "--seed", "1", "--channel", "20")
	b := startPeer(t, "--seed", "2", "--channel", "20")
	b.cmdLine("dial %s", a.target())
	b.expect("dialed "+a.ID+" native", 10*time.Second)
	r := newRawReactor(stockChannelSpecs[1:2])
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
	st.dial(t, a)
	r.waitUp(t, 10*time.Second)
	a.expect("peer-up "+string(st.key.ID())+" compat inbound", 10*time.Second)

	a.cmdLine("peers")
	peers := a.expect("peers ", 5*time.Second)
	for _, want := range []string{b.ID + ":native:inbound", string(st.key.ID()) + ":compat:inbound"} {
		if !strings.Contains(peers, want) {
			t.Fatalf("A's peers %q lack %q", peers, want)
		}
	}
	a.cmdLine("send %s 20 5000 7", b.ID)
	a.cmdLine("send %s 20 5000 8", st.key.ID())
	if got := <-b.recvs; !strings.HasSuffix(got, digest(payload(5000, 7))) {
		t.Fatalf("B got %s", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.received(0x20)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("stock received nothing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := r.received(0x20)[0]; got.digest != digest(payload(5000, 8)) {
		t.Fatalf("stock got %v", got)
	}
}
