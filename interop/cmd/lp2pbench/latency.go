package main

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/p2p"
)

// pingTimeout bounds one round trip.
const pingTimeout = 10 * time.Second

// latencyRecv echoes every high-priority message to its sender and discards
// the load; it reports when the sender hangs up.
func latencyRecv(o *options) error {
	h, err := listenHost(o)
	if err != nil {
		return err
	}
	var pings, loadBytes atomic.Uint64
	onReceive := func(e p2p.Envelope) {
		msg, ok := e.Message.(*abci.RequestEcho)
		if !ok {
			return
		}
		if e.ChannelID != hiChannel {
			loadBytes.Add(uint64(len(msg.Message)))
			return
		}
		pings.Add(1)
		e.Src.Send(p2p.Envelope{ChannelID: hiChannel, Message: msg})
	}
	if _, err := startSwitch(h, latencyChannels(o), onReceive); err != nil {
		return err
	}
	<-disconnected(h, "")
	printResult(report{TotalMessages: pings.Load(), TotalBytes: loadBytes.Load()})
	os.Exit(0)
	return nil
}

// latencySend measures request/response round trips on the high-priority
// channel, optionally while the low-priority channel is saturated.
func latencySend(o *options) error {
	replies := make(chan uint64, 16)
	onReceive := func(e p2p.Envelope) {
		msg, ok := e.Message.(*abci.RequestEcho)
		if ok && e.ChannelID == hiChannel && len(msg.Message) >= 8 {
			replies <- binary.LittleEndian.Uint64([]byte(msg.Message[:8]))
		}
	}
	h, p, err := connectSwitch(o, latencyChannels(o), onReceive)
	if err != nil {
		return err
	}
	failed := disconnected(h, peerID(p))
	var loadSent atomic.Uint64
	if o.load == "bulk" {
		load := p2p.Envelope{ChannelID: loChannel, Message: echo(payload(o.bulkSize))}
		for range o.sendConcurrency {
			go func() {
				for {
					if p.Send(load) {
						loadSent.Add(uint64(o.bulkSize))
					}
				}
			}()
		}
	}
	req := payload(max(o.size, 8))
	var seq uint64
	ping := func() (time.Duration, error) {
		seq++
		binary.LittleEndian.PutUint64(req, seq)
		t0 := time.Now()
		env := p2p.Envelope{ChannelID: hiChannel, Message: echo(req)}
		if !p.Send(env) {
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
			case <-failed:
				return 0, errorf("connection closed")
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
	hangUp(h)
	os.Exit(0)
	return nil
}
