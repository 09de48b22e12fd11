package ringwire

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// childEnv makes the test binary, re-executed by TestTwoProcesses, play the remote node.
const childEnv = "RINGWIRE_GO_TEST_CHILD"

// twoProcChannels are the channels the two processes exchange messages on.
var twoProcChannels = []byte{0x50, 0x51, 0x52}

// twoProcCount is how many messages go each way on each channel.
const twoProcCount = 40

// waitPeers waits until n counts at least want connected peers.
func waitPeers(t testing.TB, n *Node, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := n.PeerCount()
		if err != nil {
			t.Fatal(err)
		}
		if c >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer count stayed %d, want %d", c, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTwoProcesses runs the remote node in a child process (this test binary again): the
// parent sends on three channels at once, the child echoes every message back on the channel
// it came on, and the parent checks each echo, in order.
func TestTwoProcesses(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		twoProcChild(t)
		return
	}
	a := startNode(t, 1)
	defer a.Close()
	chans := make(map[byte]*Channel)
	for _, id := range twoProcChannels {
		ch, err := a.OpenChannel(ChannelDesc{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		chans[id] = ch
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stdout)
	var addr, idHex string
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "LISTEN" {
			addr, idHex = f[1], f[2]
			break
		}
	}
	if addr == "" {
		_ = cmd.Wait()
		t.Fatalf("child printed no LISTEN line; stderr:\n%s", stderr.String())
	}
	var rest bytes.Buffer
	drained := make(chan struct{})
	go func() {
		for sc.Scan() {
			rest.WriteString(sc.Text() + "\n")
		}
		close(drained)
	}()

	peer, err := a.Dial(addr, nil)
	if err != nil {
		t.Fatalf("dial the child: %v", err)
	}
	if peer.String() != idHex {
		t.Fatalf("dialed %v, the child says it is %s", peer, idHex)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(chans))
	for id, ch := range chans {
		wg.Add(2)
		go func() {
			defer wg.Done()
			envs := make([]Envelope, twoProcCount)
			for i := range envs {
				envs[i] = Envelope{To: ToPeer, Peer: peer, Payload: payload(int(id), i)}
			}
			if err := ch.SendBatch(ctx, envs); err != nil {
				errs <- fmt.Errorf("channel %#x: send: %w", id, err)
			}
		}()
		go func() {
			defer wg.Done()
			i := 0
			for m, err := range ch.Receive(ctx) {
				if err != nil {
					errs <- fmt.Errorf("channel %#x: echo %d: %w", id, i, err)
					return
				}
				if m.Peer != peer || m.Channel != id || !bytes.Equal(m.Payload, payload(int(id), i)) {
					errs <- fmt.Errorf("channel %#x: echo %d differs (channel %#x, %d bytes)", id, i, m.Channel, len(m.Payload))
					return
				}
				if i++; i == twoProcCount {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_ = stdin.Close() // the child's signal to stop
	<-drained
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, rest.String(), stderr.String())
	}
}

// twoProcChild is the child side of TestTwoProcesses.
func twoProcChild(t *testing.T) {
	b := startNode(t, 2)
	defer b.Close()
	id, err := b.ID()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := b.ListenAddr()
	if err != nil {
		t.Fatal(err)
	}
	var chans []*Channel
	for _, cid := range twoProcChannels {
		ch, err := b.OpenChannel(ChannelDesc{ID: cid})
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		chans = append(chans, ch)
	}
	fmt.Printf("LISTEN %s %s\n", addr, id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for m, err := range ch.Receive(ctx) {
				if err != nil {
					t.Errorf("channel %#x after %d: %v", ch.ID(), n, err)
					return
				}
				// Send copies the payload, so the in-place view is fine here.
				if err := ch.Send(ctx, m.Peer, m.Payload); err != nil {
					t.Errorf("channel %#x: echo %d: %v", ch.ID(), n, err)
					return
				}
				if n++; n == twoProcCount {
					return
				}
			}
		}()
	}
	wg.Wait()
	// Stay up until the parent has read the echoes and closes our standard input.
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestRequestDeadline: a request nobody answers ends at its context's deadline with an error
// that is both context.DeadlineExceeded and the library's ErrTimeout.
func TestRequestDeadline(t *testing.T) {
	_, _, ca, _, _, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ca.Request(ctx, idb, []byte("anyone?"))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("unanswered request: %v", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond || waited > 10*time.Second {
		t.Fatalf("unanswered request returned after %v", waited)
	}
	// An expired context fails before anything is sent.
	if _, err := ca.Request(ctx, idb, []byte("late")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request with an expired context: %v", err)
	}
}

// TestReceiveCancelWhileBlocked: cancelling the context ends a Receive loop that waits in
// another goroutine.
func TestReceiveCancelWhileBlocked(t *testing.T) {
	n := startNode(t, 5)
	defer n.Close()
	ch, err := n.OpenChannel(ChannelDesc{ID: 0x43})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for _, err := range ch.Receive(ctx) {
			done <- err
			return
		}
		done <- errors.New("loop ended without an error")
	}()
	time.Sleep(150 * time.Millisecond) // let it block in the library
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled receive: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("receive did not notice the cancellation")
	}
}

// TestBackpressure: the receiver never drains and queues are small, so the sender's queue
// fills; a send with a short context then fails with an error wrapping the library's code.
func TestBackpressure(t *testing.T) {
	_, _, ca, _, _, idb := pairDesc(t, ChannelDesc{ID: 0x44, SendQueueCapacity: 4})
	msg := bytes.Repeat([]byte{0x5a}, 64<<10)
	for i := range 4000 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := ca.Send(ctx, idb, msg)
		cancel()
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrFull) {
			t.Fatalf("send %d: %v (want a Timeout or Full code)", i, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("send %d: %v (want it to wrap the context's error too)", i, err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Op != "send" {
			t.Fatalf("send %d: %v is not a send *Error", i, err)
		}
		t.Logf("backpressure after %d messages of 64 KiB: %v", i, err)
		return
	}
	t.Fatal("4000 messages of 64 KiB never met backpressure")
}

// waitGoroutines waits until no more than want goroutines run.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseWhileReceiving: closing the channel, or the node, under a Receive blocked in
// another goroutine ends that Receive promptly with ErrClosed or ErrStopped, and leaves no
// goroutine behind.
func TestCloseWhileReceiving(t *testing.T) {
	for _, what := range []string{"channel", "node"} {
		t.Run(what, func(t *testing.T) {
			base := runtime.NumGoroutine()
			n := startNode(t, 6)
			ch, err := n.OpenChannel(ChannelDesc{ID: 0x45})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				for _, err := range ch.Receive(context.Background()) {
					done <- err
					return
				}
			}()
			time.Sleep(150 * time.Millisecond) // let it block in the library
			start := time.Now()
			if what == "channel" {
				err = ch.Close()
			} else {
				err = n.Close()
			}
			if err != nil {
				t.Fatalf("close: %v", err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrStopped) {
					t.Fatalf("blocked receive: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("blocked receive did not return after close")
			}
			t.Logf("receive returned %v after close", time.Since(start))
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			waitGoroutines(t, base)
		})
	}
}

// TestCgoCallsCounted: the counter behind the benchmark's calls-per-message sees every call,
// and one SendBatch of many envelopes is one call.
func TestCgoCallsCounted(t *testing.T) {
	_, _, ca, cb, _, idb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	envs := make([]Envelope, 50)
	for i := range envs {
		envs[i] = Envelope{To: ToPeer, Peer: idb, Payload: payload(0, i)}
	}
	before := cgoCalls.Load()
	if err := ca.SendBatch(ctx, envs); err != nil {
		t.Fatal(err)
	}
	if calls := cgoCalls.Load() - before; calls != 1 {
		t.Fatalf("SendBatch of 50 made %d calls into C, want 1", calls)
	}
	got := 0
	for _, err := range cb.Receive(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if got++; got == len(envs) {
			break
		}
	}
	if ABIVersion(); cgoCalls.Load() == before {
		t.Fatal("calls not counted")
	}
}

// TestOneProcessSeveralChannels: two nodes in this process exchange messages both ways on
// three channels at once; each channel delivers its own messages, in order.
func TestOneProcessSeveralChannels(t *testing.T) {
	a, b := startNode(t, 1), startNode(t, 2)
	defer a.Close()
	defer b.Close()
	ids := []byte{0x60, 0x61, 0x62}
	open := func(n *Node) []*Channel {
		var chs []*Channel
		for _, id := range ids {
			ch, err := n.OpenChannel(ChannelDesc{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ch.Close() })
			chs = append(chs, ch)
		}
		return chs
	}
	ca, cb := open(a), open(b)
	ida, _ := a.ID()
	addr, _ := b.ListenAddr()
	idb, err := a.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitPeers(t, b, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const count = 30
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(ids))
	for k, id := range ids {
		for _, dir := range []struct {
			from, to *Channel
			peer     NodeID
			sender   NodeID
			tag      int
		}{{ca[k], cb[k], idb, ida, int(id)}, {cb[k], ca[k], ida, idb, int(id) + 0x100}} {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for i := range count {
					if err := dir.from.Send(ctx, dir.peer, payload(dir.tag, i)); err != nil {
						errs <- fmt.Errorf("channel %#x send %d: %w", id, i, err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				i := 0
				for m, err := range dir.to.Receive(ctx) {
					if err != nil {
						errs <- fmt.Errorf("channel %#x receive %d: %w", id, i, err)
						return
					}
					if m.Channel != id || m.Peer != dir.sender || !bytes.Equal(m.Payload, payload(dir.tag, i)) {
						errs <- fmt.Errorf("channel %#x: message %d differs", id, i)
						return
					}
					if i++; i == count {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
