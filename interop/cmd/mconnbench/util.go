package main

import (
	"fmt"
	"net"
)

func errorf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// dial connects to the receiver over loopback TCP.
func dial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, handshakeTimeout)
}

// lingerZero makes Close send a reset, so a dial loop leaves no TIME_WAIT
// sockets behind and cannot run out of local ports.
func lingerZero(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}
