package ringwire

/*
#include "ringwire.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
)

// withCancel runs f, one blocking call into the library, with a cancel token (a
// ringwire_cancel) that fires when ctx is done, so the call returns as soon as ctx is
// cancelled instead of at its own deadline. A context that can never be done gets no token.
// A call given up this way fails with an error wrapping both ErrCancelled and ctx.Err().
//
// With deadlineInCall, f already passes ctx's deadline to the library as the call's timeout:
// the token then fires only on cancellation, so that a deadline ends the call as the
// library's timeout (ErrTimeout) and not as a race between the two.
func withCancel(ctx context.Context, deadlineInCall bool, f func(tok *C.ringwire_cancel) error) error {
	if ctx.Done() == nil {
		return f(nil)
	}
	var tok *C.ringwire_cancel
	if err := call("cancel", func() C.ringwire_result { return C.ringwire_cancel_new(&tok) }); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		if deadlineInCall && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return
		}
		countC(1)
		C.ringwire_cancel_fire(tok)
	})
	err := f(tok)
	if !stop() {
		// The token is firing or has fired: free it only after, so that a later token at the
		// same address is never fired by this one's context.
		<-fired
	}
	countC(1)
	C.ringwire_cancel_free(tok)
	if errors.Is(err, ErrCancelled) {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w (%w)", err, cerr)
		}
	}
	return err
}
