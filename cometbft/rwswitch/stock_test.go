package rwswitch

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cometbft/cometbft/abci/example/kvstore"
	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	cmtnet "github.com/cometbft/cometbft/libs/net"
	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
)

// heightState is what the consensus reactor would store on a peer: the mempool reactor waits
// for it before gossiping.
type heightState struct{}

func (heightState) GetHeight() int64 { return 1 }

// withPeerState stores a height on each peer in InitPeer, as the consensus reactor does.
type withPeerState struct{ *recorder }

func (r withPeerState) InitPeer(p p2p.Peer) p2p.Peer {
	p.Set(types.PeerStateKey, heightState{})
	return r.recorder.InitPeer(p)
}

// newMempool is stock's mempool reactor over a kvstore application.
func newMempool(t *testing.T, name string) (*mempool.Reactor, *mempool.CListMempool) {
	t.Helper()
	cfg := config.TestConfig()
	client, err := proxy.NewLocalClientCreator(kvstore.NewInMemoryApplication()).NewABCIClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Stop() })
	mp := mempool.NewCListMempool(cfg.Mempool, proxy.NewAppConnMempool(client, proxy.NopMetrics()), 1)
	mp.SetLogger(log.TestingLogger().With("mempool", name))
	r := mempool.NewReactor(cfg.Mempool, mp, false)
	r.SetLogger(log.TestingLogger().With("mempool", name))
	return r, mp
}

// newStockSwitch is a stock p2p.Switch with stock's own MultiplexTransport, listening on
// loopback: stock's p2p.MakeSwitch, except that the NodeInfo is complete before the
// transport listens (MakeSwitch writes the channels into it after Listen, a data race with an
// early dialer).
func newStockSwitch(t *testing.T, i int, reactors map[string]p2p.Reactor) *p2p.Switch {
	t.Helper()
	cfg := config.DefaultP2PConfig()
	cfg.AllowDuplicateIP = true
	nodeKey := p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
	port, err := cmtnet.GetFreePort()
	if err != nil {
		t.Fatal(err)
	}
	ni := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   nodeKey.ID(),
		ListenAddr:      fmt.Sprintf("127.0.0.1:%d", port),
		Network:         testNetwork,
		Version:         "1.2.3-rc0-deadbeef",
		Moniker:         fmt.Sprintf("node%d", i),
		Other:           p2p.DefaultNodeInfoOther{TxIndex: "on", RPCAddress: "127.0.0.1:1"},
	}
	for _, r := range reactors {
		for _, d := range r.GetChannels() {
			ni.Channels = append(ni.Channels, d.ID)
		}
	}
	addr, err := p2p.NewNetAddressString(p2p.IDAddressString(nodeKey.ID(), ni.ListenAddr))
	if err != nil {
		t.Fatal(err)
	}
	transport := p2p.NewMultiplexTransport(ni, nodeKey, p2p.MConnConfig(cfg))
	if err := transport.Listen(*addr); err != nil {
		t.Fatal(err)
	}
	sw := p2p.NewSwitch(cfg, transport)
	sw.SetLogger(log.TestingLogger().With("switch", i))
	sw.SetNodeKey(&nodeKey)
	sw.SetNodeInfo(ni)
	for n, r := range reactors {
		sw.AddReactor(n, r)
	}
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sw.Stop()
		_ = transport.Close()
	})
	return sw
}

// mempoolHas says whether mp holds tx.
func mempoolHas(mp *mempool.CListMempool, tx types.Tx) bool {
	return slices.ContainsFunc(mp.ReapMaxTxs(-1), func(t types.Tx) bool { return string(t) == string(tx) })
}

