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
func run(t *testing.T, rwc, stock, mix string, blocks int, extra ...string) string {
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
	cmd.Env = append(cmd.Env, extra...)
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
	rwc, stock := binaries(t, "starts 4 validator processes twice")
	loader := build(t, t.TempDir(), "localnet-load", "./cmd/localnet-load")

	out := run(t, rwc, stock, "stock stock ringwire ringwire", 20,
		"LOADER="+loader, "LOAD_SECONDS=4", "LOAD_RATE=50", "LOAD_TABLE=2s")
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
	// The load of `make run`: every transaction offered in the window is committed, and the
	// live table and the summary show peers by protocol.
	m := regexp.MustCompile(`summary \(stock stock ringwire ringwire\): 50 tx/s of 256 B offered for 4 s: (\d+) sent, (\d+) committed, (\d+) not committed`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no load summary in the mixed localnet's report")
	}
	if sent, _ := strconv.Atoi(m[1]); sent < 150 || m[2] != m[1] || m[3] != "0" {
		t.Errorf("load: %s sent, %s committed, %s not committed; want about 200 sent, all committed", m[1], m[2], m[3])
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`node2 +ringwire +\d+ +[\d.]+ +3 \(1 native, 2 stock\)`),
		regexp.MustCompile(`committed [\d.]+ tx/s; commit latency p50 \d+ ms, p99 \d+ ms; block interval mean \d+ ms`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the load report lacks %q", want)
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

// binaries skips the test in -short mode or without run.sh's tools, and builds
// ringwire-cometbft and stock cometbft.
func binaries(t *testing.T, why string) (rwc, stock string) {
	t.Helper()
	if testing.Short() {
		t.Skip(why)
	}
	for _, tool := range []string{"curl", "jq", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("run.sh needs %s", tool)
		}
	}
	bin := t.TempDir()
	rwc = build(t, bin, "ringwire-cometbft", "./cmd/ringwire-cometbft")
	stock = build(t, bin, "cometbft", "github.com/cometbft/cometbft/cmd/cometbft")
	return rwc, stock
}

// A validator started after the others have committed blocks block-syncs from peers of the
// other kind only (a ringwire-cometbft node from three stock nodes, a stock node from three
// ringwire-cometbft nodes) and then follows consensus; a ringwire-cometbft validator killed
// with SIGKILL mid-chain leaves the other three committing, and restarted from its home it
// catches up with them.
func TestLocalnetLateStartAndKill(t *testing.T) {
	rwc, stock := binaries(t, "starts 4 validator processes three times")

	out := run(t, rwc, stock, "stock stock stock ringwire", 10, "LATE=3")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`node3 \(ringwire, started late, synced from 3 stock\) caught up in \d+s: height \d+, the others at \d+; block sync handed over to consensus [1-9]`),
		regexp.MustCompile(`node3 \(ringwire\) speaks: node0=stock node1=stock node2=stock`),
		regexp.MustCompile(`OK: 4 validators`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the late ringwire node's report lacks %q", want)
		}
	}

	out = run(t, rwc, stock, "ringwire ringwire ringwire stock", 10, "LATE=3")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`node3 \(stock, started late, synced from 3 ringwire\) caught up in \d+s: height \d+, the others at \d+; block sync handed over to consensus [1-9]`),
		regexp.MustCompile(`every node has 3 peers in /net_info`),
		regexp.MustCompile(`OK: 4 validators`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the late stock node's report lacks %q", want)
		}
	}

	out = run(t, rwc, stock, "stock stock ringwire ringwire", 10, "KILL=2")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`node2 \(ringwire\) killed with SIGKILL at height \d+`),
		regexp.MustCompile(`with node2 down the others committed 5 more blocks`),
		regexp.MustCompile(`node2 \(ringwire, restarted after SIGKILL\) caught up in \d+s`),
		regexp.MustCompile(`node2 \(ringwire\) speaks: node0=stock node1=stock node3=native`),
		regexp.MustCompile(`OK: 4 validators`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the kill -9 run's report lacks %q", want)
		}
	}
}
