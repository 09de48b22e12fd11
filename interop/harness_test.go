package interop

// Shared pieces of the process tests: the ringwire peer process (interop/peer, driven over
// stdin/stdout), a stock CometBFT switch with a raw test reactor, and a raw stock-framed
// client built from stock's own SecretConnection for tests that must send what a stock
// switch never would.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/protoio"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	protomem "github.com/cometbft/cometbft/proto/tendermint/mempool"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
	"github.com/cometbft/cometbft/version"
	"github.com/cosmos/gogoproto/proto"
)

// network is the chain id every node in these tests uses.
const network = "interop-chain"

// ---- the ringwire peer process ----------------------------------------------------------

var (
	peerBinOnce sync.Once
	peerBin     string
	peerBinErr  error
)

// peerBinary builds interop/peer with cargo (once per test binary) and returns its path.
func peerBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cargo"); err != nil {
		t.Skip("cargo not found; the ringwire peer cannot be built")
	}
	peerBinOnce.Do(func() {
		cmd := exec.Command("cargo", "build", "-q", "--locked", "-p", "ringwire-interop-peer",
			"--message-format=json-render-diagnostics")
		cmd.Dir = ".."
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			peerBinErr = fmt.Errorf("cargo build -p ringwire-interop-peer: %w", err)
			return
		}
		for _, line := range strings.Split(string(out), "\n") {
			var msg struct {
				Reason     string  `json:"reason"`
				Executable *string `json:"executable"`
				Target     struct {
					Name string `json:"name"`
				} `json:"target"`
			}
			if json.Unmarshal([]byte(line), &msg) == nil && msg.Reason == "compiler-artifact" &&
				msg.Executable != nil && msg.Target.Name == "ringwire-interop-peer" {
				peerBin = *msg.Executable
			}
		}
		if peerBin == "" {
			peerBinErr = fmt.Errorf("cargo did not name the ringwire-interop-peer executable")
		}
	})
	if peerBinErr != nil {
		t.Fatal(peerBinErr)
	}
	return peerBin
}

// rwPeer is a running ringwire peer process.
type rwPeer struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan string // every line except recv lines
	recvs  chan string // "recv ..." lines
	mu     sync.Mutex
	ID     string
	Addr   string // ip:port
}

// startPeer starts the ringwire peer with flags and waits for its ready line.
func startPeer(t *testing.T, args ...string) *rwPeer {
	t.Helper()
	bin := peerBinary(t)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &rwPeer{
		t: t, cmd: cmd, stdin: stdin,
		events: make(chan string, 4096),
		recvs:  make(chan string, 1<<16),
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "recv ") {
				p.recvs <- line
			} else {
				p.events <- line
			}
		}
		close(p.events)
	}()
	t.Cleanup(p.stop)
	ready := p.expect("ready ", 60*time.Second)
	f := strings.Fields(ready)
	p.ID, p.Addr = f[1], f[2]
	return p
}

// stop ends the process (politely first).
func (p *rwPeer) stop() {
	_, _ = io.WriteString(p.stdin, "quit\n")
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// cmdLine sends one command line.
func (p *rwPeer) cmdLine(format string, args ...any) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := fmt.Fprintf(p.stdin, format+"\n", args...); err != nil {
		p.t.Fatalf("writing to the ringwire peer: %v", err)
	}
}

// expect waits for an event line starting with prefix; other lines are logged and skipped.
func (p *rwPeer) expect(prefix string, within time.Duration) string {
	p.t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.events:
			if !ok {
				p.t.Fatalf("ringwire peer exited while waiting for %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
			p.t.Logf("ringwire: %s", line)
		case <-timer.C:
			p.t.Fatalf("no %q line from the ringwire peer within %v", prefix, within)
		}
	}
}

// noEvent fails if an event line starting with prefix arrives within d.
func (p *rwPeer) noEvent(prefix string, d time.Duration) {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case line := <-p.events:
			if strings.HasPrefix(line, prefix) {
				p.t.Fatalf("unexpected line from the ringwire peer: %s", line)
			}
			p.t.Logf("ringwire: %s", line)
		case <-timer.C:
			return
		}
	}
}

// sync waits until the peer has processed every earlier command.
func (p *rwPeer) sync(token string, within time.Duration) {
	p.t.Helper()
	p.cmdLine("sync %s", token)
	p.expect("ok "+token, within)
}

// target is "id@ip:port" for dialing this peer.
func (p *rwPeer) target() string { return p.ID + "@" + p.Addr }

// ---- payloads -----------------------------------------------------------------------------

