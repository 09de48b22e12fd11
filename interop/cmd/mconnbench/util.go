package main

import (
	"net"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

// dial connects to the receiver over loopback TCP.
func dial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, handshakeTimeout)
}

// announce tells the harness the address l listens on.
func announce(l net.Listener) {
	benchchild.Announce(l.Addr().String())
}

// lingerZero makes Close send a reset, so a dial loop leaves no TIME_WAIT
// sockets behind and cannot run out of local ports.
func lingerZero(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}
