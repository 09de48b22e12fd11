package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cometbft/cometbft/libs/protoio"
	"github.com/cometbft/cometbft/p2p"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
	"github.com/cometbft/cometbft/version"
)

// capabilityChannel is the extra channel id ringwire advertises in NodeInfo.
const capabilityChannel = 0xF0

// stockChannels is the channel list a stock node advertises, in stock order
// (blocksync, consensus state/data/vote/vote-set-bits, mempool, evidence,
// statesync snapshots/chunks, PEX).
var stockChannels = []byte{0x40, 0x20, 0x21, 0x22, 0x23, 0x30, 0x38, 0x60, 0x61, 0x00}

type niProtocol struct {
	P2P   uint64 `json:"p2p"`
	Block uint64 `json:"block"`
	App   uint64 `json:"app"`
}

type niOther struct {
	TxIndex    string `json:"tx_index"`
	RPCAddress string `json:"rpc_address"`
}

type nodeInfoJSON struct {
	ProtocolVersion niProtocol `json:"protocol_version"`
	DefaultNodeID   string     `json:"default_node_id"`
	ListenAddr      string     `json:"listen_addr"`
	Network         string     `json:"network"`
	Version         string     `json:"version"`
	Channels        hexBytes   `json:"channels"`
	Moniker         string     `json:"moniker"`
	Other           niOther    `json:"other"`
}

func niToJSON(ni p2p.DefaultNodeInfo) nodeInfoJSON {
	return nodeInfoJSON{
		ProtocolVersion: niProtocol{ni.ProtocolVersion.P2P, ni.ProtocolVersion.Block, ni.ProtocolVersion.App},
		DefaultNodeID:   string(ni.DefaultNodeID),
		ListenAddr:      ni.ListenAddr,
		Network:         ni.Network,
		Version:         ni.Version,
		Channels:        hexBytes(ni.Channels),
		Moniker:         ni.Moniker,
		Other:           niOther{ni.Other.TxIndex, ni.Other.RPCAddress},
	}
}

type niEncoding struct {
	Name     string       `json:"name"`
	NodeInfo nodeInfoJSON `json:"node_info"`
	Encoded  hexBytes     `json:"encoded"`
}

type niValidateCase struct {
	Name     string       `json:"name"`
	NodeInfo nodeInfoJSON `json:"node_info"`
	OK       bool         `json:"ok"`
	Error    string       `json:"error"`
}

type niCompatCase struct {
	Name  string       `json:"name"`
	A     nodeInfoJSON `json:"a"`
	B     nodeInfoJSON `json:"b"`
	OK    bool         `json:"ok"`
	Error string       `json:"error"`
}

type nodeInfoFile struct {
	CometBFTVersion string           `json:"cometbft_version"`
	Encodings       []niEncoding     `json:"encodings"`
	ValidateCases   []niValidateCase `json:"validate_cases"`
	CompatCases     []niCompatCase   `json:"compat_cases"`
}

// baseNodeInfo is a NodeInfo as a stock node with PEX on would send.
func baseNodeInfo() p2p.DefaultNodeInfo {
	return p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   p2p.PubKeyToID(nodeKey(0x01).PubKey()),
		ListenAddr:      "tcp://0.0.0.0:26656",
		Network:         "ringwire-golden-1",
		Version:         version.TMCoreSemVer,
		Channels:        bytes.Clone(stockChannels),
		Moniker:         "golden-a",
		Other: p2p.DefaultNodeInfoOther{
			TxIndex:    "on",
			RPCAddress: "tcp://127.0.0.1:26657",
		},
	}
}

// with returns a copy of the base NodeInfo changed by f.
func with(f func(ni *p2p.DefaultNodeInfo)) p2p.DefaultNodeInfo {
	ni := baseNodeInfo()
	f(&ni)
	return ni
}

// ringwireNodeInfo is a NodeInfo as ringwire sends it: the stock channels plus
// the capability channel, under node B's identity.
func ringwireNodeInfo() p2p.DefaultNodeInfo {
	return with(func(ni *p2p.DefaultNodeInfo) {
		ni.DefaultNodeID = p2p.PubKeyToID(nodeKey(0x02).PubKey())
		ni.Moniker = "golden-b"
		ni.Channels = append(ni.Channels, capabilityChannel)
	})
}