// payload mirrors interop/peer/src/payload.rs.
func payload(n int, seed uint32) []byte {
	base := seed * 0x9E3779B1
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((base ^ uint32(i)*0x85EBCA6B) >> 24)
	}
	return b
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sizes is the size schedule of count messages on a channel: the first is 1 byte, the last
// is largest, the one before it is the channel's receive cap when that is below largest,
// and the rest are spread log-uniformly between 1 byte and min(largest, 64 KiB).
func sizes(count, recvCap, largest int) []int {
	spread := min(largest, 64<<10)
	out := make([]int, count)
	for k := range out {
		frac := float64((k*7919)%count) / float64(count)
		out[k] = max(1, int(math.Exp(math.Log(float64(spread))*frac)))
	}
	out[0] = 1
	out[count-1] = largest
	if recvCap < largest && count > 2 {
		out[count-2] = recvCap
	}
	return out
}

// ---- stock side ---------------------------------------------------------------------------

// chanSpec is one stock channel: the numbers of the stock reactor that owns it.
type chanSpec struct {
	id       byte
	priority int
	sendQ    int
	recvCap  int
}

// stockChannelSpecs are the ten channels of stock CometBFT reactors (docs/PROTOCOL.md,
// Appendix A.4), in stock's NodeInfo order.
var stockChannelSpecs = []chanSpec{
	{0x40, 5, 1000, 104857605},
	{0x20, 6, 100, 1 << 20},
	{0x21, 10, 100, 1 << 20},
	{0x22, 7, 100, 1 << 20},
	{0x23, 1, 2, 1 << 20},
	{0x30, 5, 1, mempoolCap()},
	{0x38, 6, 1, 1 << 20},
	{0x60, 5, 10, 4000000},
	{0x61, 3, 10, 16000000},
	{0x00, 1, 10, 64000},
}

// mempoolCap is the mempool channel's receive cap as stock's mempool reactor computes it: one
// Txs message holding a transaction of the default max_tx_bytes (4 MiB in v0.40, 1 MiB in
// v0.38, so 4,194,314 and 1,048,583 bytes).
func mempoolCap() int {
	largest := make([]byte, config.DefaultMempoolConfig().MaxTxBytes)
	msg := protomem.Message{Sum: &protomem.Message_Txs{Txs: &protomem.Txs{Txs: [][]byte{largest}}}}
	return msg.Size()
}

// rawMsg passes a message's bytes through stock's proto.Marshal/Unmarshal unchanged, so the
// stock switch carries arbitrary payloads like any reactor's messages.
type rawMsg struct{ B []byte }

func (m *rawMsg) Reset()                   { m.B = nil }
func (m *rawMsg) String() string           { return fmt.Sprintf("raw(%d bytes)", len(m.B)) }
func (*rawMsg) ProtoMessage()              {}
func (m *rawMsg) Marshal() ([]byte, error) { return m.B, nil }
func (m *rawMsg) Unmarshal(b []byte) error { m.B = append([]byte(nil), b...); return nil }
func (m *rawMsg) Merge(src proto.Message) {
	if s, ok := src.(*rawMsg); ok {
		m.B = append([]byte(nil), s.B...)
	}
}

// recvRec is one message a stock reactor received.
type recvRec struct {
	n      int
	digest string
}

// downRec is one peer a stock reactor saw removed.
type downRec struct {
	id     p2p.ID
	reason any
}

// rawReactor runs raw channels on a stock switch and records what arrives.
type rawReactor struct {
	p2p.BaseReactor
	descs []*conn.ChannelDescriptor
	mu    sync.Mutex
	got   map[byte][]recvRec
	up    chan p2p.Peer
	down  chan downRec
}

func newRawReactor(specs []chanSpec) *rawReactor {
	r := &rawReactor{
		got:  map[byte][]recvRec{},
		up:   make(chan p2p.Peer, 64),
		down: make(chan downRec, 64),
	}
	for _, s := range specs {
		r.descs = append(r.descs, &conn.ChannelDescriptor{
			ID: s.id, Priority: s.priority, SendQueueCapacity: s.sendQ,
			RecvMessageCapacity: s.recvCap, MessageType: &rawMsg{},
		})
	}
	r.BaseReactor = *p2p.NewBaseReactor("Raw", r)
	return r
}

func (r *rawReactor) GetChannels() []*conn.ChannelDescriptor { return r.descs }
func (r *rawReactor) AddPeer(p p2p.Peer)                     { r.up <- p }
func (r *rawReactor) RemovePeer(p p2p.Peer, reason any)      { r.down <- downRec{p.ID(), reason} }
func (r *rawReactor) Receive(e p2p.Envelope) {
	m, ok := e.Message.(*rawMsg)
	if !ok {
		return
	}
	r.mu.Lock()
	r.got[e.ChannelID] = append(r.got[e.ChannelID], recvRec{len(m.B), digest(m.B)})
	r.mu.Unlock()
}

