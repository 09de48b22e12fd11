package interop

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/pex"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
	"github.com/cosmos/gogoproto/proto"
)

// Channel 0x00 policy: with PEX on, ringwire's 0x00 carries only stock PEX messages (the PEX
// service owns the channel); raw traffic on 0x00 runs with PEX off on both sides
// (TestTenChannelsBothWays).

// stockPex is a stock switch running stock's PEX reactor on a non-strict address book (the
// tests use loopback), plus a raw reactor on 0x20 that reports why peers were removed.
func stockPex(t *testing.T) (*stockNode, pex.AddrBook, *rawReactor) {
	t.Helper()
	return stockPexWith(t, pex.ReactorConfig{})
}

// stockPexWith is stockPex with the PEX reactor's configuration (seed mode, seeds).
func stockPexWith(t *testing.T, rc pex.ReactorConfig) (*stockNode, pex.AddrBook, *rawReactor) {
	t.Helper()
	book := pex.NewAddrBook(filepath.Join(t.TempDir(), "addrbook.json"), false)
	book.SetLogger(log.NewNopLogger())
	// Stopping the switch stops the book, whose save routine then writes addrbook.json once
	// more in the background: wait for it before the temporary directory is removed.
	// (Cleanups run last-registered first: this one after startStock's stop, before the
	// directory's removal.)
	w, ok := book.(interface{ Wait() })
	if !ok {
		t.Fatal("stock's address book has no Wait")
	}
	t.Cleanup(w.Wait)
	reactor := pex.NewReactor(book, &rc)
	reactor.SetLogger(log.NewNopLogger())
	raw := newRawReactor(stockChannelSpecs[1:2])
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"pex": reactor, "raw": raw})
	st.sw.SetAddrBook(book)
	return st, book, raw
}

func pexBytes(t *testing.T, m *tmp2p.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pexRequest(t *testing.T) []byte {
	return pexBytes(t, &tmp2p.Message{Sum: &tmp2p.Message_PexRequest{PexRequest: &tmp2p.PexRequest{}}})
}

// TestPexStockAsksRingwire: stock's PEX reactor dials ringwire A and asks it for addresses
// (stock asks new outbound peers); A answers with ringwire B's address, which it learned when
// it dialed B over the native protocol; stock's address book accepts it.
func TestPexStockAsksRingwire(t *testing.T) {
	a := startPeer(t, "--seed", "11", "--pex", "--channel", "20")
	b := startPeer(t, "--seed", "12", "--pex", "--channel", "20")
	a.cmdLine("dial %s", b.target())
	a.expect("dialed "+b.ID+" native", 10*time.Second)

	st, book, raw := stockPex(t)
	st.dial(t, a)
	bAddr, err := p2p.NewNetAddressString(b.target())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !book.HasAddress(bAddr) {
		if time.Now().After(deadline) {
			t.Fatalf("stock's address book never learned %s from ringwire", b.target())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case d := <-raw.down:
		if d.id == p2p.ID(a.ID) {
			t.Fatalf("stock dropped ringwire: %v", d.reason)
		}
	default:
	}
}

// TestPexRingwireAsksStock: ringwire dials a stock node running PEX, asks it for addresses
// (stock answers a first request), and learns the address stock's book holds.
func TestPexRingwireAsksStock(t *testing.T) {
	st, book, raw := stockPex(t)
	known := p2p.PubKeyToID(ed25519.GenPrivKey().PubKey())
	knownAddr, err := p2p.NewNetAddressString(fmt.Sprintf("%s@127.0.0.5:26656", known))
	if err != nil {
		t.Fatal(err)
	}
	if err := book.AddAddress(knownAddr, knownAddr); err != nil {
		t.Fatal(err)
	}
	a := startPeer(t, "--pex", "--channel", "20")
	a.cmdLine("dial %s", st.target())
	a.expect("dialed "+string(st.key.ID())+" compat", 10*time.Second)
	want := knownAddr.String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.cmdLine("pex-addrs")
		if got := a.expect("pex-addrs", 5*time.Second); strings.Contains(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ringwire never learned %s from stock", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case d := <-raw.down:
		t.Fatalf("stock dropped ringwire: %v", d.reason)
	default:
	}
}

// pexAbuse runs the abuse cases against a node at addr; down returns the reason the node
// gave for dropping the raw client.
func pexAbuse(t *testing.T, addr string, down func(id p2p.ID) string) {
	t.Run("too early request", func(t *testing.T) {
		rc := dialRaw(t, addr, []byte{0x00, 0x20})
		// Stock lets the first two requests through (the first stores the zero time, the
		// second starts the clock) and drops the third within 10 s.
		for i := range 2 {
			rc.writeMsg(t, 0x00, pexRequest(t), 1024)
			ch, msg, err := rc.readMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("request %d unanswered: %v", i+1, err)
			}
			var m tmp2p.Message
			if err := proto.Unmarshal(msg, &m); err != nil || ch != 0x00 || m.GetPexAddrs() == nil {
				t.Fatalf("answer %d on %#x is not PexAddrs: %v %v", i+1, ch, m.String(), err)
			}
		}
		rc.writeMsg(t, 0x00, pexRequest(t), 1024)
		rc.expectClosed(t, 5*time.Second)
		if r := down(rc.ID); !strings.Contains(r, "sent next PEX request too soon") {
			t.Fatalf("dropped for %q", r)
		}
	})
	t.Run("unsolicited addresses", func(t *testing.T) {
		rc := dialRaw(t, addr, []byte{0x00, 0x20})
		msg := pexBytes(t, &tmp2p.Message{Sum: &tmp2p.Message_PexAddrs{PexAddrs: &tmp2p.PexAddrs{
			Addrs: []tmp2p.NetAddress{{ID: string(rc.ID), IP: "127.0.0.9", Port: 26656}},
		}}})
		rc.writeMsg(t, 0x00, msg, 1024)
		rc.expectClosed(t, 5*time.Second)
		if r := down(rc.ID); !strings.Contains(r, "unsolicited pexAddrsMessage") {
			t.Fatalf("dropped for %q", r)
		}
	})
}

// TestPexAbuseStockReference: what stock's PEX reactor does with the abuse cases.
func TestPexAbuseStockReference(t *testing.T) {
	st, _, raw := stockPex(t)
	pexAbuse(t, st.addr.DialString(), func(id p2p.ID) string {
		for {
			d := raw.waitDown(t, 10*time.Second)
			if d.id == id {
				return errText(d.reason)
			}
		}
	})
}

// TestPexAbuseRingwire: ringwire answers the same cases as stock does.
func TestPexAbuseRingwire(t *testing.T) {
	rw := startPeer(t, "--pex", "--channel", "20")
	pexAbuse(t, rw.Addr, func(id p2p.ID) string {
		return rw.expect("peer-down "+string(id), 10*time.Second)
	})
}
