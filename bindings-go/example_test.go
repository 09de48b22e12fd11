package ringwire_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

// seed is a fixed 32-byte node key seed (a real node keeps its key in a file: Config.KeyFile).
func seed(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// connected starts two nodes on loopback, opens channel id on both, and has a dial b. It
// returns the nodes, their channels and b's ID; close the nodes when done.
func connected(id byte) (a, b *ringwire.Node, ca, cb *ringwire.Channel, idb ringwire.NodeID) {
	var err error
	if a, err = ringwire.NewNode(ringwire.Config{Seed: seed(1), Network: "example", Listen: "127.0.0.1:0"}); err != nil {
		panic(err)
	}
	if b, err = ringwire.NewNode(ringwire.Config{Seed: seed(2), Network: "example", Listen: "127.0.0.1:0"}); err != nil {
		panic(err)
	}
	if ca, err = a.OpenChannel(ringwire.ChannelDesc{ID: id}); err != nil {
		panic(err)
	}
	if cb, err = b.OpenChannel(ringwire.ChannelDesc{ID: id}); err != nil {
		panic(err)
	}
	addr, _ := b.ListenAddr()
	if idb, err = a.Dial(addr, nil); err != nil {
		panic(err)
	}
	// The dial returns once a has registered b; b registers a a moment later.
	for n, _ := b.PeerCount(); n == 0; n, _ = b.PeerCount() {
		time.Sleep(time.Millisecond)
	}
	return a, b, ca, cb, idb
}

func ExampleNewNode() {
	n, err := ringwire.NewNode(ringwire.Config{
		Seed:    seed(1), // or KeyFile: "<home>/config/node_key.json"
		Network: "example-chain",
		Listen:  "127.0.0.1:0",
	})
	if err != nil {
		panic(err)
	}
	defer n.Close()
	id, _ := n.ID()
	fmt.Println("node", id)
	// Output: node 34750f98bd59fcfc946da45aaabe933be154a4b5
}

func ExampleNode_OpenChannel() {
	n, err := ringwire.NewNode(ringwire.Config{Seed: seed(1), Network: "example"})
	if err != nil {
		panic(err)
	}
	defer n.Close()
	ch, err := n.OpenChannel(ringwire.ChannelDesc{
		ID:                  0x20,
		Priority:            5,
		SendQueueCapacity:   256,
		RecvMessageCapacity: 1 << 20,
	})
	if err != nil {
		panic(err)
	}
	defer ch.Close()
	fmt.Printf("channel %#x open\n", ch.ID())
	// Output: channel 0x20 open
}

func ExampleChannel_Send() {
	a, b, ca, cb, idb := connected(0x20)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Send waits for queue space until ctx is done.
	if err := ca.Send(ctx, idb, []byte("hello")); err != nil {
		panic(err)
	}
	for m, err := range cb.Receive(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", m.Payload)
		break
	}
	// Output: hello
}

func ExampleChannel_SendBatch() {
	a, b, ca, cb, idb := connected(0x20)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Three messages, one call into the library.
	envs := []ringwire.Envelope{
		{To: ringwire.ToPeer, Peer: idb, Payload: []byte("one")},
		{To: ringwire.ToPeer, Peer: idb, Payload: []byte("two")},
		{To: ringwire.ToPeer, Peer: idb, Payload: []byte("three")},
	}
	if err := ca.SendBatch(ctx, envs); err != nil {
		panic(err)
	}
	got := 0
	for m, err := range cb.Receive(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", m.Payload)
		if got++; got == len(envs) {
			break
		}
	}
	// Output:
	// one
	// two
	// three
}

func ExampleChannel_Broadcast() {
	a, b, ca, cb, _ := connected(0x20)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Every connected peer that opened channel 0x20 gets it.
	if err := ca.Broadcast(ctx, []byte("new block")); err != nil {
		panic(err)
	}
	for m, err := range cb.Receive(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", m.Payload)
		break
	}
	// Output: new block
}

func ExampleChannel_Receive() {
	a, b, ca, cb, idb := connected(0x20)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if err := ca.Send(ctx, idb, fmt.Appendf(nil, "tx %d", i)); err != nil {
			panic(err)
		}
	}
	// Messages are drained in batches (one call into the library per batch) and yielded in
	// place: a payload is valid inside the loop body; Clone keeps one beyond it.
	var kept []ringwire.Message
	for m, err := range cb.Receive(ctx) {
		if err != nil { // ctx.Err(), or ErrStopped once the node is closed
			panic(err)
		}
		kept = append(kept, m.Clone())
		if len(kept) == 3 {
			break // messages not yet yielded stay queued for the next Receive
		}
	}
	for _, m := range kept {
		fmt.Printf("%s on %#x\n", m.Payload, m.Channel)
	}
	// Output:
	// tx 0 on 0x20
	// tx 1 on 0x20
	// tx 2 on 0x20
}

func ExampleChannel_Request() {
	a, b, ca, cb, idb := connected(0x20)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// b answers each request with Respond.
	go func() {
		for m, err := range cb.Receive(ctx) {
			if err != nil {
				return
			}
			if m.RequestID != 0 {
				_ = cb.Respond(m.RequestID, bytes.ToUpper(m.Payload))
			}
		}
	}()
	// The wait for the response ends at ctx's deadline at the latest.
	resp, err := ca.Request(ctx, idb, []byte("status?"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", resp)
	// Output: STATUS?
}

func ExampleChannel_Respond() {
	a, b, ca, cb, idb := connected(0x20)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	answer := make(chan []byte, 1)
	go func() {
		resp, err := ca.Request(ctx, idb, []byte("ping"))
		if err != nil {
			panic(err)
		}
		answer <- resp
	}()
	for m, err := range cb.Receive(ctx) {
		if err != nil {
			panic(err)
		}
		// A request has a non-zero RequestID; it is answered once.
		if err := cb.Respond(m.RequestID, []byte("pong")); err != nil {
			panic(err)
		}
		if err := cb.Respond(m.RequestID, []byte("again")); errors.Is(err, ringwire.ErrUnknownRequest) {
			fmt.Println("second answer refused")
		}
		break
	}
	fmt.Printf("%s\n", <-answer)
	// Output:
	// second answer refused
	// pong
}

func ExampleNode_Close() {
	n, err := ringwire.NewNode(ringwire.Config{Seed: seed(1), Network: "example", Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	ch, _ := n.OpenChannel(ringwire.ChannelDesc{ID: 0x20})
	fmt.Println(n.Close(), n.Close()) // idempotent
	// The node's channels report it stopped; the node's own methods report it closed.
	_, err = ch.ReceiveBatch(context.Background())
	fmt.Println(errors.Is(err, ringwire.ErrStopped))
	_, err = n.ID()
	fmt.Println(errors.Is(err, ringwire.ErrClosed))
	fmt.Println(ch.Close())
	// Output:
	// <nil> <nil>
	// true
	// true
	// <nil>
}
