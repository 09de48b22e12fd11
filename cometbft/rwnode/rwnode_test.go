package rwnode

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtflags "github.com/cometbft/cometbft/libs/cli/flags"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"

	"github.com/ringwire/ringwire/cometbft/internal/testnet"
	"github.com/ringwire/ringwire/cometbft/rwswitch"
)

// The swap writes node.Node's unexported fields by name: this fails loudly when the CometBFT
// module is another version than the one the swap was written for, or when the fields it
// writes are renamed or change type.
func TestNodeLayout(t *testing.T) {
	// The source file of node.NewNode, as compiled, names the module version
	// (…/github.com/cometbft/cometbft@VERSION/node/node.go); build information, when the
	// binary has it, names it too.
	file, _ := runtime.FuncForPC(reflect.ValueOf(node.NewNode).Pointer()).FileLine(reflect.ValueOf(node.NewNode).Pointer())
	got := ""
	if _, rest, ok := strings.Cut(file, "github.com/cometbft/cometbft@"); ok {
		got, _, _ = strings.Cut(rest, "/")
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/cometbft/cometbft" && d.Replace != nil {
				t.Fatalf("CometBFT is replaced by %s %s", d.Replace.Path, d.Replace.Version)
			}
		}
	}
	if got != CometBFTVersion {
		t.Fatalf("CometBFT is %q (node.NewNode is in %s); rwnode/swap.go was written for %s: check node.Node's fields sw and transport "+
			"and what Node.OnStart and OnStop do with them, then update CometBFTVersion", got, file, CometBFTVersion)
	}
	if err := CheckLayout(); err != nil {
		t.Fatal(err)
	}
	// The check itself notices a renamed or retyped field.
	saved := swappedFields
	t.Cleanup(func() { swappedFields = saved })
	swappedFields = append(saved[:1:1], struct {
		name string
		typ  reflect.Type
	}{"transport", reflect.TypeFor[p2p.Switcher]()})
	if err := CheckLayout(); err == nil {
		t.Fatal("CheckLayout accepted a field of another type")
	}
	swappedFields = append(saved[:1:1], struct {
		name string
		typ  reflect.Type
	}{"transportRenamed", reflect.TypeFor[p2p.Transport]()})
	if err := CheckLayout(); err == nil {
		t.Fatal("CheckLayout accepted a missing field")
	}
}

// logger is node name's logger at info level for p2p and error level elsewhere (debug lines
// would swamp the output): on standard output with -v, else kept and shown when the test
// fails.
func logger(t *testing.T, name string) log.Logger {
	t.Helper()
	var w io.Writer = os.Stdout
	if !testing.Verbose() {
		buf := &lockedBuffer{}
		w = buf
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's log:\n%s", name, buf.String())
			}
		})
	}
	l, err := cmtflags.ParseLogLevel("*:error,p2p:info", log.NewTMLogger(log.NewSyncWriter(w)), "info")
	if err != nil {
		t.Fatal(err)
	}
	return l.With("node", name)
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Two validators with equal power, one a stock node and one a stock node on ringwire (the
// swap), commit blocks together: neither has more than two thirds alone, so every block needs
// both, over the stock framing between them. The ringwire node's switch is rwswitch's, its
// reactors are the stock ones, and PEX is gone.
func TestStockAndRingwireValidatorsCommit(t *testing.T) {
	dir := scratchDir(t)
	nodes, err := testnet.Make(dir, 2, "swap-test", 100*time.Millisecond, func(_ int, c *cfg.Config) {
		c.RPC.ListenAddress = "" // no RPC: the test reads the stores
	})
	if err != nil {
		t.Fatal(err)
	}
	stock, err := node.DefaultNewNode(nodes[0].Config, logger(t, "stock"))
	if err != nil {
		t.Fatal(err)
	}
	rw, err := NewNode(nodes[1].Config, logger(t, "ringwire"))
	if err != nil {
		t.Fatal(err)
	}
	sw, ok := rw.Switch().(*rwswitch.Switch)
	if !ok {
		t.Fatalf("the node's switch is a %T after the swap", rw.Switch())
	}
	for _, name := range StockReactors {
		if _, ok := sw.Reactor(name); !ok {
			t.Errorf("reactor %s was not moved to the ringwire switch", name)
		}
	}
	if _, ok := sw.Reactor("PEX"); ok {
		t.Error("the stock PEX reactor runs on the ringwire switch")
	}
	if sw.NodeInfo().ID() != nodes[1].ID {
		t.Errorf("the switch's NodeInfo is %s's, want %s", sw.NodeInfo().ID(), nodes[1].ID)
	}
	for _, n := range []*node.Node{stock, rw} {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Stop() })
	}
	const height = 5
	deadline := time.Now().Add(90 * time.Second)
	for stock.BlockStore().Height() < height || rw.BlockStore().Height() < height {
		if time.Now().After(deadline) {
			t.Fatalf("heights %d (stock) and %d (ringwire) after 90 s, want %d", stock.BlockStore().Height(), rw.BlockStore().Height(), height)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for h := int64(1); h <= height; h++ {
		a, b := stock.BlockStore().LoadBlockMeta(h), rw.BlockStore().LoadBlockMeta(h)
		if a == nil || b == nil || !a.BlockID.Equals(b.BlockID) {
			t.Fatalf("block %d differs between the nodes: %v, %v", h, a, b)
		}
	}
	p := sw.Peers().Get(nodes[0].ID)
	if p == nil {
		t.Fatal("the ringwire node has no peer for the stock node")
	}
	if native := p.(interface{ IsNative() bool }).IsNative(); native {
		t.Error("the stock node's connection speaks the native protocol")
	}
	if !p.IsPersistent() {
		t.Error("the stock node is a persistent peer of the ringwire node's configuration")
	}
}

// scratchDir is a temporary directory removed after the test, once the nodes' own
// goroutines (stock's address book saves on its way out) are done with it.
func scratchDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rwnode-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}
