package localnet

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// build compiles pkg (a main package path, relative to the cometbft module or a module path)
// into dir and returns the binary's path.
func build(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = ".." // the cometbft module
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// run runs run.sh with the binaries, node kinds mix and a few blocks, and returns its output.
func run(t *testing.T, rwc, stock, mix string, blocks int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./run.sh")
	cmd.Env = append(os.Environ(),
		"RINGWIRE_COMETBFT="+rwc,
		"COMETBFT="+stock,
		"MIX="+mix,
		"BLOCKS="+strconv.Itoa(blocks),
		"TIMEOUT_COMMIT=100ms",
		"DEADLINE=100",
		"OUT="+filepath.Join(t.TempDir(), "net"),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("run.sh (%s):\n%s", mix, out.String())
	if err != nil {
		t.Fatalf("run.sh: %v", err)
	}
	return out.String()
}

// The localnet of `make localnet`, bounded (20 blocks at a 100 ms commit timeout): 2 stock
// `cometbft` and 2 `ringwire-cometbft` validators commit with equal block and app hashes, a
// transaction sent to a stock node's RPC is read through a ringwire node's and the other way
// round, and the ringwire nodes speak the native protocol to each other and stock framing to
// the stock nodes. Then the same with 4 ringwire-cometbft validators.
func TestLocalnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 4 validator processes twice")
	}
	for _, tool := range []string{"curl", "jq", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("run.sh needs %s", tool)
		}
	}
	bin := t.TempDir()
	rwc := build(t, bin, "ringwire-cometbft", "./cmd/ringwire-cometbft")
	stock := build(t, bin, "cometbft", "github.com/cometbft/cometbft/cmd/cometbft")

	out := run(t, rwc, stock, "stock stock ringwire ringwire", 20)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`every node committed 20 blocks`),
		regexp.MustCompile(`sent to node0 \(stock\), committed at height \d+, read back through node2 \(ringwire\)`),
		regexp.MustCompile(`sent to node2 \(ringwire\), committed at height \d+, read back through node0 \(stock\)`),
		regexp.MustCompile(`node2 \(ringwire\) speaks: node0=stock node1=stock node3=native`),
		regexp.MustCompile(`node3 \(ringwire\) speaks: node0=stock node1=stock node2=native`),
		regexp.MustCompile(`OK: 4 validators`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the mixed localnet's report lacks %q", want)
		}
	}

	out = run(t, rwc, stock, "ringwire ringwire ringwire ringwire", 20)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`every node committed 20 blocks`),
		regexp.MustCompile(`node0 \(ringwire\) speaks: node1=native node2=native node3=native`),
		regexp.MustCompile(`OK: 4 validators`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the all-ringwire localnet's report lacks %q", want)
		}
	}
}
