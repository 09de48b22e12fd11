package ringwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// startNode starts a node on loopback with a seed made of b.
func startNode(t testing.TB, b byte) *Node {
	t.Helper()
	n, err := NewNode(Config{
		Seed:    bytes.Repeat([]byte{b}, 32),
		Network: "go-test",
		Listen:  "127.0.0.1:0",
		Shards:  1,
	})
	if err != nil {
		t.Fatalf("NewNode: %v", err)
	}
	return n
}

// payload is message i from sender from: its length and bytes depend on both.
func payload(from, i int) []byte {
	p := make([]byte, 1+(i*977+from*7)%3000)
	for k := range p {
		p[k] = byte(k*31 + i*7 + from)
	}
	return p
}

// pair starts two nodes, opens channel 0x40 on both and connects them.
func pair(t *testing.T) (a, b *Node, ca, cb *Channel, ida, idb NodeID) {
	t.Helper()
	return pairDesc(t, ChannelDesc{ID: 0x40})
}

// pairDesc starts two nodes, opens the channel d on both and connects them.
func pairDesc(t testing.TB, d ChannelDesc) (a, b *Node, ca, cb *Channel, ida, idb NodeID) {
	t.Helper()
	a, b = startNode(t, 1), startNode(t, 2)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	var err error
	if ca, err = a.OpenChannel(d); err != nil {
		t.Fatal(err)
	}
	if cb, err = b.OpenChannel(d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ca.Close(); _ = cb.Close() })
	if ida, err = a.ID(); err != nil {
		t.Fatal(err)
	}
	if idb, err = b.ID(); err != nil {
		t.Fatal(err)
	}
	addr, err := b.ListenAddr()
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Dial(addr, &idb)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got != idb {
		t.Fatalf("dialed %v, want %v", got, idb)
	}
	// The dial returns once A has registered B; B registers A a moment later on its own shard.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := b.PeerCount()
		if err != nil {
			t.Fatal(err)
		}
		if n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never registered A")
		}
		time.Sleep(time.Millisecond)
	}
	return
}

func receiveN(t *testing.T, ctx context.Context, ch *Channel, from int, sender NodeID, n int) {
	t.Helper()
	i := 0
	for m, err := range ch.Receive(ctx) {
		if err != nil {
			t.Fatalf("receive after %d: %v", i, err)
		}
		if m.Peer != sender || m.Channel != 0x40 || m.Local {
			t.Fatalf("message %d: peer %v channel %#x local %v", i, m.Peer, m.Channel, m.Local)
		}
		if want := payload(from, i); !bytes.Equal(m.Payload, want) {
			t.Fatalf("message %d: %d bytes differ from the %d sent", i, len(m.Payload), len(want))
		}
		i++
		if i == n {
			return
		}
	}
}

