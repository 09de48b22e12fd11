// Package rwnode runs a stock CometBFT v0.40 node.Node on ringwire, without a fork:
// node.NewNode builds the node with stock's switch, then Option moves the stock reactors
// (all but PEX, whose work the engine does) onto a ringwire switch (package rwswitch) and
// puts that switch in the node's place, with no stock transport, so that Node.OnStart starts
// ringwire instead of listening with stock's MultiplexTransport. NewNode is stock's
// DefaultNewNode with that option, for cmd.NewRunNodeCmd.
package rwnode

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/viper"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/blocksync"
	cfg "github.com/cometbft/cometbft/config"
	cs "github.com/cometbft/cometbft/consensus"
	"github.com/cometbft/cometbft/libs/log"
	mempl "github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	sm "github.com/cometbft/cometbft/state"
	"github.com/cometbft/cometbft/statesync"

	ringwire "github.com/ringwire/ringwire/bindings-go"
	"github.com/ringwire/ringwire/cometbft/rwswitch"
)

// StockReactors are the names under which node.NewNode adds its reactors, in its order;
// Option moves these (and any other reactor but PEX) to the ringwire switch.
var StockReactors = []string{"MEMPOOL", "BLOCKSYNC", "CONSENSUS", "EVIDENCE", "STATESYNC"}

// Settings are the ringwire-side choices of a node; the zero value is what
// ringwire-cometbft runs with.
type Settings struct {
	// Shards is the number of engine threads (0: the engine's default, one).
	Shards uint32
	// Compress lists channels compressed towards native peers (e.g. blocksync's 0x40).
	Compress []byte
	// OfferNative, when non-nil, says whether to offer ringwire's native protocol to peers
	// that advertise it (nil: offer it).
	OfferNative *bool
	// P2PMetrics are stock's p2p metrics the switch updates (NewNode passes the node's own,
	// so that they are registered once); nil: none.
	P2PMetrics *p2p.Metrics
}

// Option returns the node.Option that puts n on a ringwire switch built from config (its
// home directory's config/config.toml [p2p] section and node key, its in-memory [p2p]
// settings) and s. It panics when node.Node's layout is not the one this package was written
// for (NewNode checks that first and returns an error instead).
func Option(config *cfg.Config, s Settings) node.Option {
	return func(n *node.Node) {
		if err := Swap(n, config, s); err != nil {
			panic(err)
		}
	}
}

