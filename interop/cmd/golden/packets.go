package main

import (
	"bytes"
	"fmt"

	"github.com/cosmos/gogoproto/proto"

	"github.com/cometbft/cometbft/libs/protoio"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
)

// maxPacketSize is the largest Packet a stock receiver accepts with the
// default 1024-byte payload limit: the encoding of a PacketMsg on channel
// 0x01 with eof=true and 1024 data bytes (stock computes it the same way).
const maxPacketSize = 1034

type packetVector struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	ChannelID int32    `json:"channel_id"`
	EOF       bool     `json:"eof"`
	Data      hexBytes `json:"data"`
	Encoded   hexBytes `json:"encoded"`
}

type packetsFile struct {
	CometBFTVersion string         `json:"cometbft_version"`
	Packets         []packetVector `json:"packets"`
}

func pingPacket() *tmp2p.Packet {
	return &tmp2p.Packet{Sum: &tmp2p.Packet_PacketPing{PacketPing: &tmp2p.PacketPing{}}}
}

func pongPacket() *tmp2p.Packet {
	return &tmp2p.Packet{Sum: &tmp2p.Packet_PacketPong{PacketPong: &tmp2p.PacketPong{}}}
}

func msgPacket(ch int32, eof bool, data []byte) *tmp2p.Packet {
	return &tmp2p.Packet{Sum: &tmp2p.Packet_PacketMsg{PacketMsg: &tmp2p.PacketMsg{
		ChannelID: ch, EOF: eof, Data: data,
	}}}
}

// encodePacket returns exactly what the stock MConnection send routine writes
// for a packet: protoio's uvarint-delimited writer over the Packet.
func encodePacket(p *tmp2p.Packet) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := protoio.NewDelimitedWriter(&buf).WriteMsg(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readPacket decodes one packet as the stock receive routine does (limit maxPacketSize).
func readPacket(r *bytes.Reader) (*tmp2p.Packet, error) {
	var p tmp2p.Packet
	if _, err := protoio.NewDelimitedReader(r, maxPacketSize).ReadMsg(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

func genPackets() (*packetsFile, error) {
	// Stock sizes its receive limit as proto.Marshal of this exact packet.
	limit, err := proto.Marshal(msgPacket(0x01, true, make([]byte, maxPayload)))
	if err != nil {
		return nil, err
	}
	if len(limit) != maxPacketSize {
		return nil, fmt.Errorf("stock packet limit is %d, not %d", len(limit), maxPacketSize)
	}
	type spec struct {
		name string
		kind string
		ch   int32
		eof  bool
		data []byte
	}
	specs := []spec{
		{"ping", "ping", 0, false, nil},
		{"pong", "pong", 0, false, nil},
		{"msg_ch00_empty_eof", "msg", 0x00, true, nil},
		{"msg_ch00_empty_not_eof", "msg", 0x00, false, nil},
		{"msg_ch00_1_byte_eof", "msg", 0x00, true, pattern(1, 0x10)},
		{"msg_ch20_1_byte_eof", "msg", 0x20, true, pattern(1, 0x11)},
		{"msg_ch20_1_byte_not_eof", "msg", 0x20, false, pattern(1, 0x12)},
		{"msg_ch20_1024_bytes_eof", "msg", 0x20, true, pattern(1024, 0x13)},
		{"msg_ch20_1024_bytes_not_eof", "msg", 0x20, false, pattern(1024, 0x14)},
		{"msg_ch40_1_byte_eof", "msg", 0x40, true, pattern(1, 0x15)},
		{"msg_ch40_1024_bytes_eof", "msg", 0x40, true, pattern(1024, 0x16)},
		{"msg_ch40_1024_bytes_not_eof", "msg", 0x40, false, pattern(1024, 0x17)},
		{"msg_ch61_200_bytes_eof", "msg", 0x61, true, pattern(200, 0x18)},
		{"msg_ch61_empty_eof", "msg", 0x61, true, nil},
	}
	file := &packetsFile{CometBFTVersion: cometBFTVersion}
	for _, s := range specs {
		var p *tmp2p.Packet
		switch s.kind {
		case "ping":
			p = pingPacket()
		case "pong":
			p = pongPacket()
		default:
			p = msgPacket(s.ch, s.eof, s.data)
		}
		enc, err := encodePacket(p)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", s.name, err)
		}
		r := bytes.NewReader(enc)
		back, err := readPacket(r)
		if err != nil || r.Len() != 0 {
			return nil, fmt.Errorf("%s: stock receiver would not read it back: %v", s.name, err)
		}
		if msg := back.GetPacketMsg(); s.kind == "msg" &&
			(msg == nil || msg.ChannelID != s.ch || msg.EOF != s.eof || !bytes.Equal(msg.Data, s.data)) {
			return nil, fmt.Errorf("%s: decodes to different fields", s.name)
		}
		file.Packets = append(file.Packets, packetVector{s.name, s.kind, s.ch, s.eof, s.data, enc})
	}
	if err := checkPacketLimit(); err != nil {
		return nil, err
	}
	return file, nil
}

// checkPacketLimit confirms the stock size limit documented in
// testdata/README.md: a full 1024-byte eof chunk fits for channel ids below
// 0x80 but not for ids whose varint takes two bytes.
func checkPacketLimit() error {
	full, err := encodePacket(msgPacket(0x7F, true, make([]byte, 1024)))
	if err != nil {
		return err
	}
	if _, err := readPacket(bytes.NewReader(full)); err != nil {
		return fmt.Errorf("stock rejects a full chunk on channel 0x7f: %w", err)
	}
	wide, err := encodePacket(msgPacket(0xF0, true, make([]byte, 1024)))
	if err != nil {
		return err
	}
	if _, err := readPacket(bytes.NewReader(wide)); err == nil {
		return fmt.Errorf("stock accepts a %d-byte packet; the documented limit is stale", len(wide)-2)
	}
	return nil
}
