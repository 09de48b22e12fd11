package main

import (
	"io"
	"net"
	"os"
	"time"
)

// handshakeRecv accepts connections and completes the SecretConnection
// handshake on each, closing first, until the harness ends it.
func handshakeRecv(o *options) error {
	l, err := net.Listen("tcp", o.listen)
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
	once := func() error {
		c, err := dial(o.addr)
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
