package ringwire

/*
#include "ringwire.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Code is a ringwire_result: the outcome of a call into the library. It is an error; errors
// returned by this package wrap one, so errors.Is(err, ErrTimeout) and the like work.
type Code uint32

// The library's result codes (RINGWIRE_RESULT_*), other than success.
const (
	ErrNullParameter    Code = C.RINGWIRE_RESULT_NULL_PARAMETER
	ErrInvalidArgument  Code = C.RINGWIRE_RESULT_INVALID_ARGUMENT
	ErrBufferTooSmall   Code = C.RINGWIRE_RESULT_BUFFER_TOO_SMALL
	ErrPanic            Code = C.RINGWIRE_RESULT_PANIC
	ErrStopped          Code = C.RINGWIRE_RESULT_STOPPED
	ErrTimeout          Code = C.RINGWIRE_RESULT_TIMEOUT
	ErrFull             Code = C.RINGWIRE_RESULT_FULL
	ErrPeerGone         Code = C.RINGWIRE_RESULT_PEER_GONE
	ErrChannelNotShared Code = C.RINGWIRE_RESULT_CHANNEL_NOT_SHARED
	ErrTooLarge         Code = C.RINGWIRE_RESULT_TOO_LARGE
	ErrUnsupported      Code = C.RINGWIRE_RESULT_UNSUPPORTED
	ErrTooManyRequests  Code = C.RINGWIRE_RESULT_TOO_MANY_REQUESTS
	ErrNoReceiver       Code = C.RINGWIRE_RESULT_NO_RECEIVER
	ErrConfig           Code = C.RINGWIRE_RESULT_CONFIG
	ErrNodeKey          Code = C.RINGWIRE_RESULT_NODE_KEY
	ErrStart            Code = C.RINGWIRE_RESULT_START
	ErrChannel          Code = C.RINGWIRE_RESULT_CHANNEL
	ErrDial             Code = C.RINGWIRE_RESULT_DIAL
	ErrUnknownRequest   Code = C.RINGWIRE_RESULT_UNKNOWN_REQUEST
	ErrIO               Code = C.RINGWIRE_RESULT_IO
	ErrInvalidHandle    Code = C.RINGWIRE_RESULT_INVALID_HANDLE
	ErrCancelled        Code = C.RINGWIRE_RESULT_CANCELLED
)

// ErrClosed is returned by calls on a handle this package has already closed.
var ErrClosed = fmt.Errorf("ringwire: handle closed")

// Error is the library's fixed text for the code.
func (c Code) Error() string {
	var buf [128]C.char
	var n C.size_t
	gcAround()
	countC(1)
	rc := C.ringwire_error_message(C.uint32_t(c), &buf[0], C.size_t(len(buf)), &n)
	gcAround()
	if rc != C.RINGWIRE_RESULT_OK {
		return fmt.Sprintf("ringwire result %d", uint32(c))
	}
	return C.GoStringN(&buf[0], C.int(n))
}

// Error is a failed call: the operation, its result code and the library's detail, if any.
type Error struct {
	// Op names the operation, such as "dial".
	Op string
	// Code is the result code.
	Code Code
	// Detail is the library's explanation of this failure (may be empty).
	Detail string
}

// Error formats the operation, the code's text and the detail.
func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("ringwire %s: %v", e.Op, e.Code)
	}
	return fmt.Sprintf("ringwire %s: %v (%s)", e.Op, e.Code, e.Detail)
}

// Unwrap returns the code, for errors.Is.
func (e *Error) Unwrap() error { return e.Code }

// call runs f (one call into the library) on a locked OS thread, so that the thread-local
// detail of a failure can be read afterwards, and turns a failure into an *Error.
func call(op string, f func() C.ringwire_result) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	gcAround()
	countC(1)
	rc := f()
	gcAround()
	if rc == C.RINGWIRE_RESULT_OK {
		return nil
	}
	return &Error{Op: op, Code: Code(rc), Detail: lastError()}
}

// lastError reads the detail of the last failure on this thread.
func lastError() string {
	var buf [1025]C.char
	var n C.size_t
	countC(1)
	if C.ringwire_last_error(&buf[0], C.size_t(len(buf)), &n) != C.RINGWIRE_RESULT_OK {
		return ""
	}
	return C.GoStringN(&buf[0], C.int(n))
}

// cID views a NodeID as the C struct (same layout: 20 bytes).
func cID(id *NodeID) *C.ringwire_node_id {
	return (*C.ringwire_node_id)(unsafe.Pointer(id))
}
