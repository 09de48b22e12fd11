// A Go program that uses ringwire as a library user would: bindings-go required as a module,
// the C library found through pkg-config (`make install PREFIX=...`, then
// PKG_CONFIG_PATH=PREFIX/lib/pkgconfig). Two nodes on loopback exchange a message and a
// request. `make go-outside` builds and runs it from a folder outside the repository.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	ringwire "github.com/ringwire/ringwire/bindings-go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func start(seed byte) (*ringwire.Node, *ringwire.Channel, error) {
	n, err := ringwire.NewNode(ringwire.Config{
		Seed:    bytes.Repeat([]byte{seed}, 32),
		Network: "outside",
		Listen:  "127.0.0.1:0",
	})
	if err != nil {
		return nil, nil, err
	}
	ch, err := n.OpenChannel(ringwire.ChannelDesc{ID: 0x40})
	if err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	return n, ch, nil
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, ca, err := start(1)
	if err != nil {
		return err
	}
	defer a.Close()
	b, cb, err := start(2)
	if err != nil {
		return err
	}
	defer b.Close()
	addr, err := b.ListenAddr()
	if err != nil {
		return err
	}
	idb, err := a.Dial(addr, nil)
	if err != nil {
		return err
	}
	if err := ca.Send(ctx, idb, []byte("hello from outside")); err != nil {
		return err
	}
	for m, err := range cb.ReceiveCopy(ctx) {
		if err != nil {
			return err
		}
		fmt.Printf("received %q\n", m.Payload)
		break
	}
	go func() {
		for m, err := range cb.Receive(ctx) {
			if err != nil {
				return
			}
			if m.RequestID != 0 {
				_ = cb.Respond(m.RequestID, append([]byte("echo: "), m.Payload...))
			}
		}
	}()
	answer, err := ca.Request(ctx, idb, []byte("ping"))
	if err != nil {
		return err
	}
	fmt.Printf("answered %q\n", answer)
	info, err := a.PeerInfo(idb)
	if err != nil {
		return err
	}
	fmt.Printf("peer %s at %s, native %v: ok\n", info.ID, info.RemoteAddr, info.Native)
	return nil
}