// encodeNodeInfo returns exactly what the stock transport handshake writes:
// protoio's uvarint-delimited writer over DefaultNodeInfo.ToProto().
func encodeNodeInfo(ni p2p.DefaultNodeInfo) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := protoio.NewDelimitedWriter(&buf).WriteMsg(ni.ToProto()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeNodeInfo reads a NodeInfo the way the stock transport handshake does
// and insists that the whole input was one message.
func decodeNodeInfo(raw []byte) (p2p.DefaultNodeInfo, error) {
	var pb tmp2p.DefaultNodeInfo
	n, err := protoio.NewDelimitedReader(bytes.NewReader(raw), p2p.MaxNodeInfoSize()).ReadMsg(&pb)
	if err != nil {
		return p2p.DefaultNodeInfo{}, err
	}
	if n != len(raw) {
		return p2p.DefaultNodeInfo{}, fmt.Errorf("%d trailing bytes after the NodeInfo", len(raw)-n)
	}
	return p2p.DefaultNodeInfoFromToProto(&pb)
}

func genNodeInfo() (*nodeInfoFile, error) {
	file := &nodeInfoFile{CometBFTVersion: cometBFTVersion}

	encodings := []struct {
		name string
		ni   p2p.DefaultNodeInfo
	}{
		{"stock_default", baseNodeInfo()},
		{"ringwire_with_capability_channel", ringwireNodeInfo()},
		{"stock_without_pex", with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = ni.Channels[:9] })},
		{"all_fields_empty", p2p.DefaultNodeInfo{}},
		{"app_version_and_p2p_9", with(func(ni *p2p.DefaultNodeInfo) {
			ni.ProtocolVersion = p2p.NewProtocolVersion(9, 11, 1)
			ni.Version = "1.0.1"
		})},
		{"tx_index_off_no_rpc", with(func(ni *p2p.DefaultNodeInfo) {
			ni.Other = p2p.DefaultNodeInfoOther{TxIndex: "off"}
		})},
		{"long_moniker_200", with(func(ni *p2p.DefaultNodeInfo) { ni.Moniker = strings.Repeat("m", 200) })},
		{"large_versions", with(func(ni *p2p.DefaultNodeInfo) {
			ni.ProtocolVersion = p2p.NewProtocolVersion(300, 1<<40, ^uint64(0))
		})},
	}
	for _, e := range encodings {
		enc, err := encodeNodeInfo(e.ni)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.name, err)
		}
		back, err := decodeNodeInfo(enc)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", e.name, err)
		}
		again, err := encodeNodeInfo(back)
		if err != nil || !bytes.Equal(again, enc) {
			return nil, fmt.Errorf("%s does not survive a stock decode/encode round trip", e.name)
		}
		file.Encodings = append(file.Encodings, niEncoding{e.name, niToJSON(e.ni), enc})
	}

	idA := string(baseNodeInfo().DefaultNodeID)
	validate := []struct {
		name string
		ni   p2p.DefaultNodeInfo
	}{
		{"valid_stock_default", baseNodeInfo()},
		{"valid_ringwire_with_capability_channel", ringwireNodeInfo()},
		{"valid_listen_addr_without_protocol", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "192.0.2.7:26656" })},
		{"valid_listen_addr_ipv6", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "tcp://[2001:db8::1]:26656" })},
		{"valid_uppercase_id", with(func(ni *p2p.DefaultNodeInfo) { ni.DefaultNodeID = p2p.ID(strings.ToUpper(idA)) })},
		{"valid_empty_version", with(func(ni *p2p.DefaultNodeInfo) { ni.Version = "" })},
		{"valid_no_channels", with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = nil })},
		{"valid_16_channels", with(func(ni *p2p.DefaultNodeInfo) {
			ni.Channels = append(ni.Channels, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5)
		})},
		{"valid_tx_index_off", with(func(ni *p2p.DefaultNodeInfo) { ni.Other.TxIndex = "off" })},
		{"valid_tx_index_empty", with(func(ni *p2p.DefaultNodeInfo) { ni.Other.TxIndex = "" })},
		{"valid_rpc_address_empty", with(func(ni *p2p.DefaultNodeInfo) { ni.Other.RPCAddress = "" })},
		{"valid_network_empty", with(func(ni *p2p.DefaultNodeInfo) { ni.Network = "" })},
		{"valid_moniker_inner_spaces", with(func(ni *p2p.DefaultNodeInfo) { ni.Moniker = " my node " })},
		{"bad_id_empty", with(func(ni *p2p.DefaultNodeInfo) { ni.DefaultNodeID = "" })},
		{"bad_id_not_hex", with(func(ni *p2p.DefaultNodeInfo) { ni.DefaultNodeID = p2p.ID("zz" + idA[2:]) })},
		{"bad_id_odd_length", with(func(ni *p2p.DefaultNodeInfo) { ni.DefaultNodeID = p2p.ID(idA[:39]) })},
		{"bad_id_19_bytes", with(func(ni *p2p.DefaultNodeInfo) { ni.DefaultNodeID = p2p.ID(idA[:38]) })},
		{"bad_id_21_bytes", with(func(ni *p2p.DefaultNodeInfo) { ni.DefaultNodeID = p2p.ID(idA + "00") })},
		{"bad_listen_addr_empty", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "" })},
		{"bad_listen_addr_no_port", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "tcp://192.0.2.7" })},
		{"bad_listen_addr_empty_host", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "tcp://:26656" })},
		{"bad_listen_addr_port_out_of_range", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "192.0.2.7:70000" })},
		{"bad_listen_addr_port_not_number", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "192.0.2.7:http" })},
		{"bad_listen_addr_contains_at", with(func(ni *p2p.DefaultNodeInfo) { ni.ListenAddr = "x@192.0.2.7:26656" })},
		{"bad_version_non_ascii", with(func(ni *p2p.DefaultNodeInfo) { ni.Version = "0.39.0-\u00e9" })},
		{"bad_version_tab", with(func(ni *p2p.DefaultNodeInfo) { ni.Version = "0.39\t0" })},
		{"bad_version_only_spaces", with(func(ni *p2p.DefaultNodeInfo) { ni.Version = "   " })},
		{"bad_17_channels", with(func(ni *p2p.DefaultNodeInfo) {
			ni.Channels = append(ni.Channels, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6)
		})},
		{"bad_duplicate_channel", with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = append(ni.Channels, 0x20) })},
		{"bad_moniker_empty", with(func(ni *p2p.DefaultNodeInfo) { ni.Moniker = "" })},
		{"bad_moniker_only_spaces", with(func(ni *p2p.DefaultNodeInfo) { ni.Moniker = "  " })},
		{"bad_moniker_non_ascii", with(func(ni *p2p.DefaultNodeInfo) { ni.Moniker = "n\u00f6de" })},
		{"bad_moniker_newline", with(func(ni *p2p.DefaultNodeInfo) { ni.Moniker = "node\n" })},
		{"bad_tx_index", with(func(ni *p2p.DefaultNodeInfo) { ni.Other.TxIndex = "yes" })},
		{"bad_tx_index_uppercase", with(func(ni *p2p.DefaultNodeInfo) { ni.Other.TxIndex = "ON" })},
		{"bad_rpc_address_non_ascii", with(func(ni *p2p.DefaultNodeInfo) { ni.Other.RPCAddress = "tcp://h\u00f6st:26657" })},
		{"bad_rpc_address_only_spaces", with(func(ni *p2p.DefaultNodeInfo) { ni.Other.RPCAddress = " " })},
	}
	for _, c := range validate {
		err := c.ni.Validate()
		if strings.HasPrefix(c.name, "valid_") != (err == nil) {
			return nil, fmt.Errorf("validate case %s: stock verdict %v does not match the case name", c.name, err)
		}
		file.ValidateCases = append(file.ValidateCases, niValidateCase{c.name, niToJSON(c.ni), err == nil, errText(err)})
	}

	compat := []struct {
		name string
		a, b p2p.DefaultNodeInfo
	}{
		{"same", baseNodeInfo(), baseNodeInfo()},
		{"stock_a_ringwire_b_capability_channel", baseNodeInfo(), ringwireNodeInfo()},
		{"ringwire_a_capability_channel_stock_b", ringwireNodeInfo(), baseNodeInfo()},
		{"different_p2p_version_ignored", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.ProtocolVersion.P2P = 9 })},
		{"different_app_version_ignored", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.ProtocolVersion.App = 7 })},
		{"different_software_version_ignored", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.Version = "1.0.1" })},
		{"one_common_channel", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = []byte{0x61, 0xF0} })},
		{"a_without_channels_accepts_anything", with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = nil }),
			with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = []byte{0xF0} })},
		{"different_block_version", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.ProtocolVersion.Block = 12 })},
		{"different_network", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.Network = "other-chain" })},
		{"network_case_differs", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.Network = "RINGWIRE-GOLDEN-1" })},
		{"no_common_channel", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = []byte{0xF0, 0xF1} })},
		{"b_without_channels", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) { ni.Channels = nil })},
		{"block_version_checked_before_network", baseNodeInfo(), with(func(ni *p2p.DefaultNodeInfo) {
			ni.ProtocolVersion.Block = 10
			ni.Network = "other-chain"
		})},
	}
	for _, c := range compat {
		err := c.a.CompatibleWith(c.b)
		if compatExpectFail[c.name] == (err == nil) {
			return nil, fmt.Errorf("compat case %s: unexpected stock verdict %v", c.name, err)
		}
		file.CompatCases = append(file.CompatCases, niCompatCase{c.name, niToJSON(c.a), niToJSON(c.b), err == nil, errText(err)})
	}
	return file, nil
}

// compatExpectFail names the compat cases stock is expected to refuse; the
// generator aborts if stock disagrees, so a surprise cannot slip into the file.
var compatExpectFail = map[string]bool{
	"different_block_version":              true,
	"different_network":                    true,
	"network_case_differs":                 true,
	"no_common_channel":                    true,
	"b_without_channels":                   true,
	"block_version_checked_before_network": true,
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
