package main

import (
	"os"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/p2p"
)

// counters are updated by the reactor's workers.
type counters struct {
	messages atomic.Uint64
	bytes    atomic.Uint64
}

type snapshot struct {
	at       time.Time
	messages uint64
	bytes    uint64
}

func (c *counters) snap() snapshot {
	return snapshot{at: time.Now(), messages: c.messages.Load(), bytes: c.bytes.Load()}
}

// bulkRecv counts delivered messages over the window, reports, hangs up and
// exits; the sender sees the connection close and stops.
func bulkRecv(o *options) error {
	h, err := listenHost(o)
	if err != nil {
		return err
	}
	var cnt counters
	first := make(chan struct{})
	var seen atomic.Bool
	onReceive := func(e p2p.Envelope) {
		msg, ok := e.Message.(*abci.RequestEcho)
		if !ok {
			return
		}
		cnt.messages.Add(1)
		cnt.bytes.Add(uint64(len(msg.Message)))
		if !seen.Load() && seen.CompareAndSwap(false, true) {
			close(first)
		}
	}
	if _, err := startSwitch(h, bulkChannels(o), onReceive); err != nil {
		return err
	}
	select {
	case <-first:
	case <-disconnected(h, ""):
		return errorf("the sender hung up before the first message")
	}
	time.Sleep(o.warmup)
	start := cnt.snap()
	time.Sleep(o.duration)
	end := cnt.snap()
	printResult(report{
		WindowMessages: end.messages - start.messages,
		WindowBytes:    end.bytes - start.bytes,
		WindowSecs:     end.at.Sub(start.at).Seconds(),
		TotalMessages:  end.messages,
		TotalBytes:     end.bytes,
	})
	hangUp(h)
	os.Exit(0)
	return nil
}

// bulkSend sends messages flat out from -send-concurrency goroutines until
// the receiver hangs up.
func bulkSend(o *options) error {
	h, p, err := connectSwitch(o, bulkChannels(o), func(p2p.Envelope) {})
	if err != nil {
		return err
	}
	done := disconnected(h, peerID(p))
	var sent counters
	env := p2p.Envelope{ChannelID: bulkChannel, Message: echo(payload(o.size))}
	for range o.sendConcurrency {
		go func() {
			for {
				if p.Send(env) {
					sent.messages.Add(1)
					sent.bytes.Add(uint64(o.size))
				}
			}
		}()
	}
	<-done
	printResult(report{TotalMessages: sent.messages.Load(), TotalBytes: sent.bytes.Load()})
	os.Exit(0)
	return nil
}
