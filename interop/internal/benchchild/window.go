package benchchild

import (
	"sync/atomic"
	"time"
)

// Window is a receiver's count of delivered messages, measured over the
// harness's window: it opens Options.Warmup after the first message and
// lasts Options.Duration. Create it with NewWindow.
type Window struct {
	Counters
	seen  atomic.Bool
	first chan struct{}
}

// NewWindow is a window that has seen no message yet.
func NewWindow() *Window {
	return &Window{first: make(chan struct{})}
}

// Deliver counts one delivered message of n payload bytes; safe for
// concurrent use.
func (w *Window) Deliver(n int) {
	w.Add(n)
	if !w.seen.Load() && w.seen.CompareAndSwap(false, true) {
		close(w.first)
	}
}

// First is closed once the first message has been delivered.
func (w *Window) First() <-chan struct{} {
	return w.first
}

// Measure lets o.Warmup pass, counts over o.Duration and reports that window
// and the totals; call it once First is closed.
func (w *Window) Measure(o *Options) Report {
	time.Sleep(o.Warmup)
	start := w.snap()
	time.Sleep(o.Duration)
	end := w.snap()
	return Report{
		WindowMessages: end.messages - start.messages,
		WindowBytes:    end.bytes - start.bytes,
		WindowSecs:     end.at.Sub(start.at).Seconds(),
		TotalMessages:  end.messages,
		TotalBytes:     end.bytes,
	}
}
