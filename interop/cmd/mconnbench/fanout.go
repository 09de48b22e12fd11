package main

import (
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/p2p/conn"
)

// dialParallel bounds the handshakes the broadcaster runs at once.
const dialParallel = 16

// fanoutRecv plays all the peers: it accepts -peers connections and counts
// every message delivered on any of them over the window.
func fanoutRecv(o *options) error {
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	defer l.Close()
	announce(l)
	key := nodeKey()
	var cnt counters
	first := make(chan struct{})
	var seen atomic.Bool
	failed := make(chan any, 1)
	onReceive := func(_ byte, msg []byte) {
		cnt.messages.Add(1)
		cnt.bytes.Add(uint64(len(msg)))
		if !seen.Load() && seen.CompareAndSwap(false, true) {
			close(first)
		}
	}
	onError := func(r any) {
		select {
		case failed <- r:
		default:
		}
	}
	for i := 0; i < o.peers; i++ {
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
	return measureWindow(o, &cnt, first, failed)
}

// fanoutSend connects to -peers peers, then broadcasts every message to all
// of them until one hangs up. It reports its resident memory before and
// after the connections were made.
func fanoutSend(o *options) error {
	key := nodeKey()
	base := rssKiB()
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
	connected := rssKiB()
	var sent atomic.Uint64
	msg := payload(o.size)
	go func() {
		for {
			for _, m := range conns {
				if !m.Send(bulkChannel, msg) && !m.IsRunning() {
					stop()
					return
				}
			}
			sent.Add(uint64(len(conns)))
		}
	}()
	<-done
	printResult(report{
		TotalMessages: sent.Load(),
		Connections:   uint64(len(conns)),
		RSSBaseKiB:    base,
		RSSKiB:        connected,
	})
	os.Exit(0)
	return nil
}

func connectAll(o *options, key crypto.PrivKey, onError func(any)) ([]*conn.MConnection, error) {
	conns := make([]*conn.MConnection, o.peers)
	errs := make(chan error, o.peers)
	sem := make(chan struct{}, dialParallel)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(o.addr)
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
