package main

import (
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/p2p/conn"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

// dialParallel bounds the handshakes the broadcaster runs at once.
const dialParallel = 16

// fanoutRecv plays all the peers: it accepts -peers connections and counts
// every message delivered on any of them over the window.
func fanoutRecv(o *options) error {
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	defer l.Close()
	announce(l)
	key := nodeKey()
	w := benchchild.NewWindow()
	failed := make(chan any, 1)
	onReceive := func(_ byte, msg []byte) { w.Deliver(len(msg)) }
	onError := func(r any) {
		select {
		case failed <- r:
		default:
		}
	}
	for i := 0; i < o.Peers; i++ {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			if _, err := startMConn(c, key, o, bulkChannels(), onReceive, onError); err != nil {
				onError(err)
			}
		}()
	}
	return measureWindow(o, w, failed)
}

// fanoutSend connects to -peers peers, then broadcasts every message to all
// of them until one hangs up. It reports its resident memory before and
// after the connections were made.
func fanoutSend(o *options) error {
	key := nodeKey()
	base := benchchild.RSSKiB()
	done := make(chan struct{})
	var once atomic.Bool
	stop := func() {
		if once.CompareAndSwap(false, true) {
			close(done)
		}
	}
	conns, err := connectAll(o, key, func(any) { stop() })
	if err != nil {
		return err
	}
	connected := benchchild.RSSKiB()
	var sent atomic.Uint64
	msg := benchchild.Payload(o.Size)
	go func() {
		for {
			for _, m := range conns {
				if !m.Send(benchchild.BulkChannel, msg) && !m.IsRunning() {
					stop()
					return
				}
			}
			sent.Add(uint64(len(conns)))
		}
	}()
	<-done
	benchchild.PrintResult(benchchild.Report{
		TotalMessages: sent.Load(),
		Connections:   uint64(len(conns)),
		RSSBaseKiB:    base,
		RSSKiB:        connected,
	})
	os.Exit(0)
	return nil
}

// connectAll dials -peers connections, dialParallel at a time, and starts
// an MConnection on each.
func connectAll(o *options, key crypto.PrivKey, onError func(any)) ([]*conn.MConnection, error) {
	conns := make([]*conn.MConnection, o.Peers)
	errs := make(chan error, o.Peers)
	sem := make(chan struct{}, dialParallel)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(o.Addr)
			if err != nil {
				errs <- err
				return
			}
			m, err := startMConn(c, key, o, bulkChannels(), func(byte, []byte) {}, onError)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = m
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return conns, nil
}
