package main

import (
	"bytes"
	"crypto/cipher"
	stded25519 "crypto/ed25519"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/oasisprotocol/curve25519-voi/primitives/merlin"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cryptoenc "github.com/cometbft/cometbft/crypto/encoding"
	"github.com/cometbft/cometbft/libs/protoio"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
)

// Sizes fixed by the stock SecretConnection.
const (
	ephMessageLen   = 35   // uvarint length + BytesValue{32 bytes}
	frameDataMax    = 1024 // data bytes per frame
	framePlainLen   = 1028 // u32 LE length + 1024 data bytes
	frameSealedLen  = 1044 // plaintext frame + 16-byte Poly1305 tag
	handshakeWait   = 10 * time.Second
	transcriptLabel = "TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH"
	hkdfInfo        = "TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN"
)

type handshakePeer struct {
	PrivKey   hexBytes `json:"priv_key"`
	PubKey    hexBytes `json:"pub_key"`
	NodeID    string   `json:"node_id"`
	EphSecret hexBytes `json:"eph_secret"`
	EphPublic hexBytes `json:"eph_public"`
}

type handshakePeers struct {
	A handshakePeer `json:"a"`
	B handshakePeer `json:"b"`
}

type derivedSide struct {
	LocIsLeast bool     `json:"loc_is_least"`
	RecvKey    hexBytes `json:"recv_key"`
	SendKey    hexBytes `json:"send_key"`
	Challenge  hexBytes `json:"challenge"`
	DHSecret   hexBytes `json:"dh_secret"`
}

type derivedPair struct {
	A derivedSide `json:"a"`
	B derivedSide `json:"b"`
}

type sealedWrite struct {
	Writer    string   `json:"writer"`
	Plaintext hexBytes `json:"plaintext"`
	Sealed    hexBytes `json:"sealed"`
}

type handshakeFile struct {
	CometBFTVersion string         `json:"cometbft_version"`
	Peers           handshakePeers `json:"peers"`
	AToB            hexBytes       `json:"a_to_b_handshake"`
	BToA            hexBytes       `json:"b_to_a_handshake"`
	Derived         derivedPair    `json:"derived"`
	Frames          []sealedWrite  `json:"frames"`
}

// hexBytes marshals to lowercase hex in JSON.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h)), nil
}

// nodeKey builds a stock ed25519 private key (seed ‖ pub) from a 32-byte seed.
func nodeKey(seedByte byte) ed25519.PrivKey {
	return ed25519.PrivKey(stded25519.NewKeyFromSeed(filled(32, seedByte)))
}

// ephSecret is the deterministic ephemeral X25519 secret handed to one side.
func ephSecret(side string) []byte {
	sum := sha256.Sum256([]byte("ringwire golden ephemeral secret " + side))
	return sum[:]
}

type scResult struct {
	sc  *conn.SecretConnection
	err error
}

func waitSC(ch <-chan scResult, side string) (*conn.SecretConnection, error) {
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("stock handshake of %s failed: %w", side, r.err)
		}
		return r.sc, nil
	case <-time.After(handshakeWait):
		return nil, fmt.Errorf("stock handshake of %s timed out", side)
	}
}

// stockHandshake runs two stock SecretConnection handshakes against each other
// over net.Pipe while crypto/rand.Reader hands out the scripted ephemeral
// secrets: A's first, then B's (B starts only after A has drawn its secret).
func stockHandshake(privA, privB ed25519.PrivKey, ephA, ephB []byte) (
	scA, scB *conn.SecretConnection, recA, recB *recordingConn, err error,
) {
	pipeA, pipeB := net.Pipe()
	recA, recB = newRecordingConn(pipeA), newRecordingConn(pipeB)
	defer func() {
		if err != nil {
			_ = pipeA.Close()
			_ = pipeB.Close()
		}
	}()

	reader := newScriptedReader(ephA, ephB)
	original := crand.Reader
	crand.Reader = reader
	defer func() { crand.Reader = original }()

	chA := make(chan scResult, 1)
	chB := make(chan scResult, 1)
	go func() {
		sc, e := conn.MakeSecretConnection(recA, privA)
		chA <- scResult{sc, e}
	}()
	select {
	case <-reader.Taken(0):
	case <-time.After(handshakeWait):
		return nil, nil, nil, nil, errors.New("side a never drew its ephemeral secret")
	}
	go func() {
		sc, e := conn.MakeSecretConnection(recB, privB)
		chB <- scResult{sc, e}
	}()
	if scA, err = waitSC(chA, "a"); err != nil {
		return nil, nil, nil, nil, err
	}
	if scB, err = waitSC(chB, "b"); err != nil {
		return nil, nil, nil, nil, err
	}
	crand.Reader = original
	if err = reader.Check(); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("randomness substitution: %w", err)
	}
	return scA, scB, recA, recB, nil
}

