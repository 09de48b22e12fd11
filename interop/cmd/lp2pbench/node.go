package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/lp2p"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

const (
	// reactorName is the reactor's name in the Switch; it matches no scaler
	// override, so the global scaler settings apply.
	reactorName = "BENCH"

	// frameSlack is what a channel accepts beyond the payload: the protobuf
	// field header of RequestEcho (lp2p/bench_test.go allows the same).
	frameSlack = 1024

	// defaultSendConcurrency is the largest send concurrency of
	// lp2p/bench_test.go.
	defaultSendConcurrency = 16

	// connectTimeout bounds one connection attempt.
	connectTimeout = 10 * time.Second
)

// bulkChannels are the descriptors of the bulk scenario, sized for -size.
func bulkChannels(o *options) []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{channel(benchchild.BulkChannel, benchchild.BulkPriority, o.Size)}
}

// latencyChannels are the descriptors of the latency scenario, sized for
// -size and -bulk-size.
func latencyChannels(o *options) []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{
		channel(benchchild.HiChannel, benchchild.HiPriority, max(o.Size, 8)),
		channel(benchchild.LoChannel, benchchild.LoPriority, o.BulkSize),
	}
}

// channel is a descriptor for RequestEcho messages of up to size payload
// bytes.
func channel(id byte, priority, size int) *conn.ChannelDescriptor {
	return &conn.ChannelDescriptor{
		ID:                  id,
		Priority:            priority,
		RecvMessageCapacity: size + frameSlack,
		MessageType:         &abci.RequestEcho{},
	}
}

// p2pConfig is a node's P2P configuration with libp2p on and the lifted
// ("maxed out") settings of lp2p/bench_test.go. bootstrap, when not empty, is
// the one peer the Switch connects to when it starts.
func p2pConfig(listen string, bootstrap []config.LibP2PBootstrapPeer) *config.P2PConfig {
	cfg := config.DefaultP2PConfig()
	cfg.ListenAddress = listen
	// No external address: the host announces what it listens on (port 0
	// resolved), which is what the LISTEN line reports.
	cfg.ExternalAddress = ""
	cfg.LibP2PConfig.Enabled = true
	cfg.LibP2PConfig.BootstrapPeers = bootstrap
	cfg.LibP2PConfig.Limits.Mode = config.LibP2PLimitsModeDisabled
	cfg.LibP2PConfig.Scaler.MinWorkers = 64
	cfg.LibP2PConfig.Scaler.MaxWorkers = 128
	cfg.LibP2PConfig.Scaler.ThresholdLatency = 500 * time.Millisecond
	return cfg
}

// newHost starts a libp2p host with a fresh node key, as a node has one.
func newHost(listen string, bootstrap []config.LibP2PBootstrapPeer) (*lp2p.Host, error) {
	return lp2p.NewHost(p2pConfig(listen, bootstrap), ed25519.GenPrivKey(), log.NewNopLogger())
}

// benchReactor hands every envelope to onReceive.
type benchReactor struct {
	p2p.BaseReactor
	chans     []*conn.ChannelDescriptor
	onReceive func(p2p.Envelope)
}

func (r *benchReactor) GetChannels() []*conn.ChannelDescriptor { return r.chans }

func (r *benchReactor) Receive(e p2p.Envelope) { r.onReceive(e) }

// startSwitch runs an lp2p Switch with one reactor on h. A Switch whose host
// has a bootstrap peer has connected to it when Start returns, or failed to.
func startSwitch(h *lp2p.Host, chans []*conn.ChannelDescriptor, onReceive func(p2p.Envelope)) (*lp2p.Switch, error) {
	r := &benchReactor{chans: chans, onReceive: onReceive}
	r.BaseReactor = *p2p.NewBaseReactor(reactorName, r)
	sw, err := lp2p.NewSwitch(
		nil,
		h,
		[]lp2p.SwitchReactor{{Name: reactorName, Reactor: r}},
		p2p.NopMetrics(),
		log.NewNopLogger(),
	)
	if err != nil {
		return nil, err
	}
	if err := sw.Start(); err != nil {
		return nil, err
	}
	return sw, nil
}

// listenHost starts the receiver's host and announces "host:port/peer-id".
func listenHost(o *options) (*lp2p.Host, error) {
	h, err := newHost(o.Listen, nil)
	if err != nil {
		return nil, err
	}
	for _, a := range h.Network().ListenAddresses() {
		if _, hostPort, err := manet.DialArgs(a); err == nil {
			benchchild.Announce(hostPort + "/" + h.ID().String())
			return h, nil
		}
	}
	return nil, fmt.Errorf("host has no usable listen address: %v", h.Network().ListenAddresses())
}

// splitAddr splits the sender's -addr, "host:port/peer-id".
func splitAddr(addr string) (hostPort, id string, err error) {
	hostPort, id, ok := strings.Cut(addr, "/")
	if !ok || hostPort == "" || id == "" {
		return "", "", fmt.Errorf("-addr %q is not host:port/peer-id", addr)
	}
	return hostPort, id, nil
}

// connectSwitch starts the sender's host and Switch with the receiver as its
// bootstrap peer and returns the connected peer.
func connectSwitch(o *options, chans []*conn.ChannelDescriptor, onReceive func(p2p.Envelope)) (*lp2p.Host, p2p.Peer, error) {
	hostPort, id, err := splitAddr(o.Addr)
	if err != nil {
		return nil, nil, err
	}
	h, err := newHost("127.0.0.1:0", []config.LibP2PBootstrapPeer{{Host: hostPort, ID: id}})
	if err != nil {
		return nil, nil, err
	}
	sw, err := startSwitch(h, chans, onReceive)
	if err != nil {
		return nil, nil, err
	}
	peers := sw.Peers().Copy()
	if len(peers) != 1 {
		return nil, nil, fmt.Errorf("could not connect to %s", o.Addr)
	}
	return h, peers[0], nil
}

// peerID is the libp2p identity of a Switch peer.
func peerID(p p2p.Peer) peer.ID {
	if lp, ok := p.(*lp2p.Peer); ok {
		return lp.AddrInfo().ID
	}
	return ""
}

// disconnected is closed when the host has lost its last connection to id,
// or to every peer when id is empty.
func disconnected(h *lp2p.Host, id peer.ID) <-chan struct{} {
	done := make(chan struct{})
	var once sync.Once
	check := func(n network.Network) {
		gone := len(n.Peers()) == 0
		if id != "" {
			gone = n.Connectedness(id) != network.Connected
		}
		if gone {
			once.Do(func() { close(done) })
		}
	}
	h.Network().Notify(&network.NotifyBundle{
		DisconnectedF: func(n network.Network, _ network.Conn) { check(n) },
	})
	if id != "" {
		check(h.Network())
	}
	return done
}

// failure yields err once done is closed.
func failure(done <-chan struct{}, err error) <-chan error {
	failed := make(chan error, 1)
	go func() {
		<-done
		failed <- err
	}()
	return failed
}

// hangUp closes every connection of h, so the other side sees the end at
// once; it gives up after a second.
func hangUp(h *lp2p.Host) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range h.Network().Peers() {
			_ = h.Network().ClosePeer(p)
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// echo wraps a payload in the message type of every channel.
func echo(payload []byte) *abci.RequestEcho {
	return &abci.RequestEcho{Message: string(payload)}
}
