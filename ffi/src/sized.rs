//! Structs that can grow: each starts with a `size` field the caller sets to the `sizeof` it
//! was compiled with. The library reads only that many bytes, and fields past them keep their
//! defaults, so a program built against an older header keeps working when a struct grows.

use crate::result::fail;
use crate::{non_null, ringwire_result};

/// Reads a sized struct from `p`: `min(p->size, size_of::<T>())` bytes over `T::default()`.
/// Fails when `p` is NULL or its size does not even cover the `size` field.
///
/// # Safety
/// `p` is NULL or valid for reads of `p->size` bytes (at least the `size` field).
pub(crate) unsafe fn read_sized<T: Default + Copy>(p: *const T) -> Result<T, ringwire_result> {
    non_null(p)?;
    // SAFETY: non-NULL; every sized struct starts with a `size_t` the caller may read.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    if size < size_of::<usize>() {
        return Err(fail(
            ringwire_result::InvalidArgument,
            "the struct's size field is not set (set it to sizeof the struct)",
        ));
    }
    let mut out = T::default();
    let n = size.min(size_of::<T>());
    // SAFETY: the caller gives `p` valid for `size` bytes and n <= size; `out` is a local `T`
    // of size_of::<T>() >= n bytes; the regions cannot overlap. The structs read this way hold only
    // integers and pointers (no `bool` or enum), for which any bytes form a valid value.
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&raw mut out).cast::<u8>(), n);
    }
    Ok(out)
}
