package ringwire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// nodeIDOf is CometBFT's node ID of an ed25519 key: the first 20 bytes of its SHA-256.
func nodeIDOf(pub ed25519.PublicKey) NodeID {
	sum := sha256.Sum256(pub)
	var id NodeID
	copy(id[:], sum[:20])
	return id
}

// writeConfigFile writes a node key made from seed and a ringwire TOML file that names it,
// holding extra after the [p2p] settings; it returns the file's path.
func writeConfigFile(t *testing.T, seed byte, extra string) string {
	t.Helper()
	dir := t.TempDir()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	keyJSON := fmt.Sprintf(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"%s"}}`,
		base64.StdEncoding.EncodeToString(key))
	keyPath := filepath.Join(dir, "node_key.json")
	if err := os.WriteFile(keyPath, []byte(keyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf("[node]\nnetwork = \"go-file\"\nnode_key_file = %q\n\n[p2p]\nladdr = \"127.0.0.1:0\"\n%s\n[engine]\nshards = 1\n",
		keyPath, extra)
	path := filepath.Join(dir, "ringwire.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A node built from a file takes its key, network and listen address from it, and its
// [p2p] limits: with the default allow_duplicate_ip = false a second peer from 127.0.0.1 is
// refused, with allow_duplicate_ip = true it is admitted.
func TestConfigFileSetsKeyNetworkAndPeerLimits(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_duplicate_ip=%v", allow), func(t *testing.T) {
			hub, err := NewNode(Config{File: writeConfigFile(t, 9, fmt.Sprintf("allow_duplicate_ip = %v\n", allow))})
			if err != nil {
				t.Fatalf("NewNode from a file: %v", err)
			}
			defer hub.Close()
			want := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
			if id, err := hub.ID(); err != nil || id != nodeIDOf(want.Public().(ed25519.PublicKey)) {
				t.Fatalf("the node ID is the file's key's: %v %v", id, err)
			}
			addr, err := hub.ListenAddr()
			if err != nil || addr == "" {
				t.Fatalf("listening on the file's address: %q %v", addr, err)
			}
			other, err := NewNode(Config{Seed: bytes.Repeat([]byte{10}, 32), Network: "another"})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.Dial(addr, nil); err == nil {
				t.Fatal("a node on another network is refused")
			}
			first, err := NewNode(Config{Seed: bytes.Repeat([]byte{11}, 32), Network: "go-file"})
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			if _, err := first.Dial(addr, nil); err != nil {
				t.Fatalf("the first peer from 127.0.0.1: %v", err)
			}
			second, err := NewNode(Config{Seed: bytes.Repeat([]byte{12}, 32), Network: "go-file"})
			if err != nil {
				t.Fatal(err)
			}
			defer second.Close()
			_, _ = second.Dial(addr, nil)
			want2 := 1
			if allow {
				want2 = 2
			}
			waitPeers(t, hub, want2)
			// Long enough for a refused second peer's connection to have been closed.
			time.Sleep(300 * time.Millisecond)
			if got, err := hub.PeerCount(); err != nil || got != want2 {
				t.Fatalf("hub peers: got %d (%v), want %d", got, err, want2)
			}
		})
	}
}
