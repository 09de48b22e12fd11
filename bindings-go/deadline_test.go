package ringwire

import (
	"context"
	"testing"
	"time"
)

// Envelope.DeliverWithin reaches the engine: short-lived messages that the receiving
// application takes too late are dropped and counted (by the receiver, or by the sender when
// they never left), while one with a long deadline arrives.
func TestDeliverWithinDropsStaleMessages(t *testing.T) {
	a, b, ca, cb, ida, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const short = 4
	envs := make([]Envelope, 0, short+1)
	for i := range short {
		envs = append(envs, Envelope{To: ToPeer, Peer: idb, Payload: payload(0, i), DeliverWithin: 200 * time.Millisecond})
	}
	envs = append(envs, Envelope{To: ToPeer, Peer: idb, Payload: []byte("long"), DeliverWithin: time.Minute})
	if err := ca.SendBatch(ctx, envs); err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	time.Sleep(time.Second)
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	var got []string
	for m, err := range cb.ReceiveCopy(rctx) {
		if err != nil {
			break
		}
		if m.Peer != ida {
			t.Fatalf("from %v", m.Peer)
		}
		got = append(got, string(m.Payload))
	}
	if len(got) != 1 || got[0] != "long" {
		t.Fatalf("received %q, want only \"long\"", got)
	}
	sa, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if n := sa.ExpiredBeforeSend + sb.ExpiredBeforeDelivery; n != short {
		t.Fatalf("expired: %d before send + %d before delivery, want %d in all", sa.ExpiredBeforeSend, sb.ExpiredBeforeDelivery, short)
	}
}
