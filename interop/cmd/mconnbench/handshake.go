package main

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// idleAfter ends the handshake receiver once no dial has come for this long.
const idleAfter = time.Second

// handshakeRecv accepts connections and completes the SecretConnection
// handshake on each until the dialer has gone quiet.
func handshakeRecv(o *options) error {
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	tl, ok := l.(*net.TCPListener)
	if !ok {
		return errorf("listener is not TCP")
	}
	announce(l)
	key := nodeKey()
	var ok1, failed atomic.Uint64
	first := true
	for {
		if !first {
			if err := tl.SetDeadline(time.Now().Add(idleAfter)); err != nil {
				return err
			}
		}
		c, err := tl.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return err
		}
		first = false
		go func() {
			defer c.Close()
			if _, err := secure(c, key); err != nil {
				failed.Add(1)
				return
			}
			ok1.Add(1)
		}()
	}
	printResult(report{TotalMessages: ok1.Load(), Connections: ok1.Load() + failed.Load()})
	os.Exit(0)
	return nil
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
		lingerZero(c)
		defer c.Close()
		_, err = secure(c, key)
		return err
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
