// Package rwswitch is a p2p.Switcher for stock CometBFT (v0.40) that runs the stock reactors
// over a ringwire node (bindings-go) instead of stock's MConnection transport.
//
// Every reactor's channels (after stock's FillDefaults) become ringwire channels, registered
// before the node starts so the NodeInfo of every connection lists them. Peers are
// p2p.Peer values built from the node's peer events and peer information (the peer's
// handshake NodeInfo, its address and direction). Received messages are decoded with the
// channel's message type, unwrapped and handed to the reactor, in order per peer and
// channel, each (peer, channel) pair on its own goroutine. Sends wrap and marshal the
// envelope's message as stock's Peer.Send does. Peer exchange, the address book, bans,
// admission limits and the redial of configured persistent peers are the engine's (the
// node's configuration, usually a CometBFT home, sets them); the stock PEX reactor is not
// used. docs/COMETBFT.md lists every stock behaviour this package copies.
package rwswitch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmos/gogoproto/proto"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/cmap"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/service"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// Stock's timings, copied (p2p/conn/connection.go and p2p/switch.go of CometBFT v0.40).
const (
	// sendTimeout is how long Send waits for queue space (stock's defaultSendTimeout).
	sendTimeout = 10 * time.Second
	// dialRandomizerInterval bounds the random wait before each dial of DialPeersAsync and
	// between reconnect attempts (stock's dialRandomizerIntervalMilliseconds).
	dialRandomizerInterval = 3 * time.Second
	// reconnectAttempts at reconnectInterval, then reconnectBackOffAttempts with a backoff of
	// reconnectBackOffBaseSeconds^i seconds (stock's reconnectToPeer).
	reconnectAttempts           = 20
	reconnectInterval           = 5 * time.Second
	reconnectBackOffAttempts    = 10
	reconnectBackOffBaseSeconds = 3
	// defaultFilterTimeout bounds each peer filter (stock's defaultFilterTimeout).
	defaultFilterTimeout = 5 * time.Second
)

// Bounds of this package (stock has none of these: its MConnection reads a peer's socket only
// as fast as the reactor takes its messages).
const (
	// maxQueuedBytesPerPeer bounds the received bytes that wait for a peer's reactors; a peer
	// over it is stopped for error. The engine's own receive queues sit in front of it.
	maxQueuedBytesPerPeer = 256 << 20
	// unknownPeerGrace is how long messages of a peer whose up event has not been seen are
	// kept (they normally wait a few microseconds for it).
	unknownPeerGrace = 30 * time.Second
	// addWait bounds how long DialPeerWithAddress waits, after the engine's dial returned,
	// for the peer to be added to the switch.
	addWait = 10 * time.Second
)

// Config is what a Switch is made from.
type Config struct {
	// Ringwire is the node's configuration: usually Home set to the CometBFT home directory,
	// so that config/config.toml's [p2p] section and config/node_key.json apply. The switch
	// adds the reactors' channels and the NodeInfo settings; Network is set from NodeInfo
	// when empty.
	Ringwire ringwire.Config
	// P2P is stock's [p2p] configuration (the in-memory one, with command-line flags
	// applied): MaxNumOutboundPeers, AllowDuplicateIP and ListenAddress (the engine listens
	// there) are read from it. Nil: stock's defaults, and the engine's listen address.
	P2P *config.P2PConfig
	// NodeInfo is this node's stock NodeInfo (what NodeInfo returns). Its ID must be the
	// ringwire node's; its moniker, version, protocol versions, tx_index and RPC address
	// are what the engine announces.
	NodeInfo p2p.DefaultNodeInfo
	// Metrics are stock's p2p metrics to update (Peers, and the received and sent bytes per
	// peer and channel and per message type); nil: none.
	Metrics *p2p.Metrics
	// Compress lists the channels whose messages are compressed towards native peers that
	// accept it (stock peers always get plain bytes).
	Compress []byte
	// PeerFilters run on every new peer before it is added, together, each within
	// FilterTimeout (stock's SwitchPeerFilters; a CometBFT node with filter_peers queries its
	// application with them). A peer any of them refuses is disconnected.
	PeerFilters []p2p.PeerFilterFunc
	// FilterTimeout bounds each filter (0: stock's 5 s).
	FilterTimeout time.Duration
	// EnginePeers are the persistent peers (id@host:port) of the engine's own configuration
	// (Ringwire's home or file): the engine dials and redials them with its backoff and its
	// simultaneous-dial tie-break, so DialPeersAsync and the reconnect schedule leave them
	// to it (dialing them twice makes connections replace each other).
	EnginePeers []string
}

