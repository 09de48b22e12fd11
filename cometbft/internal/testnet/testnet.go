// Package testnet writes the home directories of a local validator network, as `cometbft
// testnet` does, on loopback with a port pair per node, for tests.
package testnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtnet "github.com/cometbft/cometbft/libs/net"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"
)

// Node is one validator's home and addresses.
type Node struct {
	// Home is the node's CometBFT home directory.
	Home string
	// ID is its node ID.
	ID p2p.ID
	// P2P and RPC are its loopback listen addresses ("127.0.0.1:PORT").
	P2P, RPC string
	// Config is the configuration written to Home (its RootDir set).
	Config *cfg.Config
}

// Make writes n validator homes under dir (node0 … node{n-1}), each with equal power, the
// kvstore application, allow_duplicate_ip, every other node as a persistent peer, and
// consensus timeouts of commitTimeout (as `cometbft testnet`, plus free loopback ports and
// shorter timeouts). tune, when non-nil, adjusts each node's configuration before it is
// written.
func Make(dir string, n int, chainID string, commitTimeout time.Duration, tune func(i int, c *cfg.Config)) ([]Node, error) {
	nodes := make([]Node, n)
	var vals []types.GenesisValidator
	for i := range nodes {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i))
		c := cfg.DefaultConfig()
		c.SetRoot(home)
		for _, d := range []string{"config", "data"} {
			if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
				return nil, err
			}
		}
		pv := privval.GenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
		pv.Save()
		pub, err := pv.GetPubKey()
		if err != nil {
			return nil, err
		}
		vals = append(vals, types.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 1, Name: fmt.Sprintf("node%d", i)})
		nk, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
		if err != nil {
			return nil, err
		}
		p2pPort, err := cmtnet.GetFreePort()
		if err != nil {
			return nil, err
		}
		rpcPort, err := cmtnet.GetFreePort()
		if err != nil {
			return nil, err
		}
		nodes[i] = Node{
			Home:   home,
			ID:     nk.ID(),
			P2P:    fmt.Sprintf("127.0.0.1:%d", p2pPort),
			RPC:    fmt.Sprintf("127.0.0.1:%d", rpcPort),
			Config: c,
		}
	}
	gen := &types.GenesisDoc{
		ChainID:         chainID,
		ConsensusParams: types.DefaultConsensusParams(),
		GenesisTime:     cmttime.Now(),
		Validators:      vals,
	}
	for i, nd := range nodes {
		c := nd.Config
		if err := gen.SaveAs(c.GenesisFile()); err != nil {
			return nil, err
		}
		var peers []string
		for j, o := range nodes {
			if j != i {
				peers = append(peers, p2p.IDAddressString(o.ID, o.P2P))
			}
		}
		c.Moniker = fmt.Sprintf("node%d", i)
		c.ProxyApp = "kvstore"
		c.P2P.ListenAddress = "tcp://" + nd.P2P
		c.RPC.ListenAddress = "tcp://" + nd.RPC
		c.P2P.PersistentPeers = strings.Join(peers, ",")
		c.P2P.AddrBookStrict = false
		c.P2P.AllowDuplicateIP = true
		c.Consensus.TimeoutCommit = commitTimeout
		c.Consensus.TimeoutPropose = 10 * commitTimeout
		if tune != nil {
			tune(i, c)
		}
		cfg.WriteConfigFile(filepath.Join(nd.Home, "config", "config.toml"), c)
	}
	return nodes, nil
}
