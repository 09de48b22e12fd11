//! Live handles. A handle given to C is the address of an `Arc` this registry holds; every call
//! looks the address up instead of dereferencing it. So a freed handle, a double free, or a
//! pointer this library never made is an error code (`RINGWIRE_RESULT_INVALID_HANDLE`), never
//! a read of freed memory; and a call in progress on another thread keeps its object alive
//! even if the handle is freed meanwhile.
//!
//! An address can be reused by a later handle of the same type once the old one is freed; a
//! stale handle then names the new object (a logic error in the caller, but not memory
//! unsafety).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::ringwire_result;

/// The live handles of one type.
pub(crate) struct Registry<T> {
    live: RwLock<BTreeMap<usize, Arc<T>>>,
}

impl<T> Registry<T> {
    /// An empty registry (usable in a `static`).
    pub(crate) const fn new() -> Self {
        Registry {
            live: RwLock::new(BTreeMap::new()),
        }
    }

    /// Registers `value` and returns its handle.
    pub(crate) fn insert(&self, value: T) -> *mut T {
        let arc = Arc::new(value);
        let ptr = Arc::as_ptr(&arc).cast_mut();
        self.live
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ptr as usize, arc);
        ptr
    }

    /// The object behind a live handle: `NullParameter` for NULL, `InvalidHandle` for anything
    /// not live.
    pub(crate) fn get(&self, handle: *const T) -> Result<Arc<T>, ringwire_result> {
        if handle.is_null() {
            return Err(ringwire_result::NullParameter);
        }
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(handle as usize))
            .cloned()
            .ok_or(ringwire_result::InvalidHandle)
    }

    /// Unregisters a handle; `None` when it was not live (NULL, freed, foreign).
    pub(crate) fn remove(&self, handle: *const T) -> Option<Arc<T>> {
        if handle.is_null() {
            return None;
        }
        self.live
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(handle as usize))
    }
}
