//! The C ABI of ringwire. `include/ringwire.h` is generated from this crate by cbindgen.
//!
//! Conventions (see `docs/C-API.md`):
//! - Every exported body runs inside a panic boundary: a panic becomes
//!   `RINGWIRE_RESULT_PANIC`, never an unwind into C.
//! - Every pointer argument is checked for NULL (`RINGWIRE_RESULT_NULL_PARAMETER`).
//! - Results come back through out-pointers, written only on success (the one exception, the
//!   count of a batched send, is documented on that function).
//! - Each handle is owned by the caller until its `*_free`; every `*_free` accepts NULL. Handles
//!   are looked up in a registry of live handles (`registry`), never dereferenced, so a freed
//!   or foreign handle is `RINGWIRE_RESULT_INVALID_HANDLE`, not undefined behaviour.
//! - Enumerations the caller passes in are plain `uint32_t` and are validated, so an unknown
//!   value is an error, not undefined behaviour.

#![allow(non_camel_case_types)] // C names: the header spells every type `ringwire_*`.

pub mod buffer;
pub mod cancel;
pub mod channel;
pub mod config;
pub mod node;
mod payloads;
pub mod peer;
mod readiness;
mod registry;
pub mod result;
mod sized;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

pub use result::ringwire_result;

/// The version of the C ABI this library implements. Bumped on every incompatible change
/// (2: `ringwire_node_stats` grew the budget and PEX counters; peer info, channel options
/// and NodeInfo settings were added; 3: `ringwire_envelope.deliver_within_ms` and the expiry
/// counters of `ringwire_node_stats`).
#[unsafe(no_mangle)]
pub extern "C" fn ringwire_abi_version() -> u32 {
    3
}

/// Whether this library was built with optimisations (a release build: `true`) or as a debug
/// build, which is many times slower and meant for tests. A program can refuse to run, or
/// warn, on a debug build (`ringwire-cometbft ringwire-library` reports it; the build of that
/// command checks it).
#[unsafe(no_mangle)]
pub extern "C" fn ringwire_library_optimized() -> bool {
    !cfg!(debug_assertions)
}

/// Runs `f` inside the panic boundary and turns its outcome into a result code.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), ringwire_result>) -> ringwire_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => ringwire_result::Ok,
        Ok(Err(code)) => code,
        Err(_) => result::fail(ringwire_result::Panic, "the library panicked"),
    }
}

/// Runs a `*_free` body inside the panic boundary; a panic there is swallowed.
pub(crate) fn guard_free(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// Copies a plain value from a caller pointer, or `NullParameter`.
///
/// # Safety
/// `p` is NULL or valid for one read of `T`.
pub(crate) unsafe fn read<T: Copy>(p: *const T) -> Result<T, ringwire_result> {
    non_null(p)?;
    // SAFETY: non-NULL, and valid for a read by the caller's contract.
    Ok(unsafe { p.read_unaligned() })
}

/// Fails with `NullParameter` when `p` is NULL.
pub(crate) fn non_null<T>(p: *const T) -> Result<(), ringwire_result> {
    if p.is_null() {
        Err(ringwire_result::NullParameter)
    } else {
        Ok(())
    }
}

/// A byte slice from a pointer and length; NULL is accepted when `len` is 0.
///
/// # Safety
/// When `len > 0`, `p` is valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], ringwire_result> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(p)?;
    // SAFETY: non-NULL, and the caller gives it valid for `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A UTF-8 string from a NUL-terminated C string.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
pub(crate) unsafe fn text<'a>(p: *const std::ffi::c_char) -> Result<&'a str, ringwire_result> {
    non_null(p)?;
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let c = unsafe { std::ffi::CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| result::fail(ringwire_result::InvalidArgument, "text is not UTF-8"))
}

/// The instant `timeout_ms` from now (a far-away instant for huge values).
pub(crate) fn deadline(timeout_ms: u64) -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_millis(timeout_ms))
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// Panics inside the boundary; exists so tests can check that a panic becomes
/// `RINGWIRE_RESULT_PANIC`. Not part of the header.
#[doc(hidden)]
#[unsafe(no_mangle)]
pub extern "C" fn ringwire_internal_panic_for_tests() -> ringwire_result {
    guard(|| panic!("deliberate panic for the panic-boundary test"))
}
