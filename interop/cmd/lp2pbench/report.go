package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// report is the RESULT line every child prints once; the harness reads the
// same field names from all its children. Zero fields are left out.
type report struct {
	WindowMessages uint64  `json:"window_messages,omitempty"`
	WindowBytes    uint64  `json:"window_bytes,omitempty"`
	WindowSecs     float64 `json:"window_secs,omitempty"`
	TotalMessages  uint64  `json:"total_messages,omitempty"`
	TotalBytes     uint64  `json:"total_bytes,omitempty"`
	Samples        uint64  `json:"samples,omitempty"`
}

func printResult(r report) {
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lp2pbench: encode result:", err)
		os.Exit(1)
	}
	fmt.Printf("RESULT %s\n", b)
}

// announce tells the harness where the receiver listens.
func announce(addr string) {
	fmt.Printf("LISTEN %s\n", addr)
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
