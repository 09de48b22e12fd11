package benchchild

import (
	"bufio"
	"encoding/binary"
	"os"
	"time"
)

// WriteSamples stores round-trip times in the file path as little-endian
// u64 nanoseconds; an empty path stores nothing.
func WriteSamples(path string, samples []time.Duration) error {
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
