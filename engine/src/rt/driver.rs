//! Choosing the I/O driver: io_uring when the kernel lets us, epoll otherwise.
//!
//! Policy (`docs/RUNTIME.md`, "Choosing the driver"; `docs/RELIABILITY.md` row 20):
//! - [`Driver::Auto`] probes io_uring once at start. If the probe fails — a seccomp filter
//!   (Docker's default profile) or the `kernel.io_uring_disabled` sysctl answers `EPERM`, an old
//!   kernel `ENOSYS`, a low memlock limit `ENOMEM` — the node logs one warning line naming the
//!   reason and runs every shard on epoll.
//! - [`Driver::IoUring`] fails fast with a [`DriverError`] that says why io_uring is unusable.
//! - [`Driver::Epoll`] never touches io_uring.
//!
//! The probe sets up a small ring, checks the kernel features the runtime relies on and asks the
//! kernel which opcodes it supports, so a kernel that has io_uring but lacks an operation we use
//! is treated like one without io_uring.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Which I/O driver the shards should use (configuration; `[engine] driver` in the TOML).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// io_uring when the start-up probe succeeds, epoll otherwise (one warning line says why).
    #[default]
    Auto,
    /// io_uring or nothing: start fails with a clear error when io_uring is unusable.
    IoUring,
    /// epoll only.
    Epoll,
}

impl Driver {
    /// The configuration spelling: `auto`, `io_uring` or `epoll`.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A driver name that is none of `auto`, `io_uring`, `epoll`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown driver {0:?}: expected \"auto\", \"io_uring\" or \"epoll\"")]
pub struct UnknownDriver(pub String);

impl FromStr for Driver {
    type Err = UnknownDriver;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Driver::Auto),
            "io_uring" | "io-uring" | "iouring" | "uring" => Ok(Driver::IoUring),
            "epoll" | "poll" | "polling" => Ok(Driver::Epoll),
            _ => Err(UnknownDriver(s.to_owned())),
        }
    }
}

/// The driver that actually runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// Completion-based I/O on io_uring.
    IoUring,
    /// Readiness-based I/O on epoll.
    Epoll,
}

impl DriverKind {
    /// `io_uring` or `epoll`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::IoUring => "io_uring",
            DriverKind::Epoll => "epoll",
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why io_uring cannot be used on this host.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    /// `io_uring_setup` returned `EPERM`.
    #[error(
        "io_uring_setup was denied (EPERM): a seccomp filter (such as Docker's default profile) \
         or the kernel.io_uring_disabled sysctl blocks io_uring"
    )]
    Denied,
    /// `io_uring_setup` returned `ENOSYS`.
    #[error("the kernel has no io_uring (ENOSYS)")]
    NotSupported,
    /// `io_uring_setup` returned `ENOMEM` (or `ENOBUFS`).
    #[error(
        "io_uring_setup could not lock memory for the ring ({0}): raise the memlock limit \
         (ulimit -l) or use a newer kernel"
    )]
    Memlock(io::Error),
    /// The kernel lacks a feature the runtime needs.
    #[error("the kernel's io_uring lacks {0}")]
    MissingFeature(&'static str),
    /// The kernel lacks opcodes the engine uses.
    #[error("the kernel's io_uring lacks the opcodes {0:?}")]
    MissingOpcodes(Vec<&'static str>),
    /// io_uring is not built into this binary (not Linux).
    #[error("io_uring is only available on Linux")]
    NotLinux,
    /// Any other failure.
    #[error("io_uring setup failed: {0}")]
    Other(io::Error),
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// `driver = "io_uring"` was configured but io_uring is unusable.
    #[error("driver \"io_uring\" was requested but io_uring is unavailable: {0}")]
    IoUringUnavailable(ProbeFailure),
    /// A shard's runtime failed to start.
    #[error("cannot start the {kind} runtime: {source}")]
    Runtime {
        /// The driver the runtime was built for.
        kind: DriverKind,
        /// The error.
        source: io::Error,
    },
}

/// Resolves the configured driver to the one that will run, probing io_uring when needed:
/// the kernel probe first, then a trial runtime with the shards' own settings (`ring_entries`),
/// so a ring the probe could set up but the real size cannot (memlock) is caught here too.
/// `Auto` logs one warning line when it falls back.
pub(crate) fn resolve(driver: Driver, ring_entries: u32) -> Result<DriverKind, DriverError> {
    let check = || {
        probe()?;
        super::thread::try_runtime(DriverKind::IoUring, ring_entries).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::ENOMEM) | Some(libc::ENOBUFS) => ProbeFailure::Memlock(e),
                _ => ProbeFailure::Other(e),
            }
        })
    };
    match driver {
        Driver::Epoll => Ok(DriverKind::Epoll),
        Driver::IoUring => match check() {
            Ok(()) => Ok(DriverKind::IoUring),
            Err(e) => Err(DriverError::IoUringUnavailable(e)),
        },
        Driver::Auto => match check() {
            Ok(()) => Ok(DriverKind::IoUring),
            Err(e) => {
                tracing::warn!(reason = %e, "io_uring unavailable, falling back to the epoll driver");
                Ok(DriverKind::Epoll)
            }
        },
    }
}

