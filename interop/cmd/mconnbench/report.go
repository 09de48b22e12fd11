package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// report is the RESULT line every child prints once; the harness reads the
// same field names from its own Rust children. Zero fields are left out.
type report struct {
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

func printResult(r report) {
	printResultJSON(r)
}

// printResultJSON prints any value as the RESULT line (S9 has its own
// summary, see s9.go).
func printResultJSON(r any) {
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mconnbench: encode result:", err)
		os.Exit(1)
	}
	fmt.Printf("RESULT %s\n", b)
}

// announce tells the harness where the receiver listens.
func announce(l net.Listener) {
	fmt.Printf("LISTEN %s\n", l.Addr().String())
}

// writeSamples stores round-trip times as little-endian u64 nanoseconds.
func writeSamples(path string, samples []time.Duration) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var buf [8]byte
	for _, s := range samples {
		binary.LittleEndian.PutUint64(buf[:], uint64(s.Nanoseconds()))
		if _, err := w.Write(buf[:]); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rssKiB reads the resident set size of this process from /proc.
func rssKiB() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				v, err := strconv.ParseUint(fields[0], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return 0
}