// received returns a copy of what arrived on ch so far.
func (r *rawReactor) received(ch byte) []recvRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recvRec(nil), r.got[ch]...)
}

// waitUp waits for the reactor to see a peer.
func (r *rawReactor) waitUp(t *testing.T, within time.Duration) p2p.Peer {
	t.Helper()
	select {
	case p := <-r.up:
		return p
	case <-time.After(within):
		t.Fatalf("the stock switch saw no peer within %v", within)
		return nil
	}
}

// waitDown waits for the reactor to see a peer removed.
func (r *rawReactor) waitDown(t *testing.T, within time.Duration) downRec {
	t.Helper()
	select {
	case d := <-r.down:
		return d
	case <-time.After(within):
		t.Fatalf("the stock switch removed no peer within %v", within)
		return downRec{}
	}
}

// stockNode is a stock switch listening on loopback.
type stockNode struct {
	sw   *p2p.Switch
	key  *p2p.NodeKey
	addr *p2p.NetAddress
}

// freePort picks a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stockNodeInfo is the NodeInfo a stock node with these channels sends.
func stockNodeInfo(id p2p.ID, listen string, channels []byte) p2p.DefaultNodeInfo {
	return p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   id,
		ListenAddr:      listen,
		Network:         network,
		Version:         version.TMCoreSemVer,
		Channels:        channels,
		Moniker:         "stock",
		Other:           p2p.DefaultNodeInfoOther{TxIndex: "off", RPCAddress: ""},
	}
}

// stockOptions tune a stock node.
type stockOptions struct {
	ping, pong time.Duration // 0: stock defaults
	key        *p2p.NodeKey  // nil: a fresh key
}

// startStock starts a stock switch with the given reactors on a free loopback port.
func startStock(t *testing.T, opts stockOptions, reactors map[string]p2p.Reactor) *stockNode {
	t.Helper()
	key := opts.key
	if key == nil {
		key = &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
	}
	cfg := config.DefaultP2PConfig()
	cfg.AllowDuplicateIP = true
	cfg.SendRate = 1 << 30
	cfg.RecvRate = 1 << 30
	mcfg := p2p.MConnConfig(cfg)
	if opts.ping > 0 {
		mcfg.PingInterval = opts.ping
		mcfg.PongTimeout = opts.pong
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var channels []byte
	for _, r := range reactors {
		for _, d := range r.GetChannels() {
			channels = append(channels, d.ID)
		}
	}
	info := stockNodeInfo(key.ID(), listen, channels)
	transport := p2p.NewMultiplexTransport(info, *key, mcfg)
	addr, err := p2p.NewNetAddressString(p2p.IDAddressString(key.ID(), listen))
	if err != nil {
		t.Fatal(err)
	}
	if err := transport.Listen(*addr); err != nil {
		t.Fatal(err)
	}
	sw := p2p.NewSwitch(cfg, transport)
	sw.SetLogger(log.NewNopLogger())
	for name, r := range reactors {
		sw.AddReactor(name, r)
	}
	sw.SetNodeKey(key)
	sw.SetNodeInfo(info)
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sw.Stop()
		_ = transport.Close()
	})
	return &stockNode{sw: sw, key: key, addr: addr}
}

// target is "id@ip:port" for the ringwire peer to dial.
func (s *stockNode) target() string { return string(s.key.ID()) + "@" + s.addr.DialString() }

// dial makes the stock switch dial a ringwire peer (stock checks the authenticated ID).
func (s *stockNode) dial(t *testing.T, p *rwPeer) {
	t.Helper()
	addr, err := p2p.NewNetAddressString(p.target())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.sw.DialPeerWithAddress(addr); err != nil {
		t.Fatalf("stock dial of ringwire %s: %v", p.target(), err)
	}
}

// ---- a raw stock-framed client -------------------------------------------------------------

// rawClient is a connection made of stock's SecretConnection and NodeInfo messages, after
// which the test writes packets itself.
type rawClient struct {
	c    net.Conn
	sc   *conn.SecretConnection
	w    protoio.WriteCloser
	r    protoio.ReadCloser
	info p2p.DefaultNodeInfo // the peer's
	ID   p2p.ID
}

