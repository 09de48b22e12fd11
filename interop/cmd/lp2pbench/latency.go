package main

import (
	"encoding/binary"
	"errors"
	"os"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/p2p"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

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
		if e.ChannelID != benchchild.HiChannel {
			loadBytes.Add(uint64(len(msg.Message)))
			return
		}
		pings.Add(1)
		e.Src.Send(p2p.Envelope{ChannelID: benchchild.HiChannel, Message: msg})
	}
	if _, err := startSwitch(h, latencyChannels(o), onReceive); err != nil {
		return err
	}
	<-disconnected(h, "")
	benchchild.PrintResult(benchchild.Report{TotalMessages: pings.Load(), TotalBytes: loadBytes.Load()})
	os.Exit(0)
	return nil
}

// latencySend measures request/response round trips on the high-priority
// channel, optionally while the low-priority channel is saturated.
func latencySend(o *options) error {
	replies := make(chan uint64, 16)
	onReceive := func(e p2p.Envelope) {
		msg, ok := e.Message.(*abci.RequestEcho)
		if ok && e.ChannelID == benchchild.HiChannel && len(msg.Message) >= 8 {
			replies <- binary.LittleEndian.Uint64([]byte(msg.Message[:8]))
		}
	}
	h, p, err := connectSwitch(o, latencyChannels(o), onReceive)
	if err != nil {
		return err
	}
	failed := failure(disconnected(h, peerID(p)), errors.New("connection closed"))
	var loadSent atomic.Uint64
	if o.Load == "bulk" {
		load := p2p.Envelope{ChannelID: benchchild.LoChannel, Message: echo(benchchild.Payload(o.BulkSize))}
		for range o.sendConcurrency {
			go func() {
				for {
					if p.Send(load) {
						loadSent.Add(uint64(o.BulkSize))
					}
				}
			}()
		}
	}
	rep, err := benchchild.RoundTrips(&o.Options, benchchild.Echoes{
		Send: func(req []byte) bool {
			return p.Send(p2p.Envelope{ChannelID: benchchild.HiChannel, Message: echo(req)})
		},
		Replies: replies,
		Failed:  failed,
	})
	if err != nil {
		return err
	}
	rep.TotalBytes = loadSent.Load()
	benchchild.PrintResult(rep)
	hangUp(h)
	os.Exit(0)
	return nil
}
