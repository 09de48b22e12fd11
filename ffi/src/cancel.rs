//! Cancel tokens: a blocking call given one (`ringwire_node_dial_cancellable`,
//! `ringwire_channel_request_cancellable`) returns `RINGWIRE_RESULT_CANCELLED` as soon as
//! another thread fires the token. This is how a Go `context.Context` reaches those calls.

use ringwire::CancelToken;

use crate::registry::Registry;
use crate::{guard, guard_free, non_null, ringwire_result};

/// A cancel token. Create with `ringwire_cancel_new`; fire with `ringwire_cancel_fire` (from
/// any thread, any number of times); free with `ringwire_cancel_free`.
pub struct ringwire_cancel {
    pub(crate) token: CancelToken,
}

/// The live cancel tokens.
pub(crate) static CANCELS: Registry<ringwire_cancel> = Registry::new();

/// The token behind `cancel`, or none for NULL; `InvalidHandle` for a handle not live.
pub(crate) fn token_of(
    cancel: *const ringwire_cancel,
) -> Result<Option<CancelToken>, ringwire_result> {
    if cancel.is_null() {
        return Ok(None);
    }
    Ok(Some(CANCELS.get(cancel)?.token.clone()))
}

/// Makes a cancel token, not yet fired, and writes its handle to `*out_cancel`.
///
/// # Safety
/// `out_cancel` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_cancel_new(
    out_cancel: *mut *mut ringwire_cancel,
) -> ringwire_result {
    guard(|| {
        non_null(out_cancel)?;
        let h = CANCELS.insert(ringwire_cancel {
            token: CancelToken::new(),
        });
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_cancel = h };
        Ok(())
    })
}

/// Fires the token: every call waiting on it returns `RINGWIRE_RESULT_CANCELLED` at once, and
/// a call given it later returns so without starting. Safe from any thread; firing again does
/// nothing more.
///
/// # Safety
/// None for the call: any pointer is accepted; a handle not live is
/// `RINGWIRE_RESULT_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_cancel_fire(cancel: *const ringwire_cancel) -> ringwire_result {
    guard(|| {
        CANCELS.get(cancel)?.token.cancel();
        Ok(())
    })
}

/// Frees a cancel token. A call still waiting on it keeps waiting on it (and can be
/// cancelled no more through this handle). NULL is accepted and ignored.
///
/// # Safety
/// None for the call: any pointer is accepted; only live handles are freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_cancel_free(cancel: *mut ringwire_cancel) {
    guard_free(|| {
        drop(CANCELS.remove(cancel));
    })
}
