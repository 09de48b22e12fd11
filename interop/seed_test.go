package interop

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/pex"
)

// Seeds both ways: a stock seed node (stock's switch and PEX reactor in seed mode) seeds a
// ringwire node that knows nothing but `seeds`, and a ringwire node in `seed_mode` seeds a
// stock node that knows nothing but its seed. In each case the seeded node learns peers it
// knew nothing of and connects to them.

// rwHome writes a CometBFT home with stock's config.toml (loopback laddr, a lax address book
// and duplicate IPs allowed, as every node here shares 127.0.0.1), edited by edit, and a node
// key; the ringwire peer started with --home builds its node from it as `ringwire node` does.
func rwHome(t *testing.T, edit func(*cfg.P2PConfig)) string {
	t.Helper()
	home := t.TempDir()
	cfg.EnsureRoot(home)
	conf := cfg.DefaultConfig()
	conf.SetRoot(home)
	conf.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	conf.P2P.AddrBookStrict = false
	conf.P2P.AllowDuplicateIP = true
	if edit != nil {
		edit(conf.P2P)
	}
	cfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), conf)
	if _, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile()); err != nil {
		t.Fatal(err)
	}
	return home
}

// rawStock is a stock node with only a raw reactor on 0x20 (no PEX): a peer that can be
// found only through someone else's address book.
func rawStock(t *testing.T) (*stockNode, *rawReactor) {
	t.Helper()
	r := newRawReactor(stockChannelSpecs[1:2])
	return startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r}), r
}

// netAddr parses id@ip:port.
func netAddr(t *testing.T, target string) *p2p.NetAddress {
	t.Helper()
	a, err := p2p.NewNetAddressString(target)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitFor polls cond every 20 ms until it holds, failing after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOutbound waits for the ringwire peer's peer-up lines of every id in want, each as an
// outbound connection (other lines are logged and skipped).
func (p *rwPeer) waitOutbound(want []string, within time.Duration) {
	p.t.Helper()
	left := map[string]bool{}
	for _, id := range want {
		left[id] = true
	}
	deadline := time.Now().Add(within)
	for len(left) > 0 {
		line := p.expect("peer-up ", time.Until(deadline))
		f := strings.Fields(line)
		if len(f) == 4 && left[f[1]] && f[3] == "outbound" {
			delete(left, f[1])
		}
	}
}

// TestStockSeedSeedsRingwire: a stock PEX reactor in seed mode knows a stock node and a
// ringwire node (each dialed it once, and stock's seed keeps an inbound peer's address). A
// ringwire node whose config.toml names only that seed asks it for addresses, is let go, and
// dials both nodes it learned of: the stock node's switch sees it connect.
func TestStockSeedSeedsRingwire(t *testing.T) {
	seed, seedBook, _ := stockPexWith(t, pex.ReactorConfig{SeedMode: true})

	x, xRaw := rawStock(t)
	xAddr := netAddr(t, x.target())
	if err := x.sw.DialPeerWithAddress(netAddr(t, seed.target())); err != nil {
		t.Fatalf("stock node dialing the stock seed: %v", err)
	}
	y := startPeer(t, "--seed", "31", "--pex", "--channel", "20")
	yAddr := netAddr(t, y.target())
	y.cmdLine("dial %s", seed.target())
	y.expect("dialed "+string(seed.key.ID()), 10*time.Second)
	waitFor(t, "the stock seed's book holds both nodes", 10*time.Second, func() bool {
		return seedBook.HasAddress(xAddr) && seedBook.HasAddress(yAddr)
	})

	home := rwHome(t, func(p *cfg.P2PConfig) { p.Seeds = seed.target() })
	rw := startPeer(t, "--home", home, "--channel", "20")
	rw.waitOutbound([]string{string(x.key.ID()), y.ID}, 30*time.Second)
	// The stock node's own switch has the ringwire node as a peer, which it never dialed.
	waitFor(t, "the stock node's switch has the ringwire node", 10*time.Second, func() bool {
		return x.sw.Peers().Has(p2p.ID(rw.ID))
	})
	select {
	case d := <-xRaw.down:
		if d.id == p2p.ID(rw.ID) {
			t.Fatalf("the stock node dropped ringwire: %v", d.reason)
		}
	default:
	}
	// The seed let it go once it answered (stock's seed disconnects after its answer).
	waitFor(t, "the stock seed lets the ringwire node go", 15*time.Second, func() bool {
		return !seed.sw.Peers().Has(p2p.ID(rw.ID))
	})
}

// TestRingwireSeedSeedsStock: a ringwire node with `seed_mode = true` learns a stock node and
// a ringwire node as they dial it. A stock node whose PEX reactor has only that seed (stock's
// `Seeds`) dials it, is answered and let go, and connects to both nodes it knew nothing of.
func TestRingwireSeedSeedsStock(t *testing.T) {
	home := rwHome(t, func(p *cfg.P2PConfig) { p.SeedMode = true })
	rs := startPeer(t, "--home", home, "--channel", "20")

	x, _ := rawStock(t)
	xTarget := x.target()
	if err := x.sw.DialPeerWithAddress(netAddr(t, rs.target())); err != nil {
		t.Fatalf("stock node dialing the ringwire seed: %v", err)
	}
	y := startPeer(t, "--seed", "41", "--pex", "--channel", "20")
	y.cmdLine("dial %s", rs.target())
	y.expect("dialed "+rs.ID, 10*time.Second)
	waitFor(t, "the ringwire seed's book holds both nodes", 10*time.Second, func() bool {
		rs.cmdLine("pex-addrs")
		got := rs.expect("pex-addrs", 5*time.Second)
		return strings.Contains(got, xTarget) && strings.Contains(got, y.target())
	})

	st, book, _ := stockPexWith(t, pex.ReactorConfig{Seeds: []string{rs.target()}})
	waitFor(t, "the stock node connects to both nodes it learned from the ringwire seed",
		30*time.Second, func() bool {
			return st.sw.Peers().Has(x.key.ID()) && st.sw.Peers().Has(p2p.ID(y.ID))
		})
	if !book.HasAddress(netAddr(t, xTarget)) || !book.HasAddress(netAddr(t, y.target())) {
		t.Fatal("the stock node connected without the addresses in its book")
	}
	// The ringwire seed let the stock node go once it answered.
	waitFor(t, "the ringwire seed lets the stock node go", 15*time.Second, func() bool {
		return !st.sw.Peers().Has(p2p.ID(rs.ID))
	})
}