// deriveSide recomputes what stock derives internally for one side.
func deriveSide(locSecret, locPub, remPub []byte) (derivedSide, error) {
	lo, hi := locPub, remPub
	if bytes.Compare(locPub, remPub) >= 0 {
		lo, hi = remPub, locPub
	}
	transcript := merlin.NewTranscript(transcriptLabel)
	transcript.AppendMessage("EPHEMERAL_LOWER_PUBLIC_KEY", lo)
	transcript.AppendMessage("EPHEMERAL_UPPER_PUBLIC_KEY", hi)
	locIsLeast := bytes.Equal(locPub, lo)

	dh, err := curve25519.X25519(locSecret, remPub)
	if err != nil {
		return derivedSide{}, fmt.Errorf("x25519: %w", err)
	}
	transcript.AppendMessage("DH_SECRET", dh)

	okm := make([]byte, 96)
	if _, err := io.ReadFull(hkdf.New(sha256.New, dh, nil, []byte(hkdfInfo)), okm); err != nil {
		return derivedSide{}, fmt.Errorf("hkdf: %w", err)
	}
	var recv, send []byte
	if locIsLeast {
		recv, send = okm[0:32], okm[32:64]
	} else {
		send, recv = okm[0:32], okm[32:64]
	}
	challenge := make([]byte, 32)
	transcript.ExtractBytes(challenge, "SECRET_CONNECTION_MAC")
	return derivedSide{
		LocIsLeast: locIsLeast,
		RecvKey:    recv,
		SendKey:    send,
		Challenge:  challenge,
		DHSecret:   dh,
	}, nil
}

// opener decrypts one direction of sealed frames with the derived key. It
// also models the stock sender's frame buffer: stock reuses one 1028-byte
// buffer per connection and only overwrites the length and the new data, so
// the padding after short data is whatever the previous frame left there
// (zeros only before the first frame). Every decrypted frame must equal that
// model byte for byte.
type opener struct {
	aead    cipher.AEAD
	counter uint64
	last    [framePlainLen]byte
}

func newOpener(key []byte) (*opener, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return &opener{aead: aead}, nil
}

// open decrypts concatenated sealed frames and returns the carried data.
func (o *opener) open(sealed []byte) ([]byte, error) {
	if len(sealed)%frameSealedLen != 0 {
		return nil, fmt.Errorf("sealed length %d is not a multiple of %d", len(sealed), frameSealedLen)
	}
	var data []byte
	for off := 0; off < len(sealed); off += frameSealedLen {
		var nonce [12]byte
		binary.LittleEndian.PutUint64(nonce[4:], o.counter)
		frame, err := o.aead.Open(nil, nonce[:], sealed[off:off+frameSealedLen], nil)
		if err != nil {
			return nil, fmt.Errorf("frame %d (nonce %d) does not open with the derived key: %w", off/frameSealedLen, o.counter, err)
		}
		o.counter++
		if len(frame) != framePlainLen {
			return nil, fmt.Errorf("frame plaintext is %d bytes", len(frame))
		}
		n := binary.LittleEndian.Uint32(frame[:4])
		if n > frameDataMax {
			return nil, fmt.Errorf("frame length %d over %d", n, frameDataMax)
		}
		want := o.last
		copy(want[4:], frame[4:4+n])
		binary.LittleEndian.PutUint32(want[:4], n)
		if !bytes.Equal(frame, want[:]) {
			return nil, errors.New("frame padding differs from the stale-buffer model of the stock sender")
		}
		copy(o.last[:], frame)
		data = append(data, frame[4:4+n]...)
	}
	return data, nil
}

