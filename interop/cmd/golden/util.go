package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// recordingConn is a net.Conn that keeps a copy of every byte successfully
// written through it, so the generator can report exactly what went on the wire.
type recordingConn struct {
	net.Conn

	mu      sync.Mutex
	written []byte
}

func newRecordingConn(c net.Conn) *recordingConn {
	return &recordingConn{Conn: c}
}

// Write records p before passing it on, so the record is complete by the
// time the peer has read it; a short write trims the unsent tail again.
// Each side has a single writer, so records cannot interleave.
func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.written = append(r.written, p...)
	r.mu.Unlock()
	n, err := r.Conn.Write(p)
	if n < len(p) {
		r.mu.Lock()
		r.written = r.written[:len(r.written)-(len(p)-n)]
		r.mu.Unlock()
	}
	return n, err
}

// Written returns a copy of all bytes written so far.
func (r *recordingConn) Written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.written)
}

// Len returns how many bytes have been written so far.
func (r *recordingConn) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.written)
}

// scriptedReader hands out a fixed list of byte strings, one per Read call,
// in order. It stands in for crypto/rand.Reader so that the ephemeral keys of
// a stock handshake are known. Every Read must ask for exactly the length of
// the next scripted chunk; anything else is recorded as a violation and
// answered with an error.
type scriptedReader struct {
	mu     sync.Mutex
	chunks [][]byte
	next   int
	taken  []chan struct{}
	errs   []error
}

func newScriptedReader(chunks ...[]byte) *scriptedReader {
	taken := make([]chan struct{}, len(chunks))
	for i := range taken {
		taken[i] = make(chan struct{})
	}
	return &scriptedReader{chunks: chunks, taken: taken}
}

func (s *scriptedReader) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.chunks) {
		err := fmt.Errorf("unexpected extra random read of %d bytes", len(p))
		s.errs = append(s.errs, err)
		return 0, err
	}
	chunk := s.chunks[s.next]
	if len(p) != len(chunk) {
		err := fmt.Errorf("random read %d asked for %d bytes, scripted %d", s.next, len(p), len(chunk))
		s.errs = append(s.errs, err)
		return 0, err
	}
	copy(p, chunk)
	close(s.taken[s.next])
	s.next++
	return len(p), nil
}

// Taken returns a channel that is closed once chunk i has been handed out.
func (s *scriptedReader) Taken(i int) <-chan struct{} {
	return s.taken[i]
}

// Check reports any violation and whether every chunk was consumed.
func (s *scriptedReader) Check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		return errors.Join(s.errs...)
	}
	if s.next != len(s.chunks) {
		return fmt.Errorf("only %d of %d scripted random chunks were read", s.next, len(s.chunks))
	}
	return nil
}

// pattern returns n deterministic bytes: byte i is (seed + 31*i) mod 256.
func pattern(n int, seed byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = seed + byte(31*i)
	}
	return out
}

// filled returns n copies of b.
func filled(n int, b byte) []byte {
	return bytes.Repeat([]byte{b}, n)
}

// writeJSON writes v as indented JSON with a trailing newline, without HTML
// escaping, so the files are stable and readable.
func writeJSON(dir, name string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