func TestTwoNodesExchangeBothWays(t *testing.T) {
	_, _, ca, cb, ida, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const count = 16

	// A sends one batch in one call; B sends one message at a time.
	envs := make([]Envelope, count)
	for i := range envs {
		envs[i] = Envelope{To: ToPeer, Peer: idb, Payload: payload(0, i)}
	}
	if err := ca.SendBatch(ctx, envs); err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	for i := range count {
		if err := cb.Send(ctx, ida, payload(1, i)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	receiveN(t, ctx, cb, 0, ida, count)
	receiveN(t, ctx, ca, 1, idb, count)

	// Broadcast reaches B; ReceiveCopy keeps the bytes after the batch is gone.
	if err := ca.Broadcast(ctx, []byte("to all")); err != nil {
		t.Fatal(err)
	}
	var kept Message
	for m, err := range cb.ReceiveCopy(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		kept = m
		break
	}
	if string(kept.Payload) != "to all" || kept.Peer != ida {
		t.Fatalf("broadcast: got %q from %v", kept.Payload, kept.Peer)
	}
}

func TestRequestRespond(t *testing.T) {
	_, _, ca, cb, _, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		for m, err := range cb.Receive(ctx) {
			if err != nil {
				errc <- err
				return
			}
			out := make([]byte, len(m.Payload))
			for k := range m.Payload {
				out[len(out)-1-k] = m.Payload[k]
			}
			err := cb.Respond(m.RequestID, out)
			if err == nil {
				// A second answer to the same request is refused.
				if again := cb.Respond(m.RequestID, out); !errors.Is(again, ErrUnknownRequest) {
					err = fmt.Errorf("second respond: %v", again)
				}
			}
			errc <- err
			return
		}
	}()
	resp, err := ca.Request(ctx, idb, []byte("ping?"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(resp) != "?gnip" {
		t.Fatalf("response %q", resp)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestCloseTwice(t *testing.T) {
	n := startNode(t, 3)
	ch, err := n.OpenChannel(ChannelDesc{ID: 0x41})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("first node close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second node close: %v", err)
	}
	// The channel of a stopped node reports it stopped.
	_, err = ch.ReceiveBatch(context.Background())
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("receive on a stopped node: %v", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ID(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ID after close: %v", err)
	}
	if err := ch.Send(context.Background(), NodeID{}, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	n := startNode(t, 4)
	defer n.Close()
	ch, err := n.OpenChannel(ChannelDesc{ID: 0x42})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range ch.Receive(ctx) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("receive: %v", err)
		}
	}
	if err := ch.Send(ctx, NodeID{}, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("send: %v", err)
	}

	// Cancelling while a receive waits ends it too.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := ch.ReceiveBatch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting receive: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := NewNode(Config{}); err == nil {
		t.Fatal("a config without a key started")
	}
	_, err := NewNode(Config{Seed: make([]byte, 32), Listen: "not an address"})
	var e *Error
	if !errors.As(err, &e) || e.Code == 0 {
		t.Fatalf("bad listen address: %v", err)
	}
	if e.Error() == "" {
		t.Fatal("empty error text")
	}
}

// Two nodes on loopback: one dials the other and sends it a message.
func Example() {
	seed := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	a, err := NewNode(Config{Seed: seed(7), Network: "example", Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	b, err := NewNode(Config{Seed: seed(8), Network: "example", Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ca, _ := a.OpenChannel(ChannelDesc{ID: 0x20})
	defer ca.Close()
	cb, _ := b.OpenChannel(ChannelDesc{ID: 0x20})
	defer cb.Close()

	addr, _ := b.ListenAddr()
	idb, err := a.Dial(addr, nil)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ca.Send(ctx, idb, []byte("hello")); err != nil {
		panic(err)
	}
	for m, err := range cb.Receive(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("channel %#x: %s\n", m.Channel, m.Payload)
		break
	}
	// Output: channel 0x20: hello
}

func TestReceiveStopsEarlyAndResumes(t *testing.T) {
	_, _, ca, cb, ida, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const count = 8
	envs := make([]Envelope, count)
	for i := range envs {
		envs[i] = Envelope{To: ToPeer, Peer: idb, Payload: payload(0, i)}
	}
	if err := ca.SendBatch(ctx, envs); err != nil {
		t.Fatal(err)
	}
	// Take messages one loop at a time: none is lost when a loop stops inside a batch.
	for i := range count {
		for m, err := range cb.Receive(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Payload, payload(0, i)) || m.Peer != ida {
				t.Fatalf("message %d differs", i)
			}
			break
		}
	}
}

func TestPeerEventsStatsDisconnect(t *testing.T) {
	a, b, _, _, ida, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := b.PollEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Kind != PeerUp || evs[0].Peer != ida || evs[0].Outbound {
		t.Fatalf("first event on B: %+v", evs[0])
	}
	st, err := b.Stats()
	if err != nil || st.Accepted != 1 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if err := a.Disconnect(idb); err != nil {
		t.Fatal(err)
	}
	for {
		evs, err := b.PollEvents(ctx)
		if err != nil {
			t.Fatalf("waiting for the down event: %v", err)
		}
		if evs[len(evs)-1].Kind == PeerDown {
			break
		}
	}
	if err := a.Disconnect(idb); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("second disconnect: %v", err)
	}
}