// Switch is a p2p.Switcher over a ringwire node. Make it with New; it starts the node in
// Start (after every reactor was added) and closes it in Stop.
type Switch struct {
	service.BaseService

	cfg      Config
	p2pCfg   *config.P2PConfig
	nodeInfo p2p.DefaultNodeInfo
	metrics  *p2p.Metrics

	// Set up before Start (stock: "not goroutine safe").
	reactors      map[string]p2p.Reactor
	reactorNames  []string // in the order they were added
	chDescs       []*conn.ChannelDescriptor
	reactorsByCh  map[byte]p2p.Reactor
	msgTypeByChID map[byte]proto.Message

	node     *ringwire.Node
	nodeID   ringwire.NodeID
	channels map[byte]*ringwire.Channel // written in OnStart, read-only afterwards
	ctx      context.Context
	cancel   context.CancelFunc
	loops    sync.WaitGroup
	lagged   atomic.Uint64 // the engine's events_lagged when last seen

	peers        *p2p.PeerSet
	setMu        sync.Mutex // orders additions to and removals from peers (both by ID)
	dialing      *cmap.CMap
	reconnecting *cmap.CMap

	mu                   sync.Mutex
	entries              map[ringwire.NodeID]*peerEntry   // peers up in the engine, or with messages waiting
	awaiting             map[ringwire.NodeID][]chan error // dials waiting for their peer to be added
	persistentPeersAddrs []*p2p.NetAddress
	unconditionalPeerIDs map[p2p.ID]struct{}
	privatePeerIDs       map[p2p.ID]struct{}
	enginePeerIDs        map[p2p.ID]struct{} // Config.EnginePeers' IDs
	markedGood           map[p2p.ID]int
}

var _ p2p.Switcher = (*Switch)(nil)

// New makes a switch from cfg. Add the reactors, then Start it.
func New(cfg Config) *Switch {
	p2pCfg := cfg.P2P
	if p2pCfg == nil {
		p2pCfg = config.DefaultP2PConfig()
	}
	metrics := cfg.Metrics
	if metrics == nil {
		metrics = p2p.NopMetrics()
	}
	sw := &Switch{
		cfg:                  cfg,
		p2pCfg:               p2pCfg,
		nodeInfo:             cfg.NodeInfo,
		metrics:              metrics,
		reactors:             make(map[string]p2p.Reactor),
		reactorsByCh:         make(map[byte]p2p.Reactor),
		msgTypeByChID:        make(map[byte]proto.Message),
		channels:             make(map[byte]*ringwire.Channel),
		peers:                p2p.NewPeerSet(),
		dialing:              cmap.NewCMap(),
		reconnecting:         cmap.NewCMap(),
		entries:              make(map[ringwire.NodeID]*peerEntry),
		awaiting:             make(map[ringwire.NodeID][]chan error),
		unconditionalPeerIDs: make(map[p2p.ID]struct{}),
		privatePeerIDs:       make(map[p2p.ID]struct{}),
		markedGood:           make(map[p2p.ID]int),
	}
	sw.enginePeerIDs = make(map[p2p.ID]struct{})
	for _, a := range cfg.EnginePeers {
		id, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(a), "tcp://"), "@")
		sw.enginePeerIDs[p2p.ID(strings.ToLower(id))] = struct{}{}
	}
	sw.ctx, sw.cancel = context.WithCancel(context.Background())
	sw.BaseService = *service.NewBaseService(nil, "P2P Switch (ringwire)", sw)
	return sw
}

// ---- reactor manager ------------------------------------------------------------------