// A ringwire switch and stock's own p2p.Switch (stock's MultiplexTransport, MConnection and
// handshake) interoperate through the switch, in both dial directions: reactors see the peer
// added and removed, test envelopes go both ways in order, and stock's real mempool reactor
// gossips transactions both ways (CheckTx on one node, the transaction in the other's mempool,
// through the MsgBytesFilter, the wrap and the unwrap of both sides).
func TestRingwireAndStockSwitch(t *testing.T) {
	rwRec, stockRec, stock2Rec := newRecorder("ringwire", testChannel), newRecorder("stock", testChannel), newRecorder("stock2", testChannel)
	rwMem, rwPool := newMempool(t, "ringwire")
	stockMem, stockPool := newMempool(t, "stock")
	rw := newTestSwitch(t, "ringwire", map[string]p2p.Reactor{"REC": withPeerState{rwRec}, "MEMPOOL": rwMem})
	stock := newStockSwitch(t, 1, map[string]p2p.Reactor{"REC": withPeerState{stockRec}, "MEMPOOL": stockMem})
	idRW, idStock := rw.NodeInfo().ID(), stock.NodeInfo().ID()

	// ringwire dials stock.
	if err := rw.DialPeerWithAddress(stock.NetAddress()); err != nil {
		t.Fatalf("ringwire dialing stock: %v", err)
	}
	pStock := peerOf(t, rw, idStock)
	pRW := peerOf(t, stock, idRW)
	if rp := pStock.(*peer); rp.IsNative() {
		t.Error("a stock peer should speak stock framing")
	}
	if ni := pStock.NodeInfo().(p2p.DefaultNodeInfo); ni.Version != "1.2.3-rc0-deadbeef" || ni.Network != testNetwork {
		t.Errorf("the stock peer's NodeInfo as ringwire sees it: %+v", ni)
	}
	// Stock decoded ringwire's NodeInfo: the reactor's channels and the moniker are there.
	if ni := pRW.NodeInfo().(p2p.DefaultNodeInfo); ni.Moniker != "ringwire" || !ni.HasChannel(testChannel) || !ni.HasChannel(mempool.MempoolChannel) {
		t.Errorf("ringwire's NodeInfo as stock sees it: %+v", ni)
	}
	eventually(t, 5*time.Second, "AddPeer on both sides", func() bool {
		return slices.Equal(rwRec.eventsOf(idStock), []string{"init", "add"}) &&
			slices.Equal(stockRec.eventsOf(idRW), []string{"init", "add"})
	})

	const n = 100
	for i := range n {
		if !pStock.Send(p2p.Envelope{ChannelID: testChannel, Message: txs(fmt.Sprintf("rw%d", i))}) {
			t.Fatalf("ringwire Send %d failed", i)
		}
		if !pRW.Send(p2p.Envelope{ChannelID: testChannel, Message: txs(fmt.Sprintf("st%d", i))}) {
			t.Fatalf("stock Send %d failed", i)
		}
	}
	eventually(t, 10*time.Second, "envelopes both ways", func() bool {
		return len(stockRec.received(testChannel)) == n && len(rwRec.received(testChannel)) == n
	})
	for i := range n {
		if got := texts(t, stockRec.received(testChannel)[i]); got[0] != fmt.Sprintf("rw%d", i) {
			t.Fatalf("stock's envelope %d is %v", i, got)
		}
		e := rwRec.received(testChannel)[i]
		if got := texts(t, e); got[0] != fmt.Sprintf("st%d", i) || e.Src.ID() != idStock {
			t.Fatalf("ringwire's envelope %d is %v from %s", i, got, e.Src.ID())
		}
	}

	// Real mempool reactors gossip transactions both ways.
	txStock, txRW := types.Tx("from-stock=1"), types.Tx("from-ringwire=1")
	if err := stockPool.CheckTx(txStock, nil, mempool.TxInfo{}); err != nil {
		t.Fatal(err)
	}
	if err := rwPool.CheckTx(txRW, nil, mempool.TxInfo{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "transactions gossiped both ways", func() bool {
		return mempoolHas(rwPool, txStock) && mempoolHas(stockPool, txRW)
	})

	// A second stock switch dials ringwire: an inbound stock peer.
	stock2 := newStockSwitch(t, 2, map[string]p2p.Reactor{"REC": withPeerState{stock2Rec}})
	if err := stock2.DialPeerWithAddress(rw.NetAddress()); err != nil {
		t.Fatalf("stock dialing ringwire: %v", err)
	}
	idStock2 := stock2.NodeInfo().ID()
	pIn := peerOf(t, rw, idStock2)
	if pIn.IsOutbound() {
		t.Error("a peer that dialed in is outbound")
	}
	pBack := peerOf(t, stock2, idRW)
	if !pIn.Send(p2p.Envelope{ChannelID: testChannel, Message: txs("to-stock2")}) ||
		!pBack.Send(p2p.Envelope{ChannelID: testChannel, Message: txs("to-ringwire")}) {
		t.Fatal("send on the inbound connection failed")
	}
	eventually(t, 10*time.Second, "envelopes on the inbound connection", func() bool {
		return len(stock2Rec.received(testChannel)) == 1 && len(rwRec.received(testChannel)) == n+1
	})
	if got := texts(t, rwRec.received(testChannel)[n]); got[0] != "to-ringwire" {
		t.Errorf("ringwire received %v from stock2", got)
	}
	// A broadcast reaches both stock peers.
	rw.BroadcastAsync(p2p.Envelope{ChannelID: testChannel, Message: txs("to-all")})
	eventually(t, 10*time.Second, "a broadcast to both stock peers", func() bool {
		return len(stock2Rec.received(testChannel)) == 2 && len(stockRec.received(testChannel)) == n+1
	})

	// Ringwire stops the stock peer for an error: stock sees it go.
	rw.StopPeerForError(pStock, fmt.Errorf("test"))
	if reason, ok := rwRec.removal(idStock); !ok || fmt.Sprint(reason) != "test" {
		t.Errorf("RemovePeer on ringwire's side: %v (called %v)", reason, ok)
	}
	eventually(t, 10*time.Second, "stock removes the ringwire peer", func() bool {
		_, ok := stockRec.removal(idRW)
		return ok && !stock.Peers().Has(idRW)
	})
}