// Swap moves n's reactors to a new ringwire switch and makes n run on it. n must not have
// been started.
func Swap(n *node.Node, config *cfg.Config, s Settings) error {
	if err := CheckLayout(); err != nil {
		return err
	}
	if config.P2P.LibP2PEnabled() {
		return fmt.Errorf("rwnode: p2p.libp2p is enabled; ringwire replaces CometBFT's own networking, turn libp2p off")
	}
	stock, ok := n.Switch().(*p2p.Switch)
	if !ok {
		return fmt.Errorf("rwnode: the node's switch is a %T, not stock's *p2p.Switch", n.Switch())
	}
	ni, ok := n.NodeInfo().(p2p.DefaultNodeInfo)
	if !ok {
		return fmt.Errorf("rwnode: the node's NodeInfo is a %T, not a p2p.DefaultNodeInfo", n.NodeInfo())
	}
	// The engine's PEX runs on channel 0x00 when [p2p] pex is on, as stock's reactor would.
	rc := ringwire.Config{Home: config.RootDir, Shards: s.Shards, OfferNative: s.OfferNative}
	swCfg := rwswitch.Config{
		Ringwire:    rc,
		P2P:         config.P2P,
		NodeInfo:    ni,
		Metrics:     s.P2PMetrics,
		Compress:    s.Compress,
		EnginePeers: enginePeers(config.RootDir),
	}
	if config.FilterPeers {
		swCfg.PeerFilters = abciPeerFilters(n.ProxyApp())
	}
	sw := rwswitch.New(swCfg)
	sw.SetLogger(stock.Log())

	names := make([]string, 0, len(stock.Reactors()))
	for name := range stock.Reactors() {
		if name != "PEX" && !slices.Contains(StockReactors, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	names = append(slices.Clone(StockReactors), names...)
	for _, name := range names {
		r, ok := stock.Reactor(name)
		if !ok {
			continue
		}
		stock.RemoveReactor(name, r)
		sw.AddReactor(name, r)
	}
	if pex, ok := stock.Reactor("PEX"); ok {
		stock.RemoveReactor("PEX", pex)
	}

	// What node.NewNode set on stock's switch, set again on ringwire's.
	if err := sw.AddPersistentPeers(splitAndTrimEmpty(config.P2P.PersistentPeers)); err != nil {
		return fmt.Errorf("could not add peers from persistent_peers field: %w", err)
	}
	if err := sw.AddUnconditionalPeerIDs(splitAndTrimEmpty(config.P2P.UnconditionalPeerIDs)); err != nil {
		return fmt.Errorf("could not add peer ids from unconditional_peer_ids field: %w", err)
	}
	if err := sw.AddPrivatePeerIDs(splitAndTrimEmpty(config.P2P.PrivatePeerIDs)); err != nil {
		return fmt.Errorf("could not add peer ids from private_peer_ids field: %w", err)
	}
	return swapNetwork(n, sw)
}

// NewNode is stock's node.DefaultNewNode (same home, node key, validator key, ABCI
// application, genesis, databases and metrics) on ringwire: a node.Provider for
// cmd.NewRunNodeCmd.
func NewNode(config *cfg.Config, logger log.Logger) (*node.Node, error) {
	return NewNodeWith(config, logger, Settings{})
}

// NewNodeWith is NewNode with ringwire settings s.
func NewNodeWith(config *cfg.Config, logger log.Logger, s Settings) (*node.Node, error) {
	if err := CheckLayout(); err != nil {
		return nil, err
	}
	nodeKey, err := p2p.LoadOrGenNodeKey(config.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("failed to load or gen node key %s: %w", config.NodeKeyFile(), err)
	}
	// Stock's metrics provider, keeping its p2p metrics for the ringwire switch (they are
	// registered with Prometheus once, by this call).
	var p2pMetrics *p2p.Metrics
	stockMetrics := node.DefaultMetricsProvider(config.Instrumentation)
	metrics := func(chainID string) (*cs.Metrics, *p2p.Metrics, *mempl.Metrics, *sm.Metrics, *proxy.Metrics, *blocksync.Metrics, *statesync.Metrics) {
		c, p, m, st, px, b, ss := stockMetrics(chainID)
		p2pMetrics = p
		return c, p, m, st, px, b, ss
	}
	var swapErr error
	swap := func(n *node.Node) {
		s := s
		if s.P2PMetrics == nil {
			s.P2PMetrics = p2pMetrics
		}
		swapErr = Swap(n, config, s)
	}
	n, err := node.NewNode(config,
		privval.LoadOrGenFilePV(config.PrivValidatorKeyFile(), config.PrivValidatorStateFile()),
		nodeKey,
		proxy.DefaultClientCreator(config.ProxyApp, config.ABCI, config.DBDir()),
		node.DefaultGenesisDocProviderFunc(config),
		cfg.DefaultDBProvider,
		metrics,
		logger,
		swap,
	)
	if err != nil {
		return nil, err
	}
	if swapErr != nil {
		return nil, swapErr
	}
	return n, nil
}

// abciPeerFilters are stock's filter_peers checks: the application is asked about the peer's
// address and then its ID (stock asks about the address on the connection, before the
// handshake; here both run when the peer is added).
func abciPeerFilters(app proxy.AppConns) []p2p.PeerFilterFunc {
	query := func(path string) error {
		res, err := app.Query().Query(context.TODO(), &abci.RequestQuery{Path: path})
		if err != nil {
			return err
		}
		if res.IsErr() {
			return fmt.Errorf("error querying abci app: %v", res)
		}
		return nil
	}
	return []p2p.PeerFilterFunc{
		func(_ p2p.IPeerSet, p p2p.Peer) error {
			return query(fmt.Sprintf("/p2p/filter/addr/%s", p.RemoteAddr().String()))
		},
		func(_ p2p.IPeerSet, p p2p.Peer) error {
			return query(fmt.Sprintf("/p2p/filter/id/%s", p.ID()))
		},
	}
}

// splitAndTrimEmpty is stock's: the comma-separated items of s, trimmed of spaces, without
// empty ones.
func splitAndTrimEmpty(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.Trim(e, " "); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// enginePeers are the persistent peers of the home's config/config.toml, which the engine
// reads itself (command-line flags change only the in-memory configuration: peers given
// there are dialed by the switch).
func enginePeers(home string) []string {
	v := viper.New()
	v.SetConfigFile(filepath.Join(home, "config", "config.toml"))
	if err := v.ReadInConfig(); err != nil {
		return nil
	}
	return splitAndTrimEmpty(v.GetString("p2p.persistent_peers"))
}
