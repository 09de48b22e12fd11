//go:build debug

package ringwire

import "runtime"

// gcAround forces a collection around each call into the library, so that a Go pointer
// handed to C without being kept alive or pinned shows up as corruption in tests.
func gcAround() { runtime.GC() }
