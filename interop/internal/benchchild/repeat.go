package benchchild

import "time"

// Repeat is the handshake scenario's sender: it runs once over and over, one
// at a time, for o.Warmup and then over o.Duration, and reports how many
// runs completed inside the window. The first error ends it.
func Repeat(o *Options, once func() error) (Report, error) {
	warmEnd := time.Now().Add(o.Warmup)
	for time.Now().Before(warmEnd) {
		if err := once(); err != nil {
			return Report{}, err
		}
	}
	var n uint64
	start := time.Now()
	end := start.Add(o.Duration)
	for time.Now().Before(end) {
		if err := once(); err != nil {
			return Report{}, err
		}
		n++
	}
	return Report{WindowMessages: n, WindowSecs: time.Since(start).Seconds()}, nil
}
