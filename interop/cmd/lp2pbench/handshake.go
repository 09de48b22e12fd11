package main

import (
	"context"
	"os"

	"github.com/cometbft/cometbft/lp2p"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
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
	hostPort, id, err := splitAddr(o.Addr)
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
	rep, err := benchchild.Repeat(&o.Options, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		if err := h.Connect(ctx, target); err != nil {
			return err
		}
		return h.Network().ClosePeer(target.ID)
	})
	if err != nil {
		return err
	}
	benchchild.PrintResult(rep)
	os.Exit(0)
	return nil
}
