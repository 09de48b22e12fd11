package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/cometbft/cometbft/p2p/conn"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

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
		if ch != benchchild.HiChannel {
			loadBytes.Add(uint64(len(msg)))
			return
		}
		<-ready
		pings.Add(1)
		// msg is reused by the receive routine; Send keeps the slice.
		m.Send(benchchild.HiChannel, append([]byte(nil), msg...))
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
	benchchild.PrintResult(benchchild.Report{TotalMessages: pings.Load(), TotalBytes: loadBytes.Load()})
	os.Exit(0)
	return nil
}

// latencySend measures request/response round trips on the high-priority
// channel, optionally while the low-priority channel is saturated.
func latencySend(o *options) error {
	c, err := dial(o.Addr)
	if err != nil {
		return err
	}
	replies := make(chan uint64, 16)
	failed := make(chan error, 1)
	onReceive := func(ch byte, msg []byte) {
		if ch == benchchild.HiChannel && len(msg) >= 8 {
			replies <- binary.LittleEndian.Uint64(msg)
		}
	}
	onError := func(r any) {
		select {
		case failed <- fmt.Errorf("connection failed: %v", r):
		default:
		}
	}
	m, err := startMConn(c, nodeKey(), o, latencyChannels(), onReceive, onError)
	if err != nil {
		return err
	}
	var loadSent atomic.Uint64
	if o.Load == "bulk" {
		bulk := benchchild.Payload(o.BulkSize)
		go func() {
			for m.IsRunning() {
				if m.Send(benchchild.LoChannel, bulk) {
					loadSent.Add(uint64(len(bulk)))
				}
			}
		}()
	}
	rep, err := benchchild.RoundTrips(&o.Options, benchchild.Echoes{
		Send:    func(req []byte) bool { return m.Send(benchchild.HiChannel, req) },
		Replies: replies,
		Failed:  failed,
	})
	if err != nil {
		return err
	}
	rep.TotalBytes = loadSent.Load()
	benchchild.PrintResult(rep)
	os.Exit(0)
	return nil
}
