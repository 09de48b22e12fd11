package benchchild

import (
	"encoding/binary"
	"fmt"
	"time"
)

// PingTimeout bounds one round trip of the latency scenario; the anchors'
// transports stay far below it.
const PingTimeout = 10 * time.Second

// Echoes is the latency sender's connection, as RoundTrips uses it.
type Echoes struct {
	// Send sends one request on HiChannel; false when it could not. The
	// request's buffer is not touched again before its echo is back.
	Send func(req []byte) bool
	// Replies carries the sequence number of every echo that arrives on
	// HiChannel.
	Replies <-chan uint64
	// Failed yields why the connection failed.
	Failed <-chan error
}

// RoundTrips is the latency scenario's sender: it sends requests of
// max(o.Size, 8) bytes, the first 8 a little-endian sequence number, one at a
// time, each waiting up to PingTimeout for its echo, for o.Warmup and then
// over o.Duration. It writes the round trips of the window to o.Samples and
// reports their number and the window; the first failure ends it.
func RoundTrips(o *Options, c Echoes) (Report, error) {
	req := Payload(max(o.Size, 8))
	var seq uint64
	ping := func() (time.Duration, error) {
		seq++
		binary.LittleEndian.PutUint64(req, seq)
		t0 := time.Now()
		if !c.Send(req) {
			return 0, fmt.Errorf("send of request %d failed", seq)
		}
		timeout := time.NewTimer(PingTimeout)
		defer timeout.Stop()
		for {
			select {
			case got := <-c.Replies:
				if got == seq {
					return time.Since(t0), nil
				}
			case err := <-c.Failed:
				return 0, err
			case <-timeout.C:
				return 0, fmt.Errorf("no reply to request %d within %v", seq, PingTimeout)
			}
		}
	}
	warmEnd := time.Now().Add(o.Warmup)
	for time.Now().Before(warmEnd) {
		if _, err := ping(); err != nil {
			return Report{}, err
		}
	}
	samples := make([]time.Duration, 0, 1<<16)
	start := time.Now()
	end := start.Add(o.Duration)
	for time.Now().Before(end) {
		rtt, err := ping()
		if err != nil {
			return Report{}, err
		}
		samples = append(samples, rtt)
	}
	window := time.Since(start)
	if err := WriteSamples(o.Samples, samples); err != nil {
		return Report{}, err
	}
	return Report{
		Samples:        uint64(len(samples)),
		WindowMessages: uint64(len(samples)),
		WindowSecs:     window.Seconds(),
	}, nil
}