// checkAuthFrame opens the sealed auth frame a side sent and checks that it
// carries that side's key and a valid signature of the shared challenge.
func checkAuthFrame(side string, op *opener, sealed []byte, priv ed25519.PrivKey, challenge []byte) error {
	data, err := op.open(sealed)
	if err != nil {
		return fmt.Errorf("auth frame of %s: %w", side, err)
	}
	var msg tmp2p.AuthSigMessage
	if err := protoio.UnmarshalDelimited(data, &msg); err != nil {
		return fmt.Errorf("auth frame of %s: %w", side, err)
	}
	pub, err := cryptoenc.PubKeyFromProto(msg.PubKey)
	if err != nil {
		return fmt.Errorf("auth frame of %s: %w", side, err)
	}
	if !bytes.Equal(pub.Bytes(), priv.PubKey().Bytes()) {
		return fmt.Errorf("auth frame of %s carries the wrong public key", side)
	}
	if !stded25519.Verify(pub.Bytes(), challenge, msg.Sig) {
		return fmt.Errorf("auth frame of %s: signature does not verify on the derived challenge", side)
	}
	want, err := priv.Sign(challenge)
	if err != nil {
		return err
	}
	if !bytes.Equal(want, msg.Sig) {
		return fmt.Errorf("auth frame of %s: signature differs from signing the derived challenge", side)
	}
	if len(data) != 103 {
		return fmt.Errorf("auth message of %s is %d bytes, want 103", side, len(data))
	}
	return nil
}

func checkEphMessage(side string, wire, secret []byte) ([]byte, error) {
	if len(wire) != ephMessageLen+frameSealedLen {
		return nil, fmt.Errorf("%s wrote %d handshake bytes, want %d", side, len(wire), ephMessageLen+frameSealedLen)
	}
	if !bytes.Equal(wire[:3], []byte{0x22, 0x0a, 0x20}) {
		return nil, fmt.Errorf("%s eph message prefix %x", side, wire[:3])
	}
	pub, err := curve25519.X25519(secret, curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pub, wire[3:ephMessageLen]) {
		return nil, fmt.Errorf("%s eph public on the wire is not X25519(scripted secret): the randomness substitution did not take", side)
	}
	return pub, nil
}

func handshakePeerOf(priv ed25519.PrivKey, eph, ephPub []byte) handshakePeer {
	return handshakePeer{
		PrivKey:   hexBytes(priv),
		PubKey:    priv.PubKey().Bytes(),
		NodeID:    string(p2p.PubKeyToID(priv.PubKey())),
		EphSecret: eph,
		EphPublic: ephPub,
	}
}

// writeStep is one stock SecretConnection.Write in the frames section.
type writeStep struct {
	writer string
	size   int
	seed   byte
}

var frameSteps = []writeStep{
	{"a", 1, 0x01},
	{"a", 1024, 0x02},
	{"a", 1025, 0x03},
	{"a", 3000, 0x04},
	{"b", 1, 0x05},
	{"b", 2048, 0x06},
}

