package benchchild

import (
	"encoding/json"
	"fmt"
	"os"
)

// Report is the RESULT line every child prints once; the harness reads the
// same field names from all its children (ChildReport in
// benches/src/runner.rs). Zero fields are left out.
type Report struct {
	WindowMessages uint64  `json:"window_messages,omitempty"`
	WindowBytes    uint64  `json:"window_bytes,omitempty"`
	WindowSecs     float64 `json:"window_secs,omitempty"`
	TotalMessages  uint64  `json:"total_messages,omitempty"`
	TotalBytes     uint64  `json:"total_bytes,omitempty"`
	Samples        uint64  `json:"samples,omitempty"`
	Connections    uint64  `json:"connections,omitempty"`
	RSSBaseKiB     uint64  `json:"rss_base_kib,omitempty"`
	RSSKiB         uint64  `json:"rss_kib,omitempty"`
}

// PrintResult prints r, a Report or a scenario's own summary, as the line
// "RESULT <json>"; a value that does not encode ends the program.
func PrintResult(r any) {
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, program+": encode result:", err)
		os.Exit(1)
	}
	fmt.Printf("RESULT %s\n", b)
}

// Announce tells the harness where the receiver listens: the line
// "LISTEN <addr>", whose addr it passes to the sender's -addr unchanged.
func Announce(addr string) {
	fmt.Printf("LISTEN %s\n", addr)
}
