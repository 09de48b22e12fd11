package ringwire

/*
#include "ringwire.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Buffer is a message payload in the library's memory (a ringwire_buffer handle). Build the
// message in Bytes, then SendBuffer hands the bytes over without the copy Send makes of a Go
// slice. A buffer can be sent any number of times, to any peers; the first send freezes it:
// from then on its bytes must not change. Release drops this reference; messages queued from
// the buffer keep their bytes until they are sent.
//
// Bytes aliases library memory: do not use it, or slices of it, after Release.
type Buffer struct {
	mu      sync.RWMutex
	h       *C.ringwire_buffer
	data    []byte
	cleanup runtime.Cleanup
}

// NewBuffer allocates a zero-filled buffer of n bytes (at most 2^32 - 1).
func NewBuffer(n int) (*Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("ringwire: buffer of %d bytes: %w", n, ErrInvalidArgument)
	}
	var h *C.ringwire_buffer
	var data *C.uint8_t
	err := call("buffer", func() C.ringwire_result {
		return C.ringwire_buffer_new(C.size_t(n), &h, &data)
	})
	if err != nil {
		return nil, err
	}
	b := &Buffer{h: h, data: []byte{}}
	if n > 0 {
		b.data = unsafe.Slice((*byte)(unsafe.Pointer(data)), n)
	}
	b.cleanup = runtime.AddCleanup(b, freeBuffer, unsafe.Pointer(h))
	return b, nil
}

// freeBuffer frees a buffer that was dropped without Release.
func freeBuffer(h unsafe.Pointer) {
	countC(1)
	C.ringwire_buffer_free((*C.ringwire_buffer)(h))
}

// Bytes is the buffer's memory: write the message here before the first send; readable until
// Release. Nil after Release.
func (b *Buffer) Bytes() []byte {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.data
}

// Len is the buffer's length in bytes (0 after Release).
func (b *Buffer) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.data)
}

// Release drops this reference to the buffer. Releasing twice, or a nil buffer, is fine.
func (b *Buffer) Release() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.h == nil {
		return
	}
	h := b.h
	b.h = nil
	b.data = nil
	b.cleanup.Stop()
	countC(1)
	C.ringwire_buffer_free(h)
}

// SendBuffer sends the buffer's bytes to the peer to without copying them, waiting for queue
// space until ctx is done (as Send does). The buffer stays the caller's: release it when it
// is no longer needed, which may be right after this call.
func (c *Channel) SendBuffer(ctx context.Context, to NodeID, b *Buffer) error {
	env := C.ringwire_envelope{to: C.RINGWIRE_TO_PEER}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&env.peer.bytes[0])), 20), to[:])
	return c.sendBuffer(ctx, &env, b)
}

// BroadcastBuffer sends the buffer's bytes to every connected peer that shares the channel,
// without copying them: every peer's message refers to the same memory.
func (c *Channel) BroadcastBuffer(ctx context.Context, b *Buffer) error {
	env := C.ringwire_envelope{to: C.RINGWIRE_TO_BROADCAST}
	return c.sendBuffer(ctx, &env, b)
}

func (c *Channel) sendBuffer(ctx context.Context, env *C.ringwire_envelope, b *Buffer) error {
	if b == nil {
		return fmt.Errorf("ringwire: send of a nil buffer: %w", ErrInvalidArgument)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.h == nil {
		return fmt.Errorf("ringwire: send of a released buffer: %w", ErrInvalidHandle)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := waitMs(ctx)
		err := c.with(func(h *C.ringwire_channel) error {
			return call("send", func() C.ringwire_result {
				return C.ringwire_channel_send_buffer(h, env, b.h, wait)
			})
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrFull) && !errors.Is(err, ErrTimeout) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w (%w)", err, cerr)
		}
	}
}
