package main

import (
	"errors"
	"os"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/p2p"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

// bulkRecv counts delivered messages over the window, reports, hangs up and
// exits; the sender sees the connection close and stops.
func bulkRecv(o *options) error {
	h, err := listenHost(o)
	if err != nil {
		return err
	}
	w := benchchild.NewWindow()
	onReceive := func(e p2p.Envelope) {
		msg, ok := e.Message.(*abci.RequestEcho)
		if !ok {
			return
		}
		w.Deliver(len(msg.Message))
	}
	if _, err := startSwitch(h, bulkChannels(o), onReceive); err != nil {
		return err
	}
	select {
	case <-w.First():
	case <-disconnected(h, ""):
		return errors.New("the sender hung up before the first message")
	}
	benchchild.PrintResult(w.Measure(&o.Options))
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
	var sent benchchild.Counters
	env := p2p.Envelope{ChannelID: benchchild.BulkChannel, Message: echo(benchchild.Payload(o.Size))}
	for range o.sendConcurrency {
		go func() {
			for {
				if p.Send(env) {
					sent.Add(o.Size)
				}
			}
		}()
	}
	<-done
	benchchild.PrintResult(sent.Totals())
	os.Exit(0)
	return nil
}
