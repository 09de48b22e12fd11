package main

import (
	"context"
	"os"
	"time"

	"github.com/cometbft/cometbft/lp2p"
)

// handshakeRecv runs a host that accepts connections until the harness ends
// it. Connections need no Switch: an lp2p Switch provisions a peer only when
// its first stream arrives.
func handshakeRecv(o *options) error {
	if _, err := listenHost(o); err != nil {
		return err
	}
	select {}
}

// handshakeSend connects and closes, one connection at a time, counting the
// connections completed inside the window. host.Connect returns once the
// QUIC handshake (TLS 1.3 with both peer IDs authenticated) and the identify
// exchange are done, as when a Switch connects to a bootstrap peer; closing
// sends QUIC's CONNECTION_CLOSE, and the next Connect dials afresh over the
// same UDP socket.
func handshakeSend(o *options) error {
	hostPort, id, err := splitAddr(o.addr)
	if err != nil {
		return err
	}
	target, err := lp2p.AddrInfoFromHostAndID(hostPort, id)
	if err != nil {
		return err
	}
	h, err := newHost("127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	once := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		if err := h.Connect(ctx, target); err != nil {
			return err
		}
		return h.Network().ClosePeer(target.ID)
	}
	warmEnd := time.Now().Add(o.warmup)
	for time.Now().Before(warmEnd) {
		if err := once(); err != nil {
			return err
		}
	}
	var n uint64
	start := time.Now()
	end := start.Add(o.duration)
	for time.Now().Before(end) {
		if err := once(); err != nil {
			return err
		}
		n++
	}
	printResult(report{WindowMessages: n, WindowSecs: time.Since(start).Seconds()})
	os.Exit(0)
	return nil
}
