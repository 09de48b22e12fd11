package ringwire

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// filledBuffer is a buffer of n bytes holding a pattern written through Bytes.
func filledBuffer(t *testing.T, n int) (*Buffer, []byte) {
	t.Helper()
	b, err := NewBuffer(n)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, n)
	for i := range want {
		want[i] = byte(i*7 + 3)
	}
	if got := copy(b.Bytes(), want); got != n || b.Len() != n {
		t.Fatalf("buffer of %d bytes holds %d (len %d)", n, got, b.Len())
	}
	return b, want
}

func TestSendBufferDeliversTheBufferToAPeerAndABroadcast(t *testing.T) {
	_, _, ca, cb, _, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf, want := filledBuffer(t, 64<<10)
	if err := ca.SendBuffer(ctx, idb, buf); err != nil {
		t.Fatal(err)
	}
	// Sent again after the first send froze it, and broadcast: the same bytes each time.
	if err := ca.SendBuffer(ctx, idb, buf); err != nil {
		t.Fatal(err)
	}
	if err := ca.BroadcastBuffer(ctx, buf); err != nil {
		t.Fatal(err)
	}
	// Released while the messages may still be queued: they keep their bytes.
	buf.Release()
	buf.Release()
	if buf.Bytes() != nil || buf.Len() != 0 {
		t.Fatal("a released buffer still shows its bytes")
	}
	got := 0
	for m, err := range cb.Receive(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Payload, want) {
			t.Fatalf("message %d: %d bytes, not the buffer's", got, len(m.Payload))
		}
		if got++; got == 3 {
			break
		}
	}
	if err := ca.SendBuffer(ctx, idb, buf); !errors.Is(err, ErrInvalidHandle) {
		t.Fatalf("send of a released buffer: %v", err)
	}
	if err := ca.SendBuffer(ctx, idb, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("send of a nil buffer: %v", err)
	}
	if _, err := NewBuffer(-1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative size: %v", err)
	}
}

func TestSendBufferHonoursItsContext(t *testing.T) {
	_, _, ca, _, _, idb := pair(t)
	buf, _ := filledBuffer(t, 16)
	defer buf.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ca.SendBuffer(ctx, idb, buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("send with a cancelled context: %v", err)
	}
}
