package ringwire

/*
#include "ringwire.h"
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// readiness waits for a channel's messages (or a node's peer events) in Go's netpoller instead
// of inside the library: the library's eventfd (duplicated, so that the library and Go each
// close their own copy) becomes readable when something waits, and a waiting goroutine parks
// without holding an OS thread in a C call.
type readiness struct {
	f   *os.File
	rc  syscall.RawConn
	sem chan struct{} // one waiter at a time: deadlines are per file, not per goroutine
}

// newReadiness duplicates the eventfd that get writes (what names it in errors).
func newReadiness(what string, get func(fd *C.int) C.ringwire_result) (*readiness, error) {
	var fd C.int
	if err := call(what+" fd", func() C.ringwire_result { return get(&fd) }); err != nil {
		return nil, err
	}
	dup, err := syscall.Dup(int(fd))
	if err != nil {
		return nil, fmt.Errorf("ringwire: duplicating the %s eventfd: %w", what, err)
	}
	syscall.CloseOnExec(dup)
	// The eventfd is non-blocking, so os.NewFile registers it with the netpoller.
	f := os.NewFile(uintptr(dup), "ringwire-"+what)
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("ringwire: %s eventfd: %w", what, err)
	}
	return &readiness{f: f, rc: rc, sem: make(chan struct{}, 1)}, nil
}

// wait returns when the eventfd was readable (and consumes that: the caller then receives,
// which looks at the queue and re-arms the eventfd), when ctx ends (returning ctx.Err()), or
// when the file is closed (returning nil: the caller's next call into the library reports
// the closed channel).
func (r *readiness) wait(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.sem }()
	if err := r.f.SetReadDeadline(time.Time{}); err != nil {
		return nil
	}
	// ctx ending puts the deadline in the past, which wakes the wait below.
	stop := context.AfterFunc(ctx, func() { _ = r.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var buf [8]byte
	_ = r.rc.Read(func(fd uintptr) bool {
		_, err := syscall.Read(int(fd), buf[:])
		return err != syscall.EAGAIN
	})
	return ctx.Err()
}

// close closes Go's copy of the eventfd, ending a wait in progress.
func (r *readiness) close() { _ = r.f.Close() }
