package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p/conn"
	protomem "github.com/cometbft/cometbft/proto/tendermint/mempool"
	"github.com/cometbft/cometbft/types"
)

// maxPayload is the stock default max_packet_msg_payload_size.
const maxPayload = 1024

type channelJSON struct {
	ID                  byte `json:"id"`
	Priority            int  `json:"priority"`
	SendQueueCapacity   int  `json:"send_queue_capacity"`
	RecvMessageCapacity int  `json:"recv_message_capacity"`
}

type sendJSON struct {
	Channel byte     `json:"channel"`
	Data    hexBytes `json:"data"`
}

type streamFile struct {
	CometBFTVersion         string        `json:"cometbft_version"`
	Channels                []channelJSON `json:"channels"`
	Sends                   []sendJSON    `json:"sends"`
	Stream                  hexBytes      `json:"stream"`
	MaxPacketMsgPayloadSize int           `json:"max_packet_msg_payload_size"`
}

// mempoolRecvCap is what the stock mempool reactor declares: the encoded size
// of a Txs message carrying one transaction of the default max_tx_bytes.
func mempoolRecvCap() int {
	largest := make([]byte, config.DefaultMempoolConfig().MaxTxBytes)
	msg := protomem.Message{Sum: &protomem.Message_Txs{Txs: &protomem.Txs{Txs: [][]byte{largest}}}}
	return msg.Size()
}

// blocksyncRecvCap is stock blocksync.MaxMsgSize: the largest block plus the
// 4-byte prefix and 1-byte field key of a BlockResponse (blocksync/msgs.go).
// It is spelled out here because importing the blocksync package pulls in the
// whole consensus stack.
const blocksyncRecvCap = types.MaxBlockSizeBytes + 4 + 1

// stockChannelDescs are the ten channels of the stock reactors with their
// stock priorities, send queue capacities and receive message capacities.
func stockChannelDescs() []*conn.ChannelDescriptor {
	const mib = 1048576
	return []*conn.ChannelDescriptor{
		{ID: 0x00, Priority: 1, SendQueueCapacity: 10, RecvMessageCapacity: 64000},
		{ID: 0x20, Priority: 6, SendQueueCapacity: 100, RecvMessageCapacity: mib},
		{ID: 0x21, Priority: 10, SendQueueCapacity: 100, RecvMessageCapacity: mib},
		{ID: 0x22, Priority: 7, SendQueueCapacity: 100, RecvMessageCapacity: mib},
		{ID: 0x23, Priority: 1, SendQueueCapacity: 2, RecvMessageCapacity: mib},
		{ID: 0x30, Priority: 5, SendQueueCapacity: 1, RecvMessageCapacity: mempoolRecvCap()},
		{ID: 0x38, Priority: 6, SendQueueCapacity: 1, RecvMessageCapacity: mib},
		{ID: 0x40, Priority: 5, SendQueueCapacity: 1000, RecvBufferCapacity: 50 * 4096, RecvMessageCapacity: blocksyncRecvCap},
		{ID: 0x60, Priority: 5, SendQueueCapacity: 10, RecvMessageCapacity: 4000000},
		{ID: 0x61, Priority: 3, SendQueueCapacity: 10, RecvMessageCapacity: 16000000},
	}
}

// streamSends is the sequence of whole messages sent, one at a time.
var streamSends = []sendJSON{
	{0x20, pattern(1, 0x21)},
	{0x22, pattern(1024, 0x22)},
	{0x21, pattern(1025, 0x23)},
	{0x40, pattern(5000, 0x24)},
	{0x30, []byte{}},
	{0x00, pattern(1, 0x25)},
	{0x23, pattern(3, 0x26)},
	{0x38, pattern(1023, 0x27)},
	{0x60, pattern(2048, 0x28)},
	{0x61, pattern(2049, 0x29)},
}

type received struct {
	ch  byte
	msg []byte
}

func genStream() (*streamFile, error) {
	descs := stockChannelDescs()
	cfg := conn.DefaultMConnConfig()
	if cfg.MaxPacketMsgPayloadSize != maxPayload {
		return nil, fmt.Errorf("stock default payload size is %d", cfg.MaxPacketMsgPayloadSize)
	}
	cfg.PingInterval = time.Hour // no ping during the capture
	cfg.PongTimeout = 45 * time.Second

	pipeS, pipeR := net.Pipe()
	rec := newRecordingConn(pipeS)
	got := make(chan received, len(streamSends))
	failures := make(chan any, 4)
	onError := func(r any) {
		select {
		case failures <- r:
		default:
		}
	}
	sender := conn.NewMConnectionWithConfig(rec, descs, func(byte, []byte) {}, onError, cfg)
	receiver := conn.NewMConnectionWithConfig(pipeR, descs, func(ch byte, msg []byte) {
		got <- received{ch, bytes.Clone(msg)}
	}, onError, cfg)
	sender.SetLogger(log.NewNopLogger())
	receiver.SetLogger(log.NewNopLogger())
	if err := receiver.Start(); err != nil {
		return nil, err
	}
	if err := sender.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = sender.Stop()
		_ = receiver.Stop()
	}()

	for i, s := range streamSends {
		if !sender.Send(s.Channel, s.Data) {
			return nil, fmt.Errorf("send %d: stock Send refused", i)
		}
		select {
		case r := <-got:
			if r.ch != s.Channel || !bytes.Equal(r.msg, s.Data) {
				return nil, fmt.Errorf("send %d: stock receiver got %d bytes on %#x", i, len(r.msg), r.ch)
			}
		case f := <-failures:
			return nil, fmt.Errorf("send %d: stock connection failed: %v", i, f)
		case <-time.After(handshakeWait):
			return nil, fmt.Errorf("send %d: not received", i)
		}
	}
	stream := rec.Written()

	if err := checkStream(stream); err != nil {
		return nil, err
	}
	channels := make([]channelJSON, 0, len(descs))
	for _, d := range descs {
		channels = append(channels, channelJSON{d.ID, d.Priority, d.SendQueueCapacity, d.RecvMessageCapacity})
	}
	return &streamFile{
		CometBFTVersion:         cometBFTVersion,
		Channels:                channels,
		Sends:                   streamSends,
		Stream:                  stream,
		MaxPacketMsgPayloadSize: maxPayload,
	}, nil
}

// checkStream confirms the captured stream is exactly the chunking model
// documented in testdata/README.md: each message becomes ceil(len/1024)
// PacketMsgs (one empty eof packet for an empty message), eof on the last.
func checkStream(stream []byte) error {
	var want []byte
	for _, s := range streamSends {
		data := s.Data
		for {
			n := min(len(data), maxPayload)
			eof := n == len(data)
			enc, err := encodePacket(msgPacket(int32(s.Channel), eof, data[:n]))
			if err != nil {
				return err
			}
			want = append(want, enc...)
			data = data[n:]
			if eof {
				break
			}
		}
	}
	if !bytes.Equal(stream, want) {
		return errors.New("stock MConnection stream differs from the chunking model")
	}
	r := bytes.NewReader(stream)
	for r.Len() > 0 {
		if _, err := readPacket(r); err != nil {
			return fmt.Errorf("stream does not parse as stock packets: %w", err)
		}
	}
	return nil
}
