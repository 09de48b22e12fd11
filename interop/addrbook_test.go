package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/pex"
)

// TestAddrBookStockToRingwireToStock: stock's address book (pex.NewAddrBook) writes
// addrbook.json in a CometBFT home — new addresses from two sources, one of them told by
// both, IPv6 ones, and tried ones (MarkGood). A ringwire node started from that home reads it
// (its PEX addresses are stock's) and writes it again when it stops; stock's address book
// reads what ringwire wrote: the same addresses, the tried ones still good, the key kept.
func TestAddrBookStockToRingwireToStock(t *testing.T) {
	home := t.TempDir()
	cfg.EnsureRoot(home)
	conf := cfg.DefaultConfig()
	conf.SetRoot(home)
	conf.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	cfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), conf)
	if _, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile()); err != nil {
		t.Fatal(err)
	}
	path := conf.P2P.AddrBookFile()

	// Stock writes the book (strict, as config.toml says).
	book := pex.NewAddrBook(path, conf.P2P.AddrBookStrict)
	book.SetLogger(log.NewNopLogger())
	srcA := bookAddr(t, 0xa0, "5.6.7.8")
	srcB := bookAddr(t, 0xb0, "9.10.11.12")
	var all []*p2p.NetAddress
	for i := 1; i <= 40; i++ {
		a := bookAddr(t, i, fmt.Sprintf("1.%d.3.4", i))
		src := srcA
		if i > 30 {
			src = srcB
		}
		if err := book.AddAddress(a, src); err != nil {
			t.Fatal(err)
		}
		all = append(all, a)
	}
	for i := 41; i <= 43; i++ {
		a := bookAddr(t, i, fmt.Sprintf("2a01:4f8:%x::1", i))
		if err := book.AddAddress(a, srcB); err != nil {
			t.Fatal(err)
		}
		all = append(all, a)
	}
	// Told by the other source too (stock adds it to a second bucket one time in two).
	if err := book.AddAddress(all[15], srcB); err != nil {
		t.Fatal(err)
	}
	good := all[:10]
	for _, a := range good {
		book.MarkGood(a.ID)
	}
	book.Save()
	key := bookKey(t, path)

	// ringwire reads it.
	rw := startPeer(t, "--home", home, "--channel", "20")
	rw.cmdLine("pex-addrs")
	line := rw.expect("pex-addrs", 10*time.Second)
	got := strings.Fields(strings.TrimPrefix(line, "pex-addrs"))
	sort.Strings(got)
	want := make([]string, 0, len(all))
	for _, a := range all {
		want = append(want, a.String())
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ringwire read %d addresses from stock's book:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
	}

	// ringwire writes it when it stops (a new file, renamed over stock's).
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	rw.stop()
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Fatal("ringwire did not write the address book when it stopped")
	}
	if k := bookKey(t, path); k != key {
		t.Fatalf("ringwire changed the book's key from %s to %s", key, k)
	}

	// Stock reads what ringwire wrote.
	again := pex.NewAddrBook(path, conf.P2P.AddrBookStrict)
	again.SetLogger(log.NewNopLogger())
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = again.Stop()
		again.(interface{ Wait() }).Wait()
	})
	if again.Size() != len(all) {
		t.Fatalf("stock read %d addresses from ringwire's book, want %d", again.Size(), len(all))
	}
	for i, a := range all {
		if !again.HasAddress(a) {
			t.Fatalf("stock's book lacks %s after ringwire wrote it", a)
		}
		if isGood := again.IsGood(a); isGood != (i < len(good)) {
			t.Fatalf("%s: IsGood = %v after ringwire wrote it", a, isGood)
		}
	}
	// And can pick from both tables.
	if a := again.PickAddress(0); a == nil || !again.IsGood(a) {
		t.Fatalf("stock picked %v from the tried table", a)
	}
	if a := again.PickAddress(100); a == nil || again.IsGood(a) {
		t.Fatalf("stock picked %v from the new table", a)
	}
}

// bookAddr is node n (its ID n in hex, padded) at ip:26656.
func bookAddr(t *testing.T, n int, ip string) *p2p.NetAddress {
	t.Helper()
	host := ip
	if strings.Contains(ip, ":") {
		host = "[" + ip + "]"
	}
	a, err := p2p.NewNetAddressString(fmt.Sprintf("%040x@%s:26656", n, host))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// bookKey is the "key" of the address book file at path.
func bookKey(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Key   string            `json:"key"`
		Addrs []json.RawMessage `json:"addrs"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.Key == "" {
		t.Fatalf("%s has no key", path)
	}
	return f.Key
}
