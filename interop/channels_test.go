package interop

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
)

// messagesPerChannel is how many messages go each way on each channel.
const messagesPerChannel = 1000

// largestOn is the largest message sent on a channel: its full receive cap (100 MiB on
// blocksync, 0x40), so the last two messages of each channel are exactly at the cap.
func largestOn(s chanSpec) int { return s.recvCap }

func seedFor(dir uint32, ch byte, k int) uint32 { return dir<<31 | uint32(ch)<<16 | uint32(k) }

// TestTenChannelsBothWays: on each of the ten stock channels, 1,000 messages each way between
// a stock switch and ringwire, from 1 byte to the channel's receive cap, every one checked by
// SHA-256 in order. Channel 0x00 carries raw messages here with PEX off on both sides (with
// PEX on, 0x00 belongs to PEX; see pex_test.go).
func TestTenChannelsBothWays(t *testing.T) {
	rw := startPeer(t, channelFlags(stockChannelSpecs)...)
	r := newRawReactor(stockChannelSpecs)
	st := startStock(t, stockOptions{}, map[string]p2p.Reactor{"raw": r})
	st.dial(t, rw)
	peer := r.waitUp(t, 10*time.Second)
	rw.expect("peer-up "+string(st.key.ID())+" compat", 10*time.Second)

	plan := map[byte][]int{}
	for _, s := range stockChannelSpecs {
		plan[s.id] = sizes(messagesPerChannel, s.recvCap, largestOn(s))
	}
	// Several MiB on blocksync below its cap too.
	plan[0x40][messagesPerChannel/2] = 8 << 20

	// stock → ringwire, one goroutine per channel.
	var wg sync.WaitGroup
	sendErr := make(chan error, len(stockChannelSpecs))
	for _, s := range stockChannelSpecs {
		wg.Add(1)
		go func(ch byte) {
			defer wg.Done()
			for k, n := range plan[ch] {
				if !peer.Send(p2p.Envelope{ChannelID: ch, Message: &rawMsg{B: payload(n, seedFor(0, ch, k))}}) {
					sendErr <- fmt.Errorf("stock Send on %#x message %d (%d bytes) failed", ch, k, n)
					return
				}
			}
		}(s.id)
	}
	// ringwire → stock, interleaved across channels.
	go func() {
		for k := range messagesPerChannel {
			for _, s := range stockChannelSpecs {
				rw.cmdLine("send %s %02x %d %d", st.key.ID(), s.id, plan[s.id][k], seedFor(1, s.id, k))
			}
		}
	}()

	// What ringwire received, in order per channel.
	next := map[byte]int{}
	total := 0
	deadline := time.After(240 * time.Second)
	for total < messagesPerChannel*len(stockChannelSpecs) {
		select {
		case line := <-rw.recvs:
			f := strings.Fields(line)
			chv, _ := strconv.ParseUint(f[2], 16, 8)
			ch := byte(chv)
			k := next[ch]
			if f[1] != string(st.key.ID()) {
				t.Fatalf("ringwire received from %s: %s", f[1], line)
			}
			if k >= messagesPerChannel {
				t.Fatalf("extra message on %#x: %s", ch, line)
			}
			n := plan[ch][k]
			if want := fmt.Sprintf("%d %s", n, digest(payload(n, seedFor(0, ch, k)))); f[3]+" "+f[4] != want {
				t.Fatalf("ringwire message %d on %#x: got %s %s, want %s", k, ch, f[3], f[4], want)
			}
			next[ch] = k + 1
			total++
		case err := <-sendErr:
			t.Fatal(err)
		case d := <-r.down:
			t.Fatalf("stock dropped ringwire: %v", d.reason)
		case <-deadline:
			t.Fatalf("ringwire received %d of %d messages: %v", total, messagesPerChannel*len(stockChannelSpecs), next)
		}
	}
	wg.Wait()

	// What stock received.
	for {
		done := true
		for _, s := range stockChannelSpecs {
			if len(r.received(s.id)) < messagesPerChannel {
				done = false
			}
		}
		if done {
			break
		}
		select {
		case d := <-r.down:
			t.Fatalf("stock dropped ringwire: %v", d.reason)
		case <-deadline:
			for _, s := range stockChannelSpecs {
				t.Logf("%#x: %d", s.id, len(r.received(s.id)))
			}
			t.Fatal("stock did not receive every message")
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, s := range stockChannelSpecs {
		got := r.received(s.id)
		if len(got) != messagesPerChannel {
			t.Fatalf("stock received %d messages on %#x", len(got), s.id)
		}
		for k, rec := range got {
			n := plan[s.id][k]
			if rec.n != n || rec.digest != digest(payload(n, seedFor(1, s.id, k))) {
				t.Fatalf("stock message %d on %#x: %d bytes %s, want %d bytes", k, s.id, rec.n, rec.digest, n)
			}
		}
	}
	for {
		select {
		case line := <-rw.events:
			if strings.HasPrefix(line, "send-err") || strings.HasPrefix(line, "peer-down") {
				t.Fatal(line)
			}
		default:
			return
		}
	}
}
