package main

import (
	"fmt"
	"net"
	"time"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p/conn"
)

// Channel ids and priorities. Bulk uses one channel, as a block-part or
// mempool stream would; latency uses a high-priority channel (like consensus
// votes) beside a low-priority one (like mempool transactions).
const (
	bulkChannel = byte(0x30)
	hiChannel   = byte(0x20)
	loChannel   = byte(0x21)

	// sendQueueCapacity is what the stock consensus reactor gives its channels.
	sendQueueCapacity = 100
	handshakeTimeout  = 10 * time.Second
)

func bulkChannels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{
		{ID: bulkChannel, Priority: 5, SendQueueCapacity: sendQueueCapacity},
	}
}

func latencyChannels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{
		{ID: hiChannel, Priority: 10, SendQueueCapacity: sendQueueCapacity},
		{ID: loChannel, Priority: 1, SendQueueCapacity: sendQueueCapacity},
	}
}

// nodeKey is the long-term identity key of this process, as a node has one.
func nodeKey() crypto.PrivKey {
	return ed25519.GenPrivKey()
}

// secure runs the stock SecretConnection handshake on c.
func secure(c net.Conn, key crypto.PrivKey) (*conn.SecretConnection, error) {
	if err := c.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return nil, err
	}
	sc, err := conn.MakeSecretConnection(c, key)
	if err != nil {
		return nil, fmt.Errorf("secret connection handshake: %w", err)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return sc, nil
}

// startMConn wraps c in SecretConnection and a started MConnection.
func startMConn(
	c net.Conn,
	key crypto.PrivKey,
	o *options,
	chans []*conn.ChannelDescriptor,
	onReceive func(byte, []byte),
	onError func(any),
) (*conn.MConnection, error) {
	sc, err := secure(c, key)
	if err != nil {
		return nil, err
	}
	return mconnOver(sc, o, chans, onReceive, onError)
}

// mconnOver starts an MConnection over an established SecretConnection, with
// the rates, flush throttle and packet payload of o.
func mconnOver(
	sc *conn.SecretConnection,
	o *options,
	chans []*conn.ChannelDescriptor,
	onReceive func(byte, []byte),
	onError func(any),
) (*conn.MConnection, error) {
	cfg := conn.DefaultMConnConfig()
	cfg.SendRate = o.sendRate
	cfg.RecvRate = o.recvRate
	cfg.FlushThrottle = o.flushThrottle
	cfg.MaxPacketMsgPayloadSize = o.maxPayload
	m := conn.NewMConnectionWithConfig(sc, chans, onReceive, onError, cfg)
	m.SetLogger(log.NewNopLogger())
	if err := m.Start(); err != nil {
		return nil, err
	}
	return m, nil
}

// acceptOne listens, announces the address and accepts a single connection.
func acceptOne(o *options) (net.Conn, error) {
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	announce(l)
	return l.Accept()
}

// payload is a message body of n bytes with a fixed, non-zero pattern.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}
