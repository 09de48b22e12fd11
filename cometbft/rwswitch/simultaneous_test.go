package rwswitch

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/version"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pexHome writes a CometBFT home listening on port, with PEX on and peers as persistent
// peers (the engine dials them), and returns the switch's configuration.
func pexHome(t *testing.T, name string, port int, key *p2p.NodeKey, peers string) Config {
	t.Helper()
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.SetRoot(home)
	cfg.Moniker = name
	cfg.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.AddrBookStrict = false
	cfg.P2P.PexReactor = true
	cfg.P2P.PersistentPeers = peers
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	config.WriteConfigFile(filepath.Join(home, "config", "config.toml"), cfg)
	if err := key.SaveAs(cfg.NodeKeyFile()); err != nil {
		t.Fatal(err)
	}
	return Config{
		Ringwire:    ringwire.Config{Home: home, Shards: 1},
		P2P:         cfg.P2P,
		EnginePeers: []string{peers},
		NodeInfo: p2p.DefaultNodeInfo{
			ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
			DefaultNodeID:   key.ID(),
			ListenAddr:      fmt.Sprintf("127.0.0.1:%d", port),
			Network:         testNetwork,
			Version:         "0.40.0-ringwire-test",
			Moniker:         name,
			Other:           p2p.DefaultNodeInfoOther{TxIndex: "off", RPCAddress: "tcp://127.0.0.1:1"},
		},
	}
}

// TestSimultaneousStartWithPEX starts two switches at once, each the other's persistent
// peer, with PEX on, many times: they dial each other simultaneously (one connection
// replaces the other), and each must end with the other in its peer set, and keep it (a
// peer the engine connected but whose up event the switch never saw, or a peer banned for
// answering the replaced connection's address request, fails it).
func TestSimultaneousStartWithPEX(t *testing.T) {
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	for round := 0; round < rounds; round++ {
		keyA, keyB := &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}, &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
		portA, portB := freePort(t), freePort(t)
		cfgA := pexHome(t, "a", portA, keyA, fmt.Sprintf("%s@127.0.0.1:%d", keyB.ID(), portB))
		cfgB := pexHome(t, "b", portB, keyB, fmt.Sprintf("%s@127.0.0.1:%d", keyA.ID(), portA))
		sws := []*Switch{New(cfgA), New(cfgB)}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, sw := range sws {
			sw.SetLogger(log.TestingLogger().With("round", round, "switch", i))
			sw.AddReactor("REC", newRecorder(fmt.Sprint(i), testChannel))
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = sw.Start()
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: switch %d: %v", round, i, err)
			}
		}
		both := func() bool {
			return sws[0].Peers().Has(keyB.ID()) && sws[1].Peers().Has(keyA.ID())
		}
		eventually(t, 20*time.Second, fmt.Sprintf("round %d: both peered", round), both)
		// Still peered a moment later: no ban after the replaced connection's answers.
		time.Sleep(300 * time.Millisecond)
		eventually(t, 10*time.Second, fmt.Sprintf("round %d: both still peered", round), both)
		for _, sw := range sws {
			_ = sw.Stop()
		}
	}
}