/// Checks that io_uring can be set up and supports every operation the engine submits.
#[cfg(target_os = "linux")]
pub fn probe() -> Result<(), ProbeFailure> {
    use io_uring::opcode;

    let ring = io_uring::IoUring::new(8).map_err(classify)?;
    if !ring.params().is_feature_ext_arg() {
        return Err(ProbeFailure::MissingFeature(
            "IORING_FEAT_EXT_ARG (Linux 5.11 or newer)",
        ));
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(ProbeFailure::Other)?;
    let needed: [(u8, &'static str); 10] = [
        (opcode::Accept::CODE, "ACCEPT"),
        (opcode::Connect::CODE, "CONNECT"),
        (opcode::Recv::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::Read::CODE, "READ"),
        (opcode::Write::CODE, "WRITE"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::Close::CODE, "CLOSE"),
        (opcode::Shutdown::CODE, "SHUTDOWN"),
    ];
    let missing: Vec<&'static str> = needed
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ProbeFailure::MissingOpcodes(missing))
    }
}

/// Whether the kernel's io_uring has zero-copy send (`IORING_OP_SEND_ZC`, Linux 6.0+). Zero-copy
/// sends are used only where it does; elsewhere every write is a plain send.
#[cfg(target_os = "linux")]
pub fn send_zc_supported() -> bool {
    let Ok(ring) = io_uring::IoUring::new(8) else {
        return false;
    };
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe).is_ok()
        && probe.is_supported(io_uring::opcode::SendZc::CODE)
}

/// Whether the kernel's io_uring has zero-copy send (never on this platform).
#[cfg(not(target_os = "linux"))]
pub fn send_zc_supported() -> bool {
    false
}

/// Checks that io_uring can be set up (never on this platform).
#[cfg(not(target_os = "linux"))]
pub fn probe() -> Result<(), ProbeFailure> {
    Err(ProbeFailure::NotLinux)
}

#[cfg(target_os = "linux")]
fn classify(e: io::Error) -> ProbeFailure {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => ProbeFailure::Denied,
        Some(libc::ENOSYS) => ProbeFailure::NotSupported,
        Some(libc::ENOMEM) | Some(libc::ENOBUFS) => ProbeFailure::Memlock(e),
        _ => ProbeFailure::Other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("auto".parse::<Driver>(), Ok(Driver::Auto));
        assert_eq!("io_uring".parse::<Driver>(), Ok(Driver::IoUring));
        assert_eq!("IO-URING".parse::<Driver>(), Ok(Driver::IoUring));
        assert_eq!("epoll".parse::<Driver>(), Ok(Driver::Epoll));
        assert!("kqueue".parse::<Driver>().is_err());
        for d in [Driver::Auto, Driver::IoUring, Driver::Epoll] {
            assert_eq!(d.as_str().parse::<Driver>(), Ok(d));
        }
    }

    #[test]
    fn epoll_never_probes_and_auto_always_resolves() {
        assert_eq!(resolve(Driver::Epoll, 8).ok(), Some(DriverKind::Epoll));
        assert!(resolve(Driver::Auto, 8).is_ok());
    }
}
