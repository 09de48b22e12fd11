package interop

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
)

// allChannelFlags are --channel flags for channels with their stock caps.
func channelFlags(specs []chanSpec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, "--channel", fmt.Sprintf("%02x:%d", s.id, s.recvCap))
	}
	return out
}

// checkStockSees checks the peer a stock switch accepted: the ringwire node ID and a
// NodeInfo stock validated, advertising ringwire's capability channel.
func checkStockSees(t *testing.T, p p2p.Peer, want string) {
	t.Helper()
	if string(p.ID()) != want {
		t.Fatalf("stock sees peer %s, want %s", p.ID(), want)
	}
	ni, ok := p.NodeInfo().(p2p.DefaultNodeInfo)
	if !ok {
		t.Fatalf("stock NodeInfo type %T", p.NodeInfo())
	}
	if err := ni.Validate(); err != nil {
		t.Fatalf("stock Validate: %v", err)
	}
	if !ni.HasChannel(capabilityChannel) {
		t.Fatalf("ringwire does not advertise %#x: %x", capabilityChannel, []byte(ni.Channels))
	}
}

// TestHandshakeStockDialsRingwire: a stock switch dials ringwire (which offers native and
// falls back to compat); both sides see the other's node ID.
func TestHandshakeStockDialsRingwire(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "node_key.json")
	key, err := p2p.LoadOrGenNodeKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	rw := startPeer(t, append([]string{"--node-key", keyPath}, channelFlags(stockChannelSpecs[1:3])...)...)
	if rw.ID != string(key.ID()) {
		t.Fatalf("ringwire reports ID %s for a key stock calls %s", rw.ID, key.ID())
	}
	r := newRawReactor(stockChannelSpecs[1:3])
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
	st.dial(t, rw)
	checkStockSees(t, r.waitUp(t, 10*time.Second), rw.ID)
	up := rw.expect("peer-up ", 10*time.Second)
	if want := fmt.Sprintf("peer-up %s compat inbound", st.key.ID()); up != want {
		t.Fatalf("ringwire: %q, want %q", up, want)
	}
}

// TestHandshakeRingwireDialsStock: ringwire dials a stock switch; the stock transport checks
// ringwire's NodeInfo, ringwire checks the dialed ID.
func TestHandshakeRingwireDialsStock(t *testing.T) {
	r := newRawReactor(stockChannelSpecs[1:3])
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
	rw := startPeer(t, channelFlags(stockChannelSpecs[1:3])...)
	rw.cmdLine("dial %s", st.target())
	if got, want := rw.expect("dialed ", 10*time.Second), "dialed "+string(st.key.ID())+" compat"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	checkStockSees(t, r.waitUp(t, 10*time.Second), rw.ID)

	// A dial that expects another ID fails in ringwire's handshake.
	other := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": newRawReactor(stockChannelSpecs[1:3])})
	wrong := string(st.key.ID()) + "@" + other.addr.DialString()
	rw.cmdLine("dial %s", wrong)
	if got := rw.expect("dial-err ", 10*time.Second); !strings.Contains(got, "authenticated as "+string(other.key.ID())) {
		t.Fatalf("dial to the wrong ID: %q", got)
	}
}

// TestRingwireFromStockHome: a CometBFT home written by stock code (config.toml with a
// loopback laddr, node_key.json) starts a ringwire node with stock's node ID, listening where
// config.toml says, running PEX as `[p2p] pex` says; a stock switch dialing that ID connects.
func TestRingwireFromStockHome(t *testing.T) {
	home := t.TempDir()
	cfg.EnsureRoot(home)
	conf := cfg.DefaultConfig()
	conf.SetRoot(home)
	port := freePort(t)
	conf.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	cfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), conf)
	nodeKey, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	rw := startPeer(t, "--home", home, "--channel", "20")
	if rw.ID != string(nodeKey.ID()) {
		t.Fatalf("ringwire from the stock home has ID %s, stock computes %s", rw.ID, nodeKey.ID())
	}
	if rw.Addr != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("ringwire listens on %s, config.toml says port %d", rw.Addr, port)
	}
	r := newRawReactor(stockChannelSpecs[1:2])
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
	st.dial(t, rw)
	peer := r.waitUp(t, 10*time.Second)
	checkStockSees(t, peer, string(nodeKey.ID()))
	// config.toml has pex = true (stock's default), so ringwire runs PEX on 0x00.
	if !peer.NodeInfo().(p2p.DefaultNodeInfo).HasChannel(0x00) {
		t.Fatal("ringwire from a stock home with pex = true does not advertise 0x00")
	}
}

// TestRingwireRejectsBadStockNodeInfo: ringwire applies stock's checks to the NodeInfo a
// stock-framed peer sends after a valid SecretConnection handshake: another network, no
// common channel, an empty moniker, more than 16 channels — each connection is closed and
// never reported up, while a valid one is.
func TestRingwireRejectsBadStockNodeInfo(t *testing.T) {
	rw := startPeer(t, "--channel", "20")
	bad := map[string]func(*p2p.DefaultNodeInfo){
		"other network":     func(ni *p2p.DefaultNodeInfo) { ni.Network = "other-chain" },
		"no common channel": func(ni *p2p.DefaultNodeInfo) { ni.Channels = []byte{0x21} },
		"empty moniker":     func(ni *p2p.DefaultNodeInfo) { ni.Moniker = "" },
		"17 channels": func(ni *p2p.DefaultNodeInfo) {
			ni.Channels = []byte{0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		},
	}
	for name, edit := range bad {
		t.Run(name, func(t *testing.T) {
			rc := dialRawWith(t, rw.Addr, []byte{0x20}, edit)
			rc.expectClosed(t, 5*time.Second)
		})
	}
	good := dialRaw(t, rw.Addr, []byte{0x20})
	up := rw.expect("peer-up ", 5*time.Second)
	if !strings.HasPrefix(up, "peer-up "+string(good.ID)) {
		t.Fatalf("a rejected peer came up: %s", up)
	}
}
