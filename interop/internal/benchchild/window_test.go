package benchchild

import (
	"testing"
	"time"
)

func TestWindowOpensOnTheFirstMessage(t *testing.T) {
	w := NewWindow()
	select {
	case <-w.First():
		t.Fatal("open before any message")
	default:
	}
	w.Deliver(10)
	w.Deliver(20)
	<-w.First()
	rep := w.Measure(&Options{Warmup: time.Millisecond, Duration: 5 * time.Millisecond})
	if rep.WindowMessages != 0 || rep.WindowBytes != 0 || rep.WindowSecs < 0.005 {
		t.Fatalf("an idle window: %+v", rep)
	}
	if rep.TotalMessages != 2 || rep.TotalBytes != 30 {
		t.Fatalf("totals: %+v", rep)
	}
}

func TestCountersTotals(t *testing.T) {
	var c Counters
	c.Add(4)
	c.Add(5)
	if got := c.Totals(); got != (Report{TotalMessages: 2, TotalBytes: 9}) {
		t.Fatalf("totals %+v", got)
	}
}
