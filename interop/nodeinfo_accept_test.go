package interop

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/libs/protoio"
	"github.com/cometbft/cometbft/p2p"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
	"github.com/cometbft/cometbft/version"
)

// ringwireNodeInfoFile holds one line: the hex of the uvarint-delimited
// NodeInfo message a ringwire node writes during the connection handshake.
var ringwireNodeInfoFile = filepath.Join("..", "testdata", "ringwire_nodeinfo.hex")

// capabilityChannel is the extra channel ringwire advertises.
const capabilityChannel = 0xF0

// stockChannels are the channels a stock node with PEX on advertises, in stock order.
var stockChannels = []byte{0x40, 0x20, 0x21, 0x22, 0x23, 0x30, 0x38, 0x60, 0x61, 0x00}

// TestStockAcceptsRingwireNodeInfo decodes ringwire's NodeInfo exactly as the
// stock transport handshake does and runs the stock checks a stock node
// applies before it accepts the peer.
func TestStockAcceptsRingwireNodeInfo(t *testing.T) {
	text, err := os.ReadFile(ringwireNodeInfoFile)
	if err != nil {
		t.Fatalf("cannot read %s: %v\nThis file must hold the hex of the uvarint-delimited NodeInfo "+
			"a ringwire node sends; it is produced by the Rust side and committed with it.", ringwireNodeInfoFile, err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatalf("%s is not one line of hex: %v", ringwireNodeInfoFile, err)
	}

	// Stock transport: protoio delimited reader limited to MaxNodeInfoSize,
	// then DefaultNodeInfoFromToProto.
	var pb tmp2p.DefaultNodeInfo
	n, err := protoio.NewDelimitedReader(bytes.NewReader(raw), p2p.MaxNodeInfoSize()).ReadMsg(&pb)
	if err != nil {
		t.Fatalf("stock reader rejects ringwire's NodeInfo: %v", err)
	}
	if n != len(raw) {
		t.Fatalf("ringwire's NodeInfo is followed by %d extra bytes; stock would read them as the next message", len(raw)-n)
	}
	peer, err := p2p.DefaultNodeInfoFromToProto(&pb)
	if err != nil {
		t.Fatalf("stock conversion rejects ringwire's NodeInfo: %v", err)
	}

	if err := peer.Validate(); err != nil {
		t.Fatalf("stock Validate() rejects ringwire's NodeInfo: %v", err)
	}

	local := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   "0303030303030303030303030303030303030303",
		ListenAddr:      "tcp://0.0.0.0:26656",
		Network:         peer.Network,
		Version:         version.TMCoreSemVer,
		Channels:        stockChannels,
		Moniker:         "stock",
		Other:           p2p.DefaultNodeInfoOther{TxIndex: "on", RPCAddress: "tcp://127.0.0.1:26657"},
	}
	if err := local.Validate(); err != nil {
		t.Fatalf("the stock reference NodeInfo is itself invalid: %v", err)
	}
	if peer.ID() == local.ID() {
		t.Fatalf("ringwire's NodeInfo uses the reference node's ID %s", peer.ID())
	}
	if err := local.CompatibleWith(peer); err != nil {
		t.Fatalf("stock CompatibleWith() rejects ringwire's NodeInfo: %v", err)
	}
	if !peer.HasChannel(capabilityChannel) {
		t.Fatalf("ringwire's NodeInfo does not advertise the capability channel %#x; channels: %x",
			capabilityChannel, []byte(peer.Channels))
	}

	// Not required for acceptance, but worth knowing: does stock re-encode
	// the decoded NodeInfo to the same bytes?
	var again bytes.Buffer
	if _, err := protoio.NewDelimitedWriter(&again).WriteMsg(peer.ToProto()); err != nil {
		t.Fatalf("stock cannot re-encode ringwire's NodeInfo: %v", err)
	}
	if !bytes.Equal(again.Bytes(), raw) {
		t.Logf("note: stock re-encodes ringwire's NodeInfo differently:\n ringwire %x\n stock    %x", raw, again.Bytes())
	}
}
