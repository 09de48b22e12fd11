package main

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/p2p/conn"
)

// pingTimeout bounds one round trip; stock defaults stay far below it.
const pingTimeout = 10 * time.Second

// latencyRecv echoes every high-priority message and discards the load.
func latencyRecv(o *options) error {
	c, err := acceptOne(o)
	if err != nil {
		return err
	}
	var m *conn.MConnection
	ready := make(chan struct{})
	var pings, loadBytes atomic.Uint64
	onReceive := func(ch byte, msg []byte) {
		if ch != hiChannel {
			loadBytes.Add(uint64(len(msg)))
			return
		}
		<-ready
		pings.Add(1)
		// msg is reused by the receive routine; Send keeps the slice.
		m.Send(hiChannel, append([]byte(nil), msg...))
	}
	done := make(chan struct{})
	var once atomic.Bool
	onError := func(any) {
		if once.CompareAndSwap(false, true) {
			close(done)
		}
	}
	m, err = startMConn(c, nodeKey(), o, latencyChannels(), onReceive, onError)
	if err != nil {
		return err
	}
	close(ready)
	<-done
	printResult(report{TotalMessages: pings.Load(), TotalBytes: loadBytes.Load()})
	os.Exit(0)
	return nil
}

// latencySend measures request/response round trips on the high-priority
// channel, optionally while the low-priority channel is saturated.
func latencySend(o *options) error {
	c, err := dial(o.addr)
	if err != nil {
		return err
	}
	replies := make(chan uint64, 16)
	failed := make(chan any, 1)
	onReceive := func(ch byte, msg []byte) {
		if ch == hiChannel && len(msg) >= 8 {
			replies <- binary.LittleEndian.Uint64(msg)
		}
	}
	onError := func(r any) {
		select {
		case failed <- r:
		default:
		}
	}
	m, err := startMConn(c, nodeKey(), o, latencyChannels(), onReceive, onError)
	if err != nil {
		return err
	}
	var loadSent atomic.Uint64
	if o.load == "bulk" {
		bulk := payload(o.bulkSize)
		go func() {
			for m.IsRunning() {
				if m.Send(loChannel, bulk) {
					loadSent.Add(uint64(len(bulk)))
				}
			}
		}()
	}
	req := payload(max(o.size, 8))
	var seq uint64
	ping := func() (time.Duration, error) {
		seq++
		binary.LittleEndian.PutUint64(req, seq)
		t0 := time.Now()
		if !m.Send(hiChannel, req) {
			return 0, errorf("send of request %d failed", seq)
		}
		timeout := time.NewTimer(pingTimeout)
		defer timeout.Stop()
		for {
			select {
			case got := <-replies:
				if got == seq {
					return time.Since(t0), nil
				}
			case r := <-failed:
				return 0, errorf("connection failed: %v", r)
			case <-timeout.C:
				return 0, errorf("no reply to request %d within %v", seq, pingTimeout)
			}
		}
	}
	warmEnd := time.Now().Add(o.warmup)
	for time.Now().Before(warmEnd) {
		if _, err := ping(); err != nil {
			return err
		}
	}
	samples := make([]time.Duration, 0, 1<<16)
	start := time.Now()
	end := start.Add(o.duration)
	for time.Now().Before(end) {
		rtt, err := ping()
		if err != nil {
			return err
		}
		samples = append(samples, rtt)
	}
	window := time.Since(start)
	if err := writeSamples(o.samples, samples); err != nil {
		return err
	}
	printResult(report{
		Samples:        uint64(len(samples)),
		WindowMessages: uint64(len(samples)),
		WindowSecs:     window.Seconds(),
		TotalBytes:     loadSent.Load(),
	})
	os.Exit(0)
	return nil
}
