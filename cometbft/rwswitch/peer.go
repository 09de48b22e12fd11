package rwswitch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmos/gogoproto/proto"

	"github.com/cometbft/cometbft/libs/cmap"
	"github.com/cometbft/cometbft/libs/service"
	"github.com/cometbft/cometbft/p2p"
	cmtconn "github.com/cometbft/cometbft/p2p/conn"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// peer is a p2p.Peer over one ringwire connection.
type peer struct {
	service.BaseService

	sw         *Switch
	id         ringwire.NodeID
	nodeInfo   p2p.DefaultNodeInfo
	socketAddr *p2p.NetAddress
	outbound   bool
	persistent bool
	native     bool
	created    time.Time

	data          *cmap.CMap
	removalFailed atomic.Bool
	// gone: the engine closed the connection, so stopping the peer has nothing to close
	// (and must not close a newer connection of the same peer).
	gone atomic.Bool

	ctx    context.Context // ends when the peer stops: sends waiting for space give up
	cancel context.CancelFunc
}

var _ p2p.Peer = (*peer)(nil)

func newPeer(sw *Switch, info ringwire.PeerInfo, ni p2p.DefaultNodeInfo, socketAddr *p2p.NetAddress, persistent bool) *peer {
	p := &peer{
		sw:         sw,
		id:         info.ID,
		nodeInfo:   ni,
		socketAddr: socketAddr,
		outbound:   info.Outbound,
		persistent: persistent,
		native:     info.Native,
		created:    time.Now(),
		data:       cmap.NewCMap(),
	}
	p.ctx, p.cancel = context.WithCancel(sw.ctx)
	p.BaseService = *service.NewBaseService(nil, "Peer", p)
	return p
}

// String names the peer, its protocol and direction.
func (p *peer) String() string {
	dir := "in"
	if p.outbound {
		dir = "out"
	}
	proto := "stock"
	if p.native {
		proto = "native"
	}
	return fmt.Sprintf("Peer{ringwire %s %v %s}", proto, p.ID(), dir)
}

// OnStop closes the connection unless the engine already did.
func (p *peer) OnStop() {
	p.cancel()
	if !p.gone.Load() {
		if err := p.sw.node.Disconnect(p.id); err != nil && !errors.Is(err, ringwire.ErrPeerGone) {
			p.Logger.Debug("Error while stopping peer", "err", err)
		}
	}
}

// FlushStop stops the peer. Stock flushes the connection's queues first; the engine closes
// the connection after the sends already handed to it, and a peer's sends waiting for queue
// space give up.
func (p *peer) FlushStop() {
	_ = p.Stop()
}

// ID is the peer's node ID.
func (p *peer) ID() p2p.ID { return p.nodeInfo.ID() }

// RemoteIP is the IP of the connection's remote end.
func (p *peer) RemoteIP() net.IP { return p.socketAddr.IP }

// RemoteAddr is the connection's remote address.
func (p *peer) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: p.socketAddr.IP, Port: int(p.socketAddr.Port)}
}

// IsOutbound says whether this node dialed the peer.
func (p *peer) IsOutbound() bool { return p.outbound }

// IsPersistent says whether the peer's address is a persistent peer's (its socket address
// when outbound, the one its NodeInfo reports when inbound, as stock).
func (p *peer) IsPersistent() bool { return p.persistent }

// IsNative says whether the connection speaks ringwire's native protocol (false: stock
// MConnection framing).
func (p *peer) IsNative() bool { return p.native }

// CloseConn closes the connection.
func (p *peer) CloseConn() error {
	err := p.sw.node.Disconnect(p.id)
	if errors.Is(err, ringwire.ErrPeerGone) {
		return nil
	}
	return err
}

// NodeInfo is the NodeInfo the peer sent in its handshake.
func (p *peer) NodeInfo() p2p.NodeInfo { return p.nodeInfo }

// Status reports how long the connection has been up and the channels (the engine keeps the
// byte counts; the flow-rate monitors are zero).
func (p *peer) Status() cmtconn.ConnectionStatus {
	st := cmtconn.ConnectionStatus{Duration: time.Since(p.created)}
	for _, d := range p.sw.chDescs {
		if !p.hasChannel(d.ID) {
			continue
		}
		f := d.FillDefaults()
		st.Channels = append(st.Channels, cmtconn.ChannelStatus{
			ID:                f.ID,
			SendQueueCapacity: f.SendQueueCapacity,
			Priority:          f.Priority,
		})
	}
	return st
}

// SocketAddr is the peer's address: the one dialed when outbound, the connection's remote
// address when inbound.
func (p *peer) SocketAddr() *p2p.NetAddress { return p.socketAddr }

