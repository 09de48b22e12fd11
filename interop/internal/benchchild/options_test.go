package benchchild

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

var testHelp = FlagHelp{Scenario: "bulk", Peers: 7, PeersHelp: "peers", Listen: "listen", Addr: "addr"}

func parseTest(role string, args ...string) (*Options, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("test "+role, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &Options{}
	return o, fs, o.Parse(fs, role, args, testHelp)
}

func TestParseDefaults(t *testing.T) {
	o, _, err := parseTest("recv")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Scenario: "bulk", Size: 65536, BulkSize: 65536, Load: "none", Peers: 7,
		Warmup: 500 * time.Millisecond, Duration: 2 * time.Second, Listen: "127.0.0.1:0",
	}
	if *o != want {
		t.Fatalf("defaults %+v, want %+v", *o, want)
	}
}

func TestParseHarnessArgs(t *testing.T) {
	o, _, err := parseTest("send", "--addr", "127.0.0.1:9", "--scenario=latency", "--size=256",
		"--bulk-size=1024", "--load=bulk", "--peers=1", "--warmup-ms=20", "--duration-ms=30",
		"--samples=/tmp/s.bin")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Scenario: "latency", Size: 256, BulkSize: 1024, Load: "bulk", Peers: 1,
		Warmup: 20 * time.Millisecond, Duration: 30 * time.Millisecond,
		Listen: "127.0.0.1:0", Addr: "127.0.0.1:9", Samples: "/tmp/s.bin",
	}
	if *o != want {
		t.Fatalf("parsed %+v, want %+v", *o, want)
	}
}

func TestParseNeedsAddrToSend(t *testing.T) {
	if _, _, err := parseTest("send"); err == nil || err.Error() != "send needs -addr" {
		t.Fatalf("send without -addr: %v", err)
	}
	if _, _, err := parseTest("bogus", "-nonsense"); err == nil {
		t.Fatal("an unknown flag parses")
	}
}

func TestParseKeepsTheProgramsFlags(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	own := fs.Int("own", 1, "the program's flag")
	o := &Options{}
	if err := o.Parse(fs, "recv", []string{"-own=5", "-size=3"}, testHelp); err != nil {
		t.Fatal(err)
	}
	if *own != 5 || o.Size != 3 {
		t.Fatalf("own %d, size %d", *own, o.Size)
	}
	if f := fs.Lookup("peers"); f == nil || f.DefValue != "7" || !strings.Contains(f.Usage, "peers") {
		t.Fatalf("-peers: %+v", f)
	}
}
