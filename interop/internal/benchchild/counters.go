package benchchild

import (
	"sync/atomic"
	"time"
)

// Counters count messages and their payload bytes; the zero value is ready
// and safe for concurrent use.
type Counters struct {
	messages atomic.Uint64
	bytes    atomic.Uint64
}

// Add counts one message of n payload bytes.
func (c *Counters) Add(n int) {
	c.messages.Add(1)
	c.bytes.Add(uint64(n))
}

// Totals reports everything counted so far.
func (c *Counters) Totals() Report {
	return Report{TotalMessages: c.messages.Load(), TotalBytes: c.bytes.Load()}
}

// snapshot is the counters at one moment.
type snapshot struct {
	at       time.Time
	messages uint64
	bytes    uint64
}

func (c *Counters) snap() snapshot {
	return snapshot{at: time.Now(), messages: c.messages.Load(), bytes: c.bytes.Load()}
}
