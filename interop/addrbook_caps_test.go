package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/pex"
)

// TestAddrBookWithRingwireCapabilitiesReadsInStock: ringwire keeps each node's capabilities
// in an extra "ringwire" field of its addrbook.json entries
// ({"capabilities": [...], "confirmed": bool}, engine/src/pex/book/file.rs). Stock's reader
// (Go's encoding/json) ignores the field: a book whose every entry carries it loads in stock
// with every address, and stock's next write drops the field.
func TestAddrBookWithRingwireCapabilitiesReadsInStock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "addrbook.json")
	book := pex.NewAddrBook(path, true)
	book.SetLogger(log.NewNopLogger())
	src := bookAddr(t, 0xa0, "5.6.7.8")
	var all []*p2p.NetAddress
	for i := 1; i <= 20; i++ {
		a := bookAddr(t, i, fmt.Sprintf("1.%d.3.4", i))
		if err := book.AddAddress(a, src); err != nil {
			t.Fatal(err)
		}
		all = append(all, a)
	}
	book.MarkGood(all[0].ID)
	book.Save()

	// Add ringwire's field to every entry, as ringwire writes it.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	entries := file["addrs"].([]any)
	for i, e := range entries {
		e.(map[string]any)["ringwire"] = map[string]any{
			"capabilities": []string{"archive", fmt.Sprintf("c%d", i)},
			"confirmed":    i%2 == 0,
		}
	}
	withCaps, err := json.MarshalIndent(file, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, withCaps, 0o600); err != nil {
		t.Fatal(err)
	}

	again := pex.NewAddrBook(path, true)
	again.SetLogger(log.NewNopLogger())
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	if again.Size() != len(all) {
		t.Fatalf("stock read %d addresses from a book with ringwire's field, want %d", again.Size(), len(all))
	}
	for _, a := range all {
		if !again.HasAddress(a) {
			t.Fatalf("stock's book lacks %s", a)
		}
	}
	if !again.IsGood(all[0]) {
		t.Fatalf("%s is no longer good", all[0])
	}
	again.Save()
	_ = again.Stop()
	again.(interface{ Wait() }).Wait()
	rewritten, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(rewritten, &back); err != nil {
		t.Fatal(err)
	}
	for _, e := range back["addrs"].([]any) {
		if _, ok := e.(map[string]any)["ringwire"]; ok {
			t.Fatal("stock kept ringwire's field")
		}
	}
}
