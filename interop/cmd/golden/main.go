// Command golden regenerates the golden vectors under testdata/ from stock
// CometBFT's own code (the module version pinned in go.mod). Every value is
// deterministic: two runs write identical files. Any self-check that fails
// aborts the run without writing the file it guards.
//
// Usage (from interop/): go run ./cmd/golden -out ../testdata
package main

import (
	"flag"
	"fmt"
	"os"
)

// cometBFTVersion is the stock release the vectors come from; it must match go.mod.
const cometBFTVersion = "v0.40.0"

func main() {
	out := flag.String("out", "../testdata", "directory to write the golden files into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "golden:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	if err := checkStockVersion(); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	steps := []struct {
		file string
		gen  func() (any, error)
	}{
		{"secret_handshake.json", func() (any, error) { return genSecretHandshake() }},
		{"nodeinfo.json", func() (any, error) { return genNodeInfo() }},
		{"mconn_packets.json", func() (any, error) { return genPackets() }},
		{"mconn_stream.json", func() (any, error) { return genStream() }},
	}
	for _, s := range steps {
		v, err := s.gen()
		if err != nil {
			return fmt.Errorf("%s: %w", s.file, err)
		}
		if err := writeJSON(out, s.file, v); err != nil {
			return err
		}
		fmt.Println("wrote", s.file)
	}
	return nil
}