// AddReactor adds reactor under name, with its channels, and sets its switch (as stock: two
// reactors cannot share a channel; not goroutine safe). A reactor added after Start gets its
// channels opened at once; connections made before do not list them.
func (sw *Switch) AddReactor(name string, reactor p2p.Reactor) p2p.Reactor {
	for _, chDesc := range reactor.GetChannels() {
		chID := chDesc.ID
		if sw.reactorsByCh[chID] != nil {
			panic(fmt.Sprintf("Channel %X has multiple reactors %v & %v", chID, sw.reactorsByCh[chID], reactor))
		}
		sw.chDescs = append(sw.chDescs, chDesc)
		sw.reactorsByCh[chID] = reactor
		sw.msgTypeByChID[chID] = chDesc.MessageType
		if sw.node != nil {
			if err := sw.openChannel(chDesc); err != nil {
				sw.Logger.Error("Cannot open the channel of a reactor added after start", "channel", chID, "err", err)
			}
		}
	}
	if _, ok := sw.reactors[name]; !ok {
		sw.reactorNames = append(sw.reactorNames, name)
	}
	sw.reactors[name] = reactor
	reactor.SetSwitch(sw)
	return reactor
}

// RemoveReactor removes the reactor and its channels, and clears its switch (as stock).
func (sw *Switch) RemoveReactor(name string, reactor p2p.Reactor) {
	for _, chDesc := range reactor.GetChannels() {
		for i := 0; i < len(sw.chDescs); i++ {
			if chDesc.ID == sw.chDescs[i].ID {
				sw.chDescs = append(sw.chDescs[:i], sw.chDescs[i+1:]...)
				break
			}
		}
		delete(sw.reactorsByCh, chDesc.ID)
		delete(sw.msgTypeByChID, chDesc.ID)
	}
	delete(sw.reactors, name)
	for i, n := range sw.reactorNames {
		if n == name {
			sw.reactorNames = append(sw.reactorNames[:i], sw.reactorNames[i+1:]...)
			break
		}
	}
	reactor.SetSwitch(nil)
}

// Reactors returns the reactors by name (not goroutine safe, as stock's).
func (sw *Switch) Reactors() map[string]p2p.Reactor { return sw.reactors }

// Reactor returns the reactor added under name.
func (sw *Switch) Reactor(name string) (p2p.Reactor, bool) {
	r, ok := sw.reactors[name]
	return r, ok
}

// reactorList is the reactors in the order they were added.
func (sw *Switch) reactorList() []p2p.Reactor {
	out := make([]p2p.Reactor, 0, len(sw.reactorNames))
	for _, n := range sw.reactorNames {
		out = append(out, sw.reactors[n])
	}
	return out
}

// NodeInfo is this node's NodeInfo (Config.NodeInfo).
func (sw *Switch) NodeInfo() p2p.NodeInfo { return sw.nodeInfo }

// Log is the switch's logger.
func (sw *Switch) Log() log.Logger { return sw.Logger }

// Node is the ringwire node (nil before Start).
func (sw *Switch) Node() *ringwire.Node { return sw.node }

// NetAddress is the address the node listens on, with its ID (nil before Start or when it
// does not listen).
func (sw *Switch) NetAddress() *p2p.NetAddress {
	if sw.node == nil {
		return nil
	}
	addr, err := sw.node.ListenAddr()
	if err != nil || addr == "" {
		return nil
	}
	na, err := p2p.NewNetAddressString(p2p.IDAddressString(sw.nodeInfo.ID(), addr))
	if err != nil {
		return nil
	}
	return na
}

// ---- start and stop -------------------------------------------------------------------

// channelDesc is stock's descriptor, after stock's FillDefaults, as a ringwire channel.
func (sw *Switch) channelDesc(d *conn.ChannelDescriptor) ringwire.ChannelDesc {
	f := d.FillDefaults()
	prio := f.Priority
	if prio < 1 {
		prio = 1
	}
	cd := ringwire.ChannelDesc{
		ID:                  f.ID,
		Priority:            uint32(prio),
		SendQueueCapacity:   f.SendQueueCapacity,
		RecvMessageCapacity: f.RecvMessageCapacity,
	}
	for _, c := range sw.cfg.Compress {
		if c == f.ID {
			cd.Compress = true
		}
	}
	return cd
}

