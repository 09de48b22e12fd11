package main

import (
	"io"
	"net"
	"os"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

// handshakeRecv accepts connections and completes the SecretConnection
// handshake on each, closing first, until the harness ends it.
func handshakeRecv(o *options) error {
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	announce(l)
	key := nodeKey()
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = secure(c, key)
		}()
	}
}

// handshakeSend dials, completes the handshake and closes, one connection
// at a time, counting the handshakes completed inside the window.
func handshakeSend(o *options) error {
	key := nodeKey()
	rep, err := benchchild.Repeat(&o.Options, func() error {
		c, err := dial(o.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := secure(c, key); err != nil {
			return err
		}
		// Wait for the receiver's close, then reset (linger 0): neither side keeps a
		// TIME_WAIT, and nothing of this connection meets the next on a reused port.
		_, _ = io.Copy(io.Discard, c)
		lingerZero(c)
		return nil
	})
	if err != nil {
		return err
	}
	benchchild.PrintResult(rep)
	os.Exit(0)
	return nil
}
