//! A channel's eventfd: readable while messages may wait, so a C caller can block in its own
//! poller (`poll`, `epoll`, Go's netpoller) instead of inside the library.
//!
//! The engine's receive queue wakes a [`Readiness`] directly (it is the waker a receive leaves
//! registered when it finds the queue empty): the thread that delivers a message writes the
//! eventfd, with no forwarding thread in between. The descriptor may be readable when nothing
//! waits (a receive then returns 0 messages and clears it); it is never left unreadable while a
//! message waits and no receive is in progress.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};
use std::time::Instant;

use crate::result::fail;
use crate::ringwire_result;

/// An eventfd and a flag that saves system calls: `signalled` is set just before each write,
/// so a signal finds it set and skips the write while an earlier one is still unread, and a
/// receive skips the read when nothing was written.
pub(crate) struct Readiness {
    fd: OwnedFd,
    signalled: AtomicBool,
}

impl Readiness {
    /// A fresh, unreadable eventfd (non-blocking, close-on-exec).
    pub(crate) fn new() -> Result<Arc<Self>, ringwire_result> {
        // SAFETY: eventfd has no memory preconditions; the result is checked below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(fail(ringwire_result::Io, std::io::Error::last_os_error()));
        }
        Ok(Arc::new(Readiness {
            // SAFETY: `raw` is a fresh descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
            signalled: AtomicBool::new(false),
        }))
    }

    /// The descriptor (owned by this value).
    pub(crate) fn raw_fd(&self) -> std::ffi::c_int {
        self.fd.as_raw_fd()
    }

    /// Makes the eventfd readable (one write unless a signal is already pending).
    pub(crate) fn signal(&self) {
        if self.signalled.swap(true, Ordering::AcqRel) {
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own; failure (counter
        // saturated) leaves it readable, which is all we need.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Clears a pending signal, if the flag says there is one. Cheap when there is none; may
    /// leave a stray readable state behind, which [`Readiness::clear`] removes.
    pub(crate) fn clear_signalled(&self) {
        if self.signalled.load(Ordering::Acquire) {
            self.clear();
        }
    }

    /// Makes the eventfd unreadable until the next signal. The read comes before the flag is
    /// reset: a signal that sets the flag after this point writes after the read, so its
    /// write is never consumed here and the flag is never left set on an unreadable eventfd
    /// (which would suppress every later signal). A signal that finds the flag still set
    /// between the read and the reset is dropped, so every clear must be followed by a look at
    /// the queue (which finds that signal's message, or registers the waker again).
    pub(crate) fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from a non-blocking eventfd we own;
        // EAGAIN (already clear) is fine.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut v).cast(), 8) };
        self.signalled.store(false, Ordering::Release);
    }

    /// Waits until the eventfd is readable or `until` passes (`EINTR` ends the wait early;
    /// the caller loops).
    pub(crate) fn wait(&self, until: Instant) {
        let ms = until
            .saturating_duration_since(Instant::now())
            .as_micros()
            .div_ceil(1000)
            .clamp(1, i32::MAX as u128) as std::ffi::c_int;
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd for the duration of the call; the result is not needed (the
        // caller re-checks the queue either way).
        let _ = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    }

    /// A waker that signals this eventfd while it is open. It holds the eventfd weakly: the
    /// engine's queue may keep the last registered waker after the channel handle is freed,
    /// and must not keep the descriptor open.
    pub(crate) fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(Arc::new(SignalOnWake(Arc::downgrade(self))))
    }
}

/// The waker of [`Readiness::waker`].
struct SignalOnWake(Weak<Readiness>);

impl Wake for SignalOnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(ready) = self.0.upgrade() {
            ready.signal();
        }
    }
}
