package main

import (
	"fmt"
	"net"
	"time"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p/conn"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

const (
	// sendQueueCapacity is what the stock consensus reactor gives its channels.
	sendQueueCapacity = 100
	handshakeTimeout  = 10 * time.Second
)

// bulkChannels are the descriptors of the bulk and fanout scenarios.
func bulkChannels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{
		{ID: benchchild.BulkChannel, Priority: benchchild.BulkPriority, SendQueueCapacity: sendQueueCapacity},
	}
}

// latencyChannels are the descriptors of the latency scenario.
func latencyChannels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{
		{ID: benchchild.HiChannel, Priority: benchchild.HiPriority, SendQueueCapacity: sendQueueCapacity},
		{ID: benchchild.LoChannel, Priority: benchchild.LoPriority, SendQueueCapacity: sendQueueCapacity},
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
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	announce(l)
	return l.Accept()
}
