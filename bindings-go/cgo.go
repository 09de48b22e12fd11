// Package ringwire is the Go binding of ringwire's C API (include/ringwire.h).
//
// It links the static library libringwire_ffi.a, found through pkg-config as
// `ringwire-static`: install the library (`make install PREFIX=...`, an optimised build) and
// point PKG_CONFIG_PATH at PREFIX/lib/pkgconfig. Inside this repository `make go-pc` writes a
// pkg-config file for the build tree instead (`make go-bindings` uses it).
//
// Handles (Node, Channel, Batch) are closed with Close or Release, which are idempotent; a
// cleanup registered with runtime.AddCleanup frees a handle that was dropped without it.
// Every error returned by a call into the library wraps a Code, so errors.Is works against
// the Err* values.
package ringwire

// All cgo directives of the package live in this file.

/*
#cgo pkg-config: ringwire-static
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

// LibraryOptimized says whether the linked library is an optimised (release) build; a debug
// build is many times slower and meant for tests.
func LibraryOptimized() bool {
	countC(1)
	return bool(C.ringwire_library_optimized())
}
