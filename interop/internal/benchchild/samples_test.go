package benchchild

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteSamplesIsLittleEndianNanoseconds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "samples.bin")
	if err := WriteSamples(path, []time.Duration{1, 258 * time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := WriteSamples("", []time.Duration{1}); err != nil {
		t.Fatalf("no path: %v", err)
	}
}