// openChannel opens d's channel on the running node and starts its receive loop.
func (sw *Switch) openChannel(d *conn.ChannelDescriptor) error {
	ch, err := sw.node.OpenChannel(sw.channelDesc(d))
	if err != nil {
		return err
	}
	sw.channels[d.ID] = ch
	sw.loops.Add(1)
	go sw.receiveLoop(d.ID, ch)
	return nil
}

// ringwireConfig is Config.Ringwire with the reactors' channels, the NodeInfo settings and
// the listen address of the stock configuration.
func (sw *Switch) ringwireConfig() ringwire.Config {
	rc := sw.cfg.Ringwire
	rc.Channels = append([]ringwire.ChannelDesc(nil), rc.Channels...)
	for _, d := range sw.chDescs {
		rc.Channels = append(rc.Channels, sw.channelDesc(d))
	}
	ni := sw.nodeInfo
	rc.NodeInfo = &ringwire.NodeInfoSettings{
		Moniker:       ni.Moniker,
		Version:       ni.Version,
		P2PProtocol:   ni.ProtocolVersion.P2P,
		BlockProtocol: ni.ProtocolVersion.Block,
		AppProtocol:   ni.ProtocolVersion.App,
		TxIndex:       ni.Other.TxIndex,
		RPCAddress:    ni.Other.RPCAddress,
	}
	if rc.Network == "" {
		rc.Network = ni.Network
	}
	if rc.Listen == "" && sw.cfg.P2P != nil && sw.cfg.P2P.ListenAddress != "" {
		rc.Listen = strings.TrimPrefix(sw.cfg.P2P.ListenAddress, "tcp://")
	}
	return rc
}

// OnStart starts the ringwire node with the reactors' channels, then the reactors, then the
// loops that turn peer events into peers and messages into Receive calls.
func (sw *Switch) OnStart() error {
	node, err := ringwire.NewNode(sw.ringwireConfig())
	if err != nil {
		return fmt.Errorf("ringwire node: %w", err)
	}
	id, err := node.ID()
	if err != nil {
		_ = node.Close()
		return err
	}
	if want := string(sw.nodeInfo.ID()); want != "" && want != id.String() {
		_ = node.Close()
		return fmt.Errorf("ringwire node ID %s differs from the NodeInfo's %s (another node key?)", id, want)
	}
	sw.node, sw.nodeID = node, id
	for _, d := range sw.chDescs {
		if err := sw.openChannel(d); err != nil {
			sw.cancel()
			_ = node.Close()
			return fmt.Errorf("ringwire channel %#x: %w", d.ID, err)
		}
	}
	for _, reactor := range sw.reactorList() {
		if err := reactor.Start(); err != nil {
			sw.cancel()
			_ = node.Close()
			return fmt.Errorf("failed to start %v: %w", reactor, err)
		}
	}
	sw.loops.Add(1)
	go sw.eventLoop()
	addr, _ := node.ListenAddr()
	sw.Logger.Info("ringwire switch started", "node", id.String(), "listen", addr, "channels", len(sw.chDescs))
	return nil
}

// OnStop stops every peer, then the reactors (as stock), then the node and the loops.
func (sw *Switch) OnStop() {
	sw.logUnadded()
	for _, p := range sw.peers.Copy() {
		sw.stopAndRemovePeer(p, nil)
	}
	sw.Logger.Debug("Switch: Stopping reactors")
	for _, reactor := range sw.reactorList() {
		if err := reactor.Stop(); err != nil {
			sw.Logger.Error("error while stopped reactor", "reactor", reactor, "err", err)
		}
	}
	sw.cancel()
	if sw.node != nil {
		if st, err := sw.node.Stats(); err == nil {
			sw.Logger.Info("ringwire node stats", "peers", st.Peers, "accepted", st.Accepted,
				"refused", st.Refused, "accept_refused", st.AcceptRefused, "protocol_errors", st.ProtocolErrors,
				"io_errors", st.IOErrors, "queued_dropped", st.QueuedDropped, "events_lagged", st.EventsLagged,
				"pex_refused", st.PexRefused, "pex_rate_limited", st.PexRateLimited)
		}
		if err := sw.node.Close(); err != nil {
			sw.Logger.Error("Error closing the ringwire node", "err", err)
		}
	}
	sw.loops.Wait()
	for _, ch := range sw.channels {
		_ = ch.Close()
	}
}

