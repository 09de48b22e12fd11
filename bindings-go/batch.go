package ringwire

/*
#include "ringwire.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Message is one received message. Its Payload points into the Batch that holds it and is
// valid until that batch is released; Clone copies it out.
type Message struct {
	// Peer is the sender (all zero for a local message).
	Peer NodeID
	// Local says the message came from this node.
	Local bool
	// Channel is the channel it arrived on.
	Channel byte
	// Payload is the bytes, exactly as sent (owned by the batch).
	Payload []byte
	// RequestID is non-zero when the message is a request: answer it with Channel.Respond.
	RequestID uint64
}

// Clone returns the message with a copy of its payload, valid after its batch is released.
func (m Message) Clone() Message {
	m.Payload = append([]byte(nil), m.Payload...)
	return m
}

// Batch holds received messages (a ringwire_batch handle). Release it when done; the
// messages' payloads are not readable afterwards.
type Batch struct {
	h       *C.ringwire_batch
	msgs    []Message
	cleanup runtime.Cleanup
}

// newBatch wraps the first n views of a receive and their owning batch.
func newBatch(h *C.ringwire_batch, views []C.ringwire_message) *Batch {
	b := &Batch{h: h, msgs: make([]Message, len(views))}
	for i := range views {
		b.msgs[i] = viewToMessage(&views[i])
	}
	if h != nil {
		b.cleanup = runtime.AddCleanup(b, releaseBatch, unsafe.Pointer(h))
	}
	return b
}

// viewToMessage turns a C view into a Message whose payload aliases the batch's bytes.
func viewToMessage(v *C.ringwire_message) Message {
	m := Message{
		Local:     bool(v.local),
		Channel:   byte(v.channel),
		RequestID: uint64(v.request_id),
	}
	copy(m.Peer[:], unsafe.Slice((*byte)(unsafe.Pointer(&v.peer.bytes[0])), 20))
	if v.payload != nil && v.payload_len > 0 {
		m.Payload = unsafe.Slice((*byte)(unsafe.Pointer(v.payload)), int(v.payload_len))
	} else {
		m.Payload = []byte{}
	}
	return m
}

// releaseBatch frees a batch that was dropped without Release.
func releaseBatch(h unsafe.Pointer) {
	countC(1)
	C.ringwire_batch_release((*C.ringwire_batch)(h))
}

// Messages are the batch's messages, readable until Release.
func (b *Batch) Messages() []Message { return b.msgs }

// Len is the number of messages.
func (b *Batch) Len() int { return len(b.msgs) }

// detach takes the batch's handle away from b (which then reads as released) so that the
// caller can free it, for instance inside the next receive call; nil when already released.
func (b *Batch) detach() *C.ringwire_batch {
	h := b.h
	b.h = nil
	b.msgs = nil
	if h != nil {
		b.cleanup.Stop()
	}
	return h
}

// Release frees the batch and its bytes. Releasing twice, or a nil batch, is fine. A Batch is
// used by one goroutine at a time.
func (b *Batch) Release() {
	if b == nil {
		return
	}
	if b.h == nil {
		b.msgs = nil
		return
	}
	h := b.h
	b.h = nil
	b.msgs = nil
	b.cleanup.Stop()
	gcAround()
	countC(1)
	C.ringwire_batch_release(h)
	gcAround()
}