// Send queues the envelope's message (wrapped and marshalled as stock does), waiting up to
// stock's 10 s for queue space; false when the peer is stopped, does not run the channel,
// or the wait ran out.
func (p *peer) Send(e p2p.Envelope) bool { return p.send(e, true) }

// TrySend queues the envelope's message without waiting; false when the queue is full.
func (p *peer) TrySend(e p2p.Envelope) bool { return p.send(e, false) }

func (p *peer) send(e p2p.Envelope, wait bool) bool {
	if !p.IsRunning() || !p.hasChannel(e.ChannelID) {
		return false
	}
	b, err := marshal(e.Message)
	if err != nil {
		p.Logger.Error("marshaling message to send", "error", err)
		return false
	}
	return p.sendBytes(e.ChannelID, b, wait, metricLabel(e.Message))
}

// sendBytes queues b, already marshalled, on channel chID.
func (p *peer) sendBytes(chID byte, b []byte, wait bool, label string) bool {
	if !p.IsRunning() || !p.hasChannel(chID) {
		return false
	}
	ch := p.sw.channels[chID]
	if ch == nil {
		return false
	}
	err := ch.TrySend(p.id, b)
	if wait && errors.Is(err, ringwire.ErrFull) {
		ctx, cancel := context.WithTimeout(p.ctx, sendTimeout)
		err = ch.Send(ctx, p.id, b)
		cancel()
	}
	if err != nil {
		return false
	}
	p.sw.metrics.PeerSendBytesTotal.With("peer_id", string(p.ID()), "chID", fmt.Sprintf("%#x", chID)).Add(float64(len(b)))
	p.sw.metrics.MessageSendBytesTotal.With("message_type", label).Add(float64(len(b)))
	return true
}

// Get returns the data stored under key.
func (p *peer) Get(key string) any { return p.data.Get(key) }

// Set stores data under key.
func (p *peer) Set(key string, data any) { p.data.Set(key, data) }

// SetRemovalFailed marks that removing the peer from the peer set failed.
func (p *peer) SetRemovalFailed() { p.removalFailed.Store(true) }

// GetRemovalFailed says whether removing the peer from the peer set failed.
func (p *peer) GetRemovalFailed() bool { return p.removalFailed.Load() }

// hasChannel says whether the peer's NodeInfo lists chID.
func (p *peer) hasChannel(chID byte) bool { return p.nodeInfo.HasChannel(chID) }

// marshal wraps msg when it is a p2p.Wrapper and marshals it (stock's Peer.Send).
func marshal(msg proto.Message) ([]byte, error) {
	if w, ok := msg.(p2p.Wrapper); ok {
		msg = w.Wrap()
	}
	return proto.Marshal(msg)
}

// labelRegexp and labels are stock's metricsLabelCache: a message type's metric label is
// "package_Type".
var (
	labelRegexp = regexp.MustCompile(`\*?(\w+)\.(.*)`)
	labels      sync.Map // reflect.Type -> string
)

// metricLabel is the message_type label stock gives msg's type.
func metricLabel(msg any) string {
	t := reflect.TypeOf(msg)
	if l, ok := labels.Load(t); ok {
		return l.(string)
	}
	l := "unknown"
	if ss := labelRegexp.FindStringSubmatch(t.String()); len(ss) == 3 {
		l = ss[1] + "_" + ss[2]
	}
	labels.Store(t, l)
	return l
}

// BroadcastAsync sends the envelope to every peer, each on its own goroutine waiting up to
// 10 s (as stock); the message is marshalled once.
func (sw *Switch) BroadcastAsync(e p2p.Envelope) {
	b, err := marshal(e.Message)
	if err != nil {
		sw.Logger.Error("marshaling message to broadcast", "error", err)
		return
	}
	label := metricLabel(e.Message)
	sw.peers.ForEach(func(p p2p.Peer) {
		if rp, ok := p.(*peer); ok {
			go rp.sendBytes(e.ChannelID, b, true, label)
		} else {
			go p.Send(e)
		}
	})
}

// TryBroadcast sends the envelope to every peer whose queue has room, without waiting; the
// message is marshalled once.
func (sw *Switch) TryBroadcast(e p2p.Envelope) {
	b, err := marshal(e.Message)
	if err != nil {
		sw.Logger.Error("marshaling message to broadcast", "error", err)
		return
	}
	label := metricLabel(e.Message)
	sw.peers.ForEach(func(p p2p.Peer) {
		if rp, ok := p.(*peer); ok {
			rp.sendBytes(e.ChannelID, b, false, label)
		} else {
			p.TrySend(e)
		}
	})
}
