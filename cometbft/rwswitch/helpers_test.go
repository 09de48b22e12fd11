package rwswitch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	protomem "github.com/cometbft/cometbft/proto/tendermint/mempool"
	"github.com/cometbft/cometbft/version"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// testNetwork is the chain ID of the tests (stock's p2p.MakeSwitch uses it too).
const testNetwork = "testing"

// testChannel and slowChannel are the channels of the test reactor; its messages are
// mempool messages (a Wrapper and Unwrapper pair: Txs is sent, Message is on the wire).
const (
	testChannel = byte(0x77)
	slowChannel = byte(0x78)
)

// recorder is a reactor that records what the switch does to it, in order.
type recorder struct {
	p2p.BaseReactor
	name     string
	channels []*conn.ChannelDescriptor

	mu      sync.Mutex
	events  []string                  // "init ID", "add ID", "remove ID reason"
	got     map[byte][]p2p.Envelope   // received envelopes by channel
	release chan struct{}             // Receive on slowChannel waits for it when non-nil
	removed map[p2p.ID]any            // the reason of each RemovePeer
	started map[p2p.ID]bool           // whether the peer ran when AddPeer was called
	peers   map[p2p.ID]p2p.Peer       // peers from AddPeer
	inits   map[p2p.ID]map[string]any // data set in InitPeer and read back
}

func newRecorder(name string, chs ...byte) *recorder {
	r := &recorder{
		name:    name,
		got:     make(map[byte][]p2p.Envelope),
		removed: make(map[p2p.ID]any),
		started: make(map[p2p.ID]bool),
		peers:   make(map[p2p.ID]p2p.Peer),
		inits:   make(map[p2p.ID]map[string]any),
	}
	for _, ch := range chs {
		r.channels = append(r.channels, &conn.ChannelDescriptor{
			ID:                  ch,
			Priority:            5,
			SendQueueCapacity:   10,
			RecvMessageCapacity: 1 << 20,
			MessageType:         &protomem.Message{},
		})
	}
	r.BaseReactor = *p2p.NewBaseReactor(name, r)
	return r
}

func (r *recorder) GetChannels() []*conn.ChannelDescriptor { return r.channels }

func (r *recorder) InitPeer(p p2p.Peer) p2p.Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "init "+string(p.ID()))
	p.Set("recorder", r.name)
	return p
}

func (r *recorder) AddPeer(p p2p.Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "add "+string(p.ID()))
	r.started[p.ID()] = p.IsRunning()
	r.peers[p.ID()] = p
	r.inits[p.ID()] = map[string]any{"recorder": p.Get("recorder")}
}

func (r *recorder) RemovePeer(p p2p.Peer, reason any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "remove "+string(p.ID()))
	r.removed[p.ID()] = reason
}

func (r *recorder) Receive(e p2p.Envelope) {
	if e.ChannelID == slowChannel {
		r.mu.Lock()
		rel := r.release
		r.mu.Unlock()
		if rel != nil {
			<-rel
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[e.ChannelID] = append(r.got[e.ChannelID], e)
}

// received is a copy of the envelopes received on ch.
func (r *recorder) received(ch byte) []p2p.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]p2p.Envelope(nil), r.got[ch]...)
}

// eventsOf is the recorded events of peer id, without the ID.
func (r *recorder) eventsOf(id p2p.ID) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if strings.HasSuffix(e, " "+string(id)) {
			out = append(out, strings.TrimSuffix(e, " "+string(id)))
		}
	}
	return out
}

// removal is the reason RemovePeer gave for id, and whether it was called.
func (r *recorder) removal(id p2p.ID) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reason, ok := r.removed[id]
	return reason, ok
}

// txs is a test message: Txs, which the switch wraps into a Message.
func txs(s ...string) *protomem.Txs {
	m := &protomem.Txs{}
	for _, t := range s {
		m.Txs = append(m.Txs, []byte(t))
	}
	return m
}

// texts is the transactions of a received envelope (unwrapped to Txs by the switch).
func texts(t *testing.T, e p2p.Envelope) []string {
	t.Helper()
	m, ok := e.Message.(*protomem.Txs)
	if !ok {
		t.Fatalf("received a %T, want *mempool.Txs (unwrapped)", e.Message)
	}
	var out []string
	for _, tx := range m.Txs {
		out = append(out, string(tx))
	}
	return out
}

// eventually fails t unless cond holds within d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newTestSwitch makes a ringwire switch on loopback with the reactors, from a fresh CometBFT
// home (config.toml with allow_duplicate_ip, as `cometbft testnet` writes it, and a new node
// key).
func newTestSwitch(t *testing.T, name string, reactors map[string]p2p.Reactor, tune ...func(*Config)) *Switch {
	t.Helper()
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.SetRoot(home)
	cfg.Moniker = name
	cfg.P2P.ListenAddress = "tcp://127.0.0.1:0"
	cfg.P2P.AllowDuplicateIP = true
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	config.WriteConfigFile(filepath.Join(home, "config", "config.toml"), cfg)
	nk, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	c := Config{
		Ringwire: ringwire.Config{Home: home, Shards: 1},
		P2P:      cfg.P2P,
		NodeInfo: p2p.DefaultNodeInfo{
			ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
			DefaultNodeID:   nk.ID(),
			ListenAddr:      "127.0.0.1:0",
			Network:         testNetwork,
			Version:         "0.40.0-ringwire-test",
			Moniker:         name,
			Other:           p2p.DefaultNodeInfoOther{TxIndex: "off", RPCAddress: "tcp://127.0.0.1:1"},
		},
	}
	for _, f := range tune {
		f(&c)
	}
	sw := New(c)
	sw.SetLogger(log.TestingLogger().With("switch", name))
	for n, r := range reactors {
		sw.AddReactor(n, r)
	}
	if err := sw.Start(); err != nil {
		t.Fatalf("starting switch %s: %v", name, err)
	}
	t.Cleanup(func() {
		if sw.IsRunning() {
			_ = sw.Stop()
		}
	})
	return sw
}

// peerOf is sw's peer id, or fails t.
func peerOf(t *testing.T, sw p2p.Switcher, id p2p.ID) p2p.Peer {
	t.Helper()
	var p p2p.Peer
	eventually(t, 10*time.Second, fmt.Sprintf("peer %s", id), func() bool {
		p = sw.Peers().Get(id)
		return p != nil
	})
	return p
}

// errorsAs is errors.As.
func errorsAs(err error, target any) bool { return errors.As(err, target) }
