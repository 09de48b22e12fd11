package interop

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
)

// Shortened keepalive for these tests (stock: ping 60 s, pong timeout 45 s).
const (
	pingMs = 1000
	pongMs = 600
)

var keepaliveFlags = []string{"--ping-ms", "1000", "--pong-ms", "600"}

// TestKeepaliveIdleConnectionSurvives: with pings every 1 s and a 600 ms pong timeout on both
// sides, an idle stock↔ringwire connection lives through 4 s (almost seven pong timeouts),
// then still carries messages both ways.
func TestKeepaliveIdleConnectionSurvives(t *testing.T) {
	rw := startPeer(t, append([]string{"--channel", "20"}, keepaliveFlags...)...)
	r := newRawReactor(stockChannelSpecs[1:2])
	st := startStock(t, stockOptions{ping: pingMs * time.Millisecond, pong: pongMs * time.Millisecond},
		map[string]p2p.Reactor{"raw": r})
	st.dial(t, rw)
	peer := r.waitUp(t, 10*time.Second)
	rw.expect("peer-up ", 10*time.Second)

	rw.noEvent("peer-down", 4*time.Second)
	select {
	case d := <-r.down:
		t.Fatalf("stock dropped the idle ringwire peer: %v", d.reason)
	default:
	}
	if !peer.Send(p2p.Envelope{ChannelID: 0x20, Message: &rawMsg{B: payload(100, 1)}}) {
		t.Fatal("stock send after idle failed")
	}
	if got := <-rw.recvs; !strings.HasSuffix(got, digest(payload(100, 1))) {
		t.Fatalf("ringwire got %s", got)
	}
	rw.cmdLine("send %s 20 100 2", st.key.ID())
	deadline := time.Now().Add(5 * time.Second)
	for len(r.received(0x20)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("stock received nothing after the idle time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSilentRingwireDroppedByStock: a ringwire process that stops answering (SIGSTOP: the
// socket stays open, nothing is read or written) is dropped by stock with "pong timeout",
// the reason stock gives a silent stock peer (TestSilentStockPeerDroppedByStock).
func TestSilentRingwireDroppedByStock(t *testing.T) {
	rw := startPeer(t, "--channel", "20")
	r := newRawReactor(stockChannelSpecs[1:2])
	st := startStock(t, stockOptions{ping: pingMs * time.Millisecond, pong: pongMs * time.Millisecond},
		map[string]p2p.Reactor{"raw": r})
	st.dial(t, rw)
	r.waitUp(t, 10*time.Second)
	rw.expect("peer-up ", 10*time.Second)
	if err := rw.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	d := r.waitDown(t, 10*time.Second)
	_ = rw.cmd.Process.Signal(syscall.SIGCONT)
	if d.id != p2p.ID(rw.ID) || !strings.Contains(errText(d.reason), "pong timeout") {
		t.Fatalf("stock dropped %s for %v; want ringwire %s for pong timeout", d.id, d.reason, rw.ID)
	}
	rw.expect("peer-down "+string(st.key.ID()), 10*time.Second)
}

// TestSilentStockPeerDroppedByStock is the reference: stock drops a silent stock-framed peer
// for "pong timeout".
func TestSilentStockPeerDroppedByStock(t *testing.T) {
	r := newRawReactor(stockChannelSpecs[1:2])
	st := startStock(t, stockOptions{ping: pingMs * time.Millisecond, pong: pongMs * time.Millisecond},
		map[string]p2p.Reactor{"raw": r})
	rc := dialRaw(t, st.addr.DialString(), []byte{0x20})
	r.waitUp(t, 10*time.Second)
	d := r.waitDown(t, 10*time.Second)
	if d.id != rc.ID || !strings.Contains(errText(d.reason), "pong timeout") {
		t.Fatalf("stock dropped %s for %v", d.id, d.reason)
	}
}

// TestSilentStockPeerDroppedByRingwire: ringwire drops a silent stock-framed peer (stock's
// SecretConnection and NodeInfo, then no pong) for "pong timeout", as stock does.
func TestSilentStockPeerDroppedByRingwire(t *testing.T) {
	rw := startPeer(t, append([]string{"--channel", "20"}, keepaliveFlags...)...)
	rc := dialRaw(t, rw.Addr, []byte{0x20})
	rw.expect("peer-up "+string(rc.ID), 10*time.Second)
	down := rw.expect("peer-down "+string(rc.ID), 10*time.Second)
	if !strings.Contains(down, "pong timeout") {
		t.Fatalf("ringwire: %s", down)
	}
}

func errText(reason any) string {
	if e, ok := reason.(error); ok {
		return e.Error()
	}
	return ""
}