// dialRaw connects to addr, runs stock's SecretConnection handshake and exchanges NodeInfo
// (both sides write first, as stock does).
func dialRaw(t *testing.T, addr string, channels []byte) *rawClient {
	t.Helper()
	return dialRawWith(t, addr, channels, nil)
}

// dialRawWith is dialRaw with our NodeInfo changed by edit before it is sent.
func dialRawWith(t *testing.T, addr string, channels []byte, edit func(*p2p.DefaultNodeInfo)) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	priv := ed25519.GenPrivKey()
	sc, err := conn.MakeSecretConnection(c, priv)
	if err != nil {
		t.Fatalf("stock SecretConnection with ringwire: %v", err)
	}
	id := p2p.PubKeyToID(priv.PubKey())
	ours := stockNodeInfo(id, "127.0.0.1:1", channels)
	if edit != nil {
		edit(&ours)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := protoio.NewDelimitedWriter(sc).WriteMsg(ours.ToProto())
		errc <- err
	}()
	var pb tmp2p.DefaultNodeInfo
	if _, err := protoio.NewDelimitedReader(sc, p2p.MaxNodeInfoSize()).ReadMsg(&pb); err != nil {
		t.Fatalf("reading ringwire's NodeInfo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing our NodeInfo: %v", err)
	}
	theirs, err := p2p.DefaultNodeInfoFromToProto(&pb)
	if err != nil {
		t.Fatal(err)
	}
	if err := theirs.Validate(); err != nil {
		t.Fatalf("stock Validate rejects ringwire's NodeInfo: %v", err)
	}
	if theirs.ID() != p2p.PubKeyToID(sc.RemotePubKey()) {
		t.Fatalf("NodeInfo ID %s, authenticated %s", theirs.ID(), p2p.PubKeyToID(sc.RemotePubKey()))
	}
	_ = c.SetDeadline(time.Time{})
	return &rawClient{
		c: c, sc: sc, info: theirs, ID: id,
		w: protoio.NewDelimitedWriter(sc),
		r: protoio.NewDelimitedReader(sc, 1<<20),
	}
}

// writeMsg writes data on ch as stock chunks of at most chunk bytes.
func (rc *rawClient) writeMsg(t *testing.T, ch byte, data []byte, chunk int) {
	t.Helper()
	for first := true; first || len(data) > 0; first = false {
		n := min(chunk, len(data))
		pkt := &tmp2p.Packet{Sum: &tmp2p.Packet_PacketMsg{PacketMsg: &tmp2p.PacketMsg{
			ChannelID: int32(ch), EOF: n == len(data), Data: data[:n],
		}}}
		if _, err := rc.w.WriteMsg(pkt); err != nil {
			t.Fatalf("raw write: %v", err)
		}
		data = data[n:]
	}
}

// readMsg reads packets until one message is complete; pings are answered with pongs.
func (rc *rawClient) readMsg(within time.Duration) (byte, []byte, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(within))
	defer func() { _ = rc.c.SetReadDeadline(time.Time{}) }()
	var buf bytes.Buffer
	for {
		var pkt tmp2p.Packet
		if _, err := rc.r.ReadMsg(&pkt); err != nil {
			return 0, nil, err
		}
		switch s := pkt.Sum.(type) {
		case *tmp2p.Packet_PacketPing:
			if _, err := rc.w.WriteMsg(&tmp2p.Packet{Sum: &tmp2p.Packet_PacketPong{PacketPong: &tmp2p.PacketPong{}}}); err != nil {
				return 0, nil, err
			}
		case *tmp2p.Packet_PacketMsg:
			buf.Write(s.PacketMsg.Data)
			if s.PacketMsg.EOF {
				return byte(s.PacketMsg.ChannelID), buf.Bytes(), nil
			}
		}
	}
}

// expectClosed reads until the peer closes the connection.
func (rc *rawClient) expectClosed(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, _, err := rc.readMsg(time.Until(deadline)); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			return
		}
	}
	t.Fatalf("the connection is still open after %v", within)
}

// ---- a byte-counting TCP proxy -------------------------------------------------------------

// proxy forwards one TCP connection to target and counts the bytes sent towards target.
type proxy struct {
	Addr string
	done chan int64 // the count, once the connection has closed
}

// startProxy listens on loopback and forwards the first connection it accepts to target.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{Addr: l.Addr().String(), done: make(chan int64, 1)}
	go func() {
		defer l.Close()
		in, err := l.Accept()
		if err != nil {
			p.done <- -1
			return
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			_ = in.Close()
			p.done <- -1
			return
		}
		go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		n, _ := io.Copy(out, in)
		_ = out.Close()
		p.done <- n
	}()
	return p
}
