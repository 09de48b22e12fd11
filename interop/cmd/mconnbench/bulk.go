package main

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/ringwire/ringwire/interop/internal/benchchild"
)

// bulkRecv counts delivered messages over the window, reports, and exits;
// the sender sees the connection drop and stops.
func bulkRecv(o *options) error {
	c, err := acceptOne(o)
	if err != nil {
		return err
	}
	w := benchchild.NewWindow()
	failed := make(chan any, 1)
	onReceive := func(_ byte, msg []byte) { w.Deliver(len(msg)) }
	onError := func(r any) {
		select {
		case failed <- r:
		default:
		}
	}
	if _, err := startMConn(c, nodeKey(), o, bulkChannels(), onReceive, onError); err != nil {
		return err
	}
	return measureWindow(o, w, failed)
}

// measureWindow waits for the first message, measures the window and prints
// the report.
func measureWindow(o *options, w *benchchild.Window, failed <-chan any) error {
	select {
	case <-w.First():
	case r := <-failed:
		return fmt.Errorf("connection failed before the first message: %v", r)
	}
	benchchild.PrintResult(w.Measure(&o.Options))
	os.Exit(0)
	return nil
}

// bulkSend queues messages flat out until the receiver hangs up.
func bulkSend(o *options) error {
	c, err := dial(o.Addr)
	if err != nil {
		return err
	}
	var sent benchchild.Counters
	done := make(chan struct{})
	var once atomic.Bool
	onError := func(any) {
		if once.CompareAndSwap(false, true) {
			close(done)
		}
	}
	m, err := startMConn(c, nodeKey(), o, bulkChannels(), func(byte, []byte) {}, onError)
	if err != nil {
		return err
	}
	msg := benchchild.Payload(o.Size)
	go func() {
		for {
			if m.Send(benchchild.BulkChannel, msg) {
				sent.Add(len(msg))
			} else if !m.IsRunning() {
				return
			}
		}
	}()
	<-done
	benchchild.PrintResult(sent.Totals())
	os.Exit(0)
	return nil
}
