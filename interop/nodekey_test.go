package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
)

// runRingwire runs the ringwire command from the repository root through cargo
// and returns its standard output. The test is skipped when cargo is missing.
func runRingwire(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("cargo"); err != nil {
		t.Skip("cargo not found; the ringwire command cannot be built")
	}
	cmd := exec.Command("cargo", append([]string{"run", "-q", "-p", "ringwire-cli", "--"}, args...)...)
	cmd.Dir = ".."
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ringwire %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestRingwireShowsStockNodeID: a home directory written by stock code
// (config.toml and a freshly generated node_key.json) gives ringwire the node
// ID stock computes.
func TestRingwireShowsStockNodeID(t *testing.T) {
	home := t.TempDir()
	cfg.EnsureRoot(home)
	conf := cfg.DefaultConfig()
	conf.SetRoot(home)
	nodeKey, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	got := runRingwire(t, "show-node-id", "--home", home)
	if got != string(nodeKey.ID()) {
		t.Fatalf("ringwire node ID %q, stock %q", got, nodeKey.ID())
	}
	check := runRingwire(t, "config", "check", "--home", home)
	if !strings.Contains(check, ": ok") {
		t.Fatalf("ringwire config check --home: %q", check)
	}
}

// TestStockReadsRingwireKey: a key written by `ringwire keygen` loads in stock
// code with the node ID ringwire printed.
func TestStockReadsRingwireKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node_key.json")
	id := runRingwire(t, "keygen", "--out", path)
	nodeKey, err := p2p.LoadNodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(nodeKey.ID()) != id {
		t.Fatalf("stock node ID %q, ringwire printed %q", nodeKey.ID(), id)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Fatalf("node_key.json mode %o, want 600", mode)
	}
}