// logUnadded logs the engine's peers that are not in the peer set (a peer whose up event
// never reached the switch, or was dropped): there should be none, and a stop is where a run
// that ended with a missing peer shows why.
func (sw *Switch) logUnadded() {
	if sw.node == nil {
		return
	}
	ids, err := sw.node.Peers()
	if err != nil {
		return
	}
	for _, id := range ids {
		if !sw.peers.Has(p2p.ID(id.String())) {
			sw.Logger.Info("ringwire peer connected but not in the switch's peer set", "peer", id.String())
		}
	}
}

// ---- peer events ----------------------------------------------------------------------

// eventLoop turns the node's peer events into added and removed peers, one at a time, and
// sweeps messages of peers that never came up.
func (sw *Switch) eventLoop() {
	defer sw.loops.Done()
	sweep := time.NewTicker(unknownPeerGrace / 2)
	defer sweep.Stop()
	for {
		evs, err := sw.node.PollEvents(sw.ctx)
		if err != nil {
			if sw.ctx.Err() != nil || errors.Is(err, ringwire.ErrStopped) || errors.Is(err, ringwire.ErrClosed) {
				return
			}
			sw.Logger.Error("ringwire peer events", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, ev := range evs {
			sw.Logger.Debug("ringwire peer event", "up", ev.Kind == ringwire.PeerUp, "peer", ev.Peer.String(), "outbound", ev.Outbound)
			switch ev.Kind {
			case ringwire.PeerUp:
				sw.peerUp(ev)
			case ringwire.PeerDown:
				sw.peerDown(ev.Peer, ev.Reason)
			}
		}
		select {
		case <-sweep.C:
			sw.sweepUnknown()
			sw.resyncIfLagged()
		default:
		}
	}
}

// resyncIfLagged compares the switch's peers with the engine's when the engine dropped peer
// events (its queue of them overflowed): peers the engine lost are removed, peers it has are
// added.
func (sw *Switch) resyncIfLagged() {
	st, err := sw.node.Stats()
	if err != nil || st.EventsLagged == sw.lagged.Load() {
		return
	}
	sw.Logger.Error("ringwire dropped peer events; resynchronising the peer set", "lost", st.EventsLagged-sw.lagged.Load())
	sw.lagged.Store(st.EventsLagged)
	ids, err := sw.node.Peers()
	if err != nil {
		return
	}
	live := make(map[p2p.ID]ringwire.NodeID, len(ids))
	for _, id := range ids {
		live[p2p.ID(id.String())] = id
	}
	for _, p := range sw.peers.Copy() {
		if _, ok := live[p.ID()]; !ok {
			var id ringwire.NodeID
			if decodeID(p.ID(), &id) == nil {
				sw.peerDown(id, "gone from the engine's peer list (its events were lost)")
			}
		}
	}
	for pid, id := range live {
		if !sw.peers.Has(pid) {
			sw.peerUp(ringwire.PeerEvent{Kind: ringwire.PeerUp, Peer: id})
		}
	}
}

// peerUp builds the peer from the engine's information and adds it in stock's order:
// InitPeer on every reactor, Start, the peer set, AddPeer on every reactor; then its
// messages are delivered.
func (sw *Switch) peerUp(ev ringwire.PeerEvent) {
	info, err := sw.node.PeerInfo(ev.Peer)
	if err != nil {
		// Gone already: its down event follows. Rare (a connection that ended, or was
		// replaced, as it came up), so logged where it shows.
		sw.Logger.Info("Peer gone before it was added", "peer", ev.Peer.String(), "err", err)
		sw.settled(ev.Peer, fmt.Errorf("the peer disconnected before it was added: %w", err))
		return
	}
	p, err := sw.newPeer(info)
	if err != nil {
		sw.Logger.Error("Refusing a peer with bad information", "peer", ev.Peer.String(), "err", err)
		_ = sw.node.Disconnect(ev.Peer)
		sw.settled(ev.Peer, err)
		return
	}
	if err := sw.addPeer(p); err != nil {
		sw.Logger.Info("Ignoring connection: error while adding peer", "err", err, "id", p.ID())
		p.gone.Store(true)
		if p.IsRunning() {
			_ = p.Stop()
		}
		_ = sw.node.Disconnect(ev.Peer)
		sw.settled(ev.Peer, err)
		return
	}
	sw.settled(ev.Peer, nil)
}

// filterPeer runs the peer filters (stock's Switch.filterPeer, past its duplicate check).
func (sw *Switch) filterPeer(p p2p.Peer) error {
	timeout := sw.cfg.FilterTimeout
	if timeout <= 0 {
		timeout = defaultFilterTimeout
	}
	errc := make(chan error, len(sw.cfg.PeerFilters))
	for _, f := range sw.cfg.PeerFilters {
		go func(f p2p.PeerFilterFunc) { errc <- f(sw.peers, p) }(f)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for range sw.cfg.PeerFilters {
		select {
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("peer %s filtered out: %w", p.ID(), err)
			}
		case <-timer.C:
			return p2p.ErrFilterTimeout{}
		}
	}
	return nil
}

// addPeer is stock's Switch.addPeer over a peer the engine already admitted.
func (sw *Switch) addPeer(p *peer) error {
	if old := sw.peers.Get(p.ID()); old != nil {
		// A connection the engine replaced whose down event was not seen: drop the old one.
		if op, ok := old.(*peer); ok {
			op.gone.Store(true)
		}
		sw.stopAndRemovePeer(old, errors.New("replaced by a new connection"))
	}
	if err := sw.filterPeer(p); err != nil {
		return err
	}
	p.SetLogger(sw.Logger.With("peer", p.SocketAddr()))
	if !sw.IsRunning() {
		sw.Logger.Error("Won't start a peer - switch is not running", "peer", p)
		return errors.New("switch is not running")
	}
	var src p2p.Peer = p
	for _, reactor := range sw.reactorList() {
		src = reactor.InitPeer(src)
	}
	if err := src.Start(); err != nil {
		sw.Logger.Error("Error starting peer", "err", err, "peer", src)
		return err
	}
	sw.setMu.Lock()
	err := sw.peers.Add(src)
	sw.setMu.Unlock()
	if err != nil {
		return err
	}
	sw.metrics.Peers.Add(1)
	for _, reactor := range sw.reactorList() {
		reactor.AddPeer(src)
	}
	protocol := "stock"
	if p.native {
		protocol = "native"
	}
	sw.Logger.Info("Added peer", "peer", p.ID(), "protocol", protocol, "outbound", p.outbound, "addr", p.socketAddr)
	sw.attach(p, src)
	return nil
}

// peerDown removes a peer the engine lost, as stock's switch does when a connection fails
// (StopPeerForError: persistent peers are redialled). reason is the engine's, logged.
func (sw *Switch) peerDown(id ringwire.NodeID, reason string) {
	sw.Logger.Info("ringwire connection ended", "peer", id, "reason", reason)
	sw.mu.Lock()
	e := sw.entries[id]
	delete(sw.entries, id)
	sw.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	p, src := e.peer, e.src
	e.mu.Unlock()
	e.detach()
	if p == nil {
		return
	}
	p.gone.Store(true)
	if cur := sw.peers.Get(p.ID()); cur != nil && cur == src {
		sw.StopPeerForError(cur, errConnectionClosed)
	}
}

// errConnectionClosed is the reason given to reactors for a peer whose connection closed.
var errConnectionClosed = errors.New("ringwire: connection closed")

// newPeer builds a peer from the engine's description of it.
func (sw *Switch) newPeer(info ringwire.PeerInfo) (*peer, error) {
	var pb tmp2p.DefaultNodeInfo
	if err := proto.Unmarshal(info.NodeInfo, &pb); err != nil {
		return nil, fmt.Errorf("decoding NodeInfo: %w", err)
	}
	ni, err := p2p.DefaultNodeInfoFromToProto(&pb)
	if err != nil {
		return nil, err
	}
	if string(ni.DefaultNodeID) != info.ID.String() {
		return nil, fmt.Errorf("NodeInfo names %s, the connection %s", ni.DefaultNodeID, info.ID)
	}
	host, port, err := net.SplitHostPort(info.RemoteAddr)
	if err != nil {
		return nil, fmt.Errorf("remote address %q: %w", info.RemoteAddr, err)
	}
	ip := net.ParseIP(host)
	portN, err := strconv.ParseUint(port, 10, 16)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("remote address %q is not IP:PORT", info.RemoteAddr)
	}
	// Stock: outbound peers' socket address is the address dialed (the engine reports it as
	// the remote address), inbound peers' the connection's remote address.
	socketAddr := p2p.NewNetAddressIPPort(ip, uint16(portN))
	socketAddr.ID = ni.ID()
	persistent := false
	if info.Outbound {
		persistent = sw.IsPeerPersistent(socketAddr)
	} else if self, err := ni.NetAddress(); err == nil {
		persistent = sw.IsPeerPersistent(self)
	}
	return newPeer(sw, info, ni, socketAddr, persistent), nil
}

// ---- stopping peers -------------------------------------------------------------------

// StopPeerForError disconnects peer for reason; a persistent peer, or one stopped for a
// transient error, is redialled with stock's schedule (as stock).
func (sw *Switch) StopPeerForError(peer p2p.Peer, reason any) {
	if !peer.IsRunning() {
		return
	}
	if reason == errConnectionClosed {
		sw.Logger.Info("Peer disconnected", "peer", peer)
	} else {
		sw.Logger.Error("Stopping peer for error", "peer", peer, "err", reason)
	}
	sw.stopAndRemovePeer(peer, reason)

	shouldReconnect := false
	if peer.IsPersistent() {
		shouldReconnect = true
	} else if errTransient, ok := p2p.TransientErrorFromAny(reason); ok {
		shouldReconnect = true
		sw.Logger.Debug("Will reconnect to peer after transient error", "peer", peer, "err", errTransient.Err)
	}
	if !shouldReconnect || sw.engineDials(peer.ID()) {
		return
	}
	var addr *p2p.NetAddress
	if peer.IsOutbound() {
		addr = peer.SocketAddr()
	} else {
		var err error
		addr, err = peer.NodeInfo().NetAddress()
		if err != nil {
			sw.Logger.Error("Wanted to reconnect to inbound peer, but self-reported address is wrong",
				"peer", peer, "err", err)
			return
		}
	}
	go sw.reconnectToPeer(addr)
}

// StopPeerGracefully disconnects peer (as stock, without a reconnect).
func (sw *Switch) StopPeerGracefully(peer p2p.Peer) {
	sw.Logger.Info("Stopping peer gracefully")
	sw.stopAndRemovePeer(peer, nil)
}

// stopAndRemovePeer is stock's: Stop (which closes the connection), RemovePeer on every
// reactor, then removal from the peer set.
func (sw *Switch) stopAndRemovePeer(peer p2p.Peer, reason any) {
	if err := peer.Stop(); err != nil {
		sw.Logger.Error("error stopping peer", "peer", peer.ID(), "err", err)
		return
	}
	for _, reactor := range sw.reactorList() {
		reactor.RemovePeer(peer, reason)
	}
	// PeerSet.Remove goes by ID: remove the entry only if it is this peer, not a newer
	// connection's peer added meanwhile.
	sw.setMu.Lock()
	removed := false
	if sw.peers.Get(peer.ID()) == peer {
		removed = sw.peers.Remove(peer)
	} else {
		peer.SetRemovalFailed()
	}
	sw.setMu.Unlock()
	if !removed {
		sw.Logger.Debug("error on peer removal", "peer", peer.ID())
		return
	}
	sw.metrics.Peers.Add(-1)
}

// ---- peer manager ---------------------------------------------------------------------

// Peers is the set of peers added to the switch.
func (sw *Switch) Peers() p2p.IPeerSet { return sw.peers }

// NumPeers counts outbound and inbound peers (unconditional peers are not counted) and the
// dials in progress (as stock).
func (sw *Switch) NumPeers() (outbound, inbound, dialing int) {
	sw.peers.ForEach(func(peer p2p.Peer) {
		if sw.IsPeerUnconditional(peer.ID()) {
			return
		}
		if peer.IsOutbound() {
			outbound++
		} else {
			inbound++
		}
	})
	dialing = sw.dialing.Size()
	return
}

// MaxNumOutboundPeers is the configured maximum of outbound peers.
func (sw *Switch) MaxNumOutboundPeers() int { return sw.p2pCfg.MaxNumOutboundPeers }

// IsPeerUnconditional says whether id was added as an unconditional peer ID.
func (sw *Switch) IsPeerUnconditional(id p2p.ID) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	_, ok := sw.unconditionalPeerIDs[id]
	return ok
}

