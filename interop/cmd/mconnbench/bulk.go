package main

import (
	"os"
	"sync/atomic"
	"time"
)

// counters are updated by the MConnection receive routine.
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

// bulkRecv counts delivered messages over the window, reports, and exits;
// the sender sees the connection drop and stops.
func bulkRecv(o *options) error {
	c, err := acceptOne(o)
	if err != nil {
		return err
	}
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
	if _, err := startMConn(c, nodeKey(), o, bulkChannels(), onReceive, onError); err != nil {
		return err
	}
	return measureWindow(o, &cnt, first, failed)
}

// measureWindow waits for the first message, lets the warm-up pass, counts
// over the window and prints the report.
func measureWindow(o *options, cnt *counters, first <-chan struct{}, failed <-chan any) error {
	select {
	case <-first:
	case r := <-failed:
		return errorf("connection failed before the first message: %v", r)
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
	os.Exit(0)
	return nil
}

// bulkSend queues messages flat out until the receiver hangs up.
func bulkSend(o *options) error {
	c, err := dial(o.addr)
	if err != nil {
		return err
	}
	var sent counters
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
	msg := payload(o.size)
	go func() {
		for {
			if m.Send(bulkChannel, msg) {
				sent.messages.Add(1)
				sent.bytes.Add(uint64(len(msg)))
			} else if !m.IsRunning() {
				return
			}
		}
	}()
	<-done
	printResult(report{TotalMessages: sent.messages.Load(), TotalBytes: sent.bytes.Load()})
	os.Exit(0)
	return nil
}
