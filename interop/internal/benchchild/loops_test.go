package benchchild

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTripsEchoesAndSamples(t *testing.T) {
	replies := make(chan uint64, 16)
	var sizes []int
	echo := Echoes{
		Send: func(req []byte) bool {
			sizes = append(sizes, len(req))
			replies <- binary.LittleEndian.Uint64(req)
			return true
		},
		Replies: replies,
	}
	path := filepath.Join(t.TempDir(), "rtt.bin")
	o := &Options{Size: 3, Warmup: time.Millisecond, Duration: 5 * time.Millisecond, Samples: path}
	rep, err := RoundTrips(o, echo)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Samples == 0 || rep.WindowMessages != rep.Samples || rep.WindowSecs < 0.005 || rep.TotalBytes != 0 {
		t.Fatalf("report %+v", rep)
	}
	if sizes[0] != 8 {
		t.Fatalf("a request of -size 3 has %d bytes, not 8", sizes[0])
	}
	info, err := os.Stat(path)
	if err != nil || uint64(info.Size()) != 8*rep.Samples {
		t.Fatalf("samples file %v, %v", info, err)
	}
}

func TestRoundTripsEndsOnFailure(t *testing.T) {
	failed := make(chan error, 1)
	failed <- errors.New("gone")
	_, err := RoundTrips(&Options{Warmup: time.Second}, Echoes{
		Send:    func([]byte) bool { return true },
		Replies: make(chan uint64),
		Failed:  failed,
	})
	if err == nil || err.Error() != "gone" {
		t.Fatalf("err %v", err)
	}
	_, err = RoundTrips(&Options{Warmup: time.Second}, Echoes{Send: func([]byte) bool { return false }})
	if err == nil || err.Error() != "send of request 1 failed" {
		t.Fatalf("err %v", err)
	}
}

func TestRepeatCountsTheWindow(t *testing.T) {
	runs := 0
	rep, err := Repeat(&Options{Warmup: time.Millisecond, Duration: 5 * time.Millisecond}, func() error {
		runs++
		time.Sleep(100 * time.Microsecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.WindowMessages == 0 || rep.WindowMessages >= uint64(runs) || rep.WindowSecs < 0.005 {
		t.Fatalf("report %+v after %d runs", rep, runs)
	}
	stop := errors.New("stop")
	if _, err := Repeat(&Options{Warmup: time.Second}, func() error { return stop }); err != stop {
		t.Fatalf("err %v", err)
	}
}
