package ringwire

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestRequestCancel: cancelling the context of a request that is waiting for its response
// ends it at once, with an error that is both context.Canceled and ErrCancelled.
func TestRequestCancel(t *testing.T) {
	_, _, ca, cb, _, idb := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		err error
		at  time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		_, err := ca.Request(ctx, idb, []byte("anyone?"))
		done <- outcome{err, time.Now()}
	}()
	// The request reaches the peer, whose application holds it unanswered.
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	var held uint64
	for m, err := range cb.Receive(rctx) {
		if err != nil {
			t.Fatalf("the request never arrived: %v", err)
		}
		held = m.RequestID
		break
	}
	if held == 0 {
		t.Fatal("the message is not a request")
	}
	fired := time.Now()
	cancel()
	select {
	case o := <-done:
		if !errors.Is(o.err, context.Canceled) || !errors.Is(o.err, ErrCancelled) {
			t.Fatalf("cancelled request: %v", o.err)
		}
		if took := o.at.Sub(fired); took > 500*time.Millisecond {
			t.Fatalf("the request returned %v after its context was cancelled", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled request did not return")
	}
}

// TestDialContextCancel: cancelling the context of a dial stuck in its handshake (the address
// accepts and never speaks) ends it at once, and no peer comes of it.
func TestDialContextCancel(t *testing.T) {
	n := startNode(t, 7)
	defer n.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err = n.DialContext(ctx, l.Addr().String(), nil)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("cancelled dial: %v", err)
	}
	// The node's dial timeout is 3 s.
	if took := time.Since(start); took < 150*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("the cancelled dial returned after %v", took)
	}
	if c, err := n.PeerCount(); err != nil || c != 0 {
		t.Fatalf("peers after a cancelled dial: %d, %v", c, err)
	}
	// A deadline shorter than the node's dial timeout ends the dial at the deadline.
	dctx, dcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer dcancel()
	start = time.Now()
	if _, err := n.DialContext(dctx, l.Addr().String(), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial past its context's deadline: %v", err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("the dial ended %v after it started, its deadline was 200ms", took)
	}
	// A context already done fails before dialing.
	if _, err := n.DialContext(ctx, l.Addr().String(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with a cancelled context: %v", err)
	}
}