func genSecretHandshake() (*handshakeFile, error) {
	privA, privB := nodeKey(0x01), nodeKey(0x02)
	ephA, ephB := ephSecret("a"), ephSecret("b")

	scA, scB, recA, recB, err := stockHandshake(privA, privB, ephA, ephB)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = scA.Close()
		_ = scB.Close()
	}()
	if !bytes.Equal(scA.RemotePubKey().Bytes(), privB.PubKey().Bytes()) ||
		!bytes.Equal(scB.RemotePubKey().Bytes(), privA.PubKey().Bytes()) {
		return nil, errors.New("stock handshake authenticated the wrong keys")
	}

	aToB, bToA := recA.Written(), recB.Written()
	ephPubA, err := checkEphMessage("a", aToB, ephA)
	if err != nil {
		return nil, err
	}
	ephPubB, err := checkEphMessage("b", bToA, ephB)
	if err != nil {
		return nil, err
	}

	dA, err := deriveSide(ephA, ephPubA, ephPubB)
	if err != nil {
		return nil, err
	}
	dB, err := deriveSide(ephB, ephPubB, ephPubA)
	if err != nil {
		return nil, err
	}
	if dA.LocIsLeast == dB.LocIsLeast ||
		!bytes.Equal(dA.DHSecret, dB.DHSecret) ||
		!bytes.Equal(dA.SendKey, dB.RecvKey) || !bytes.Equal(dA.RecvKey, dB.SendKey) ||
		!bytes.Equal(dA.Challenge, dB.Challenge) {
		return nil, errors.New("derived values of a and b are not consistent")
	}

	// Openers for each direction; they continue past the auth frame into the
	// data frames, exactly as the stock nonce counters do.
	openAB, err := newOpener(dA.SendKey)
	if err != nil {
		return nil, err
	}
	openBA, err := newOpener(dB.SendKey)
	if err != nil {
		return nil, err
	}
	if err := checkAuthFrame("a", openAB, aToB[ephMessageLen:], privA, dA.Challenge); err != nil {
		return nil, err
	}
	if err := checkAuthFrame("b", openBA, bToA[ephMessageLen:], privB, dB.Challenge); err != nil {
		return nil, err
	}

	frames := make([]sealedWrite, 0, len(frameSteps))
	for _, step := range frameSteps {
		w, r, rec, op := scA, scB, recA, openAB
		if step.writer == "b" {
			w, r, rec, op = scB, scA, recB, openBA
		}
		plaintext := pattern(step.size, step.seed)
		sealed, err := stockWrite(w, r, rec, plaintext)
		if err != nil {
			return nil, fmt.Errorf("write of %d bytes by %s: %w", step.size, step.writer, err)
		}
		wantLen := (step.size + frameDataMax - 1) / frameDataMax * frameSealedLen
		if len(sealed) != wantLen {
			return nil, fmt.Errorf("write of %d bytes by %s produced %d sealed bytes, want %d", step.size, step.writer, len(sealed), wantLen)
		}
		opened, err := op.open(sealed)
		if err != nil {
			return nil, fmt.Errorf("write of %d bytes by %s: %w", step.size, step.writer, err)
		}
		if !bytes.Equal(opened, plaintext) {
			return nil, fmt.Errorf("write of %d bytes by %s: derived keys open to different data", step.size, step.writer)
		}
		frames = append(frames, sealedWrite{Writer: step.writer, Plaintext: plaintext, Sealed: sealed})
	}

	return &handshakeFile{
		CometBFTVersion: cometBFTVersion,
		Peers: handshakePeers{
			A: handshakePeerOf(privA, ephA, ephPubA),
			B: handshakePeerOf(privB, ephB, ephPubB),
		},
		AToB:    aToB,
		BToA:    bToA,
		Derived: derivedPair{A: dA, B: dB},
		Frames:  frames,
	}, nil
}

// stockWrite performs one stock Write while the peer's stock Read consumes
// it, and returns the bytes that went on the wire for that Write.
func stockWrite(w, r *conn.SecretConnection, rec *recordingConn, plaintext []byte) ([]byte, error) {
	before := rec.Len()
	got := make(chan error, 1)
	received := make([]byte, len(plaintext))
	go func() {
		_, err := io.ReadFull(r, received)
		got <- err
	}()
	n, err := w.Write(plaintext)
	if err != nil {
		return nil, err
	}
	if n != len(plaintext) {
		return nil, fmt.Errorf("stock Write reported %d bytes", n)
	}
	select {
	case err := <-got:
		if err != nil {
			return nil, fmt.Errorf("stock Read: %w", err)
		}
	case <-time.After(handshakeWait):
		return nil, errors.New("stock Read timed out")
	}
	if !bytes.Equal(received, plaintext) {
		return nil, errors.New("stock Read returned different data")
	}
	return rec.Written()[before:], nil
}