// IsPeerPersistent says whether na is one of the persistent peers' addresses.
func (sw *Switch) IsPeerPersistent(na *p2p.NetAddress) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, pa := range sw.persistentPeersAddrs {
		if pa.Equals(na) {
			return true
		}
	}
	return false
}

// AddPersistentPeers sets the persistent peers' addresses (id@host:port). Addresses whose
// host does not resolve are skipped; another bad address is returned (as stock). The
// switch redials them when they drop; the engine also redials the persistent peers of its
// own configuration.
func (sw *Switch) AddPersistentPeers(addrs []string) error {
	sw.Logger.Info("Adding persistent peers", "addrs", addrs)
	netAddrs, errs := p2p.NewNetAddressStrings(addrs)
	for _, err := range errs {
		sw.Logger.Error("Error in peer's address", "err", err)
	}
	for _, err := range errs {
		if _, ok := err.(p2p.ErrNetAddressLookup); ok {
			continue
		}
		return err
	}
	sw.mu.Lock()
	sw.persistentPeersAddrs = netAddrs
	sw.mu.Unlock()
	return nil
}

// AddUnconditionalPeerIDs adds peer IDs that NumPeers does not count (as stock). The engine
// admits the unconditional peers of its own configuration beyond its limits.
func (sw *Switch) AddUnconditionalPeerIDs(ids []string) error {
	sw.Logger.Info("Adding unconditional peer ids", "ids", ids)
	for i, id := range ids {
		if err := validateID(p2p.ID(id)); err != nil {
			return fmt.Errorf("wrong ID #%d: %w", i, err)
		}
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, id := range ids {
		sw.unconditionalPeerIDs[p2p.ID(id)] = struct{}{}
	}
	return nil
}

// AddPrivatePeerIDs records peer IDs whose addresses must not be gossiped. Stock hands them
// to its address book; here the engine's peer exchange keeps the private peers of its own
// configuration (private_peer_ids), and IDs added at run time are only recorded
// (IsPeerPrivate).
func (sw *Switch) AddPrivatePeerIDs(ids []string) error {
	for i, id := range ids {
		if err := validateID(p2p.ID(id)); err != nil {
			return fmt.Errorf("wrong ID #%d: %w", i, err)
		}
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, id := range ids {
		sw.privatePeerIDs[p2p.ID(id)] = struct{}{}
	}
	return nil
}

// engineDials says whether the engine dials and redials id itself (Config.EnginePeers).
func (sw *Switch) engineDials(id p2p.ID) bool {
	_, ok := sw.enginePeerIDs[id]
	return ok
}

// IsPeerPrivate says whether id was added with AddPrivatePeerIDs.
func (sw *Switch) IsPeerPrivate(id p2p.ID) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	_, ok := sw.privatePeerIDs[id]
	return ok
}

// MarkPeerAsGood records that peer did something useful. Stock marks it good in its address
// book; the engine's address book scores peers itself, so the switch only counts the marks
// (TimesMarkedGood).
func (sw *Switch) MarkPeerAsGood(peer p2p.Peer) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.markedGood[peer.ID()]++
}

// TimesMarkedGood is how many times MarkPeerAsGood was called for id.
func (sw *Switch) TimesMarkedGood(id p2p.ID) int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.markedGood[id]
}

// validateID is stock's check of a peer ID: hex of IDByteLength bytes.
func validateID(id p2p.ID) error {
	if len(id) == 0 {
		return errors.New("no ID")
	}
	idBytes, err := hex.DecodeString(string(id))
	if err != nil {
		return err
	}
	if len(idBytes) != p2p.IDByteLength {
		return fmt.Errorf("invalid hex length - got %d, expected %d", len(idBytes), p2p.IDByteLength)
	}
	return nil
}
