// Package ringwire is the Go binding of ringwire's C API (include/ringwire.h).
//
// It links the static library libringwire_ffi.a, which `make ffi-lib` builds; run it before
// `go build` or `go test` here. The library is looked up in ../target/debug (relative to this
// directory); when Cargo's target directory is elsewhere (CARGO_TARGET_DIR), add it with
// CGO_LDFLAGS=-L<target>/debug, as `make go-bindings` does.
//
// Handles (Node, Channel, Batch) are closed with Close or Release, which are idempotent; a
// cleanup registered with runtime.AddCleanup frees a handle that was dropped without it.
// Every error returned by a call into the library wraps a Code, so errors.Is works against
// the Err* values.
package ringwire

// All cgo directives of the package live in this file.

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#cgo LDFLAGS: -L${SRCDIR}/../target/debug -l:libringwire_ffi.a -lpthread -ldl -lm
#include "ringwire.h"
*/
import "C"

import "sync/atomic"

// cgoCalls counts this package's calls into C: library functions, and the C.malloc and C.free
// behind C.CString. Tests and benchmarks read it to measure calls per message.
var cgoCalls atomic.Uint64

// countC records n calls into C.
func countC(n uint64) { cgoCalls.Add(n) }

// ABIVersion is the version of the C ABI the linked library implements.
func ABIVersion() uint32 {
	countC(1)
	return uint32(C.ringwire_abi_version())
}
