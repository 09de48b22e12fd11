//! Shard threads: one OS thread per shard, each running its own single-threaded runtime (its
//! own io_uring or epoll instance). Tasks spawned on a shard stay on that thread.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::thread::JoinHandle;

use super::driver::{DriverError, DriverKind};
use super::wake_relay::RelayWakes;

/// How a shard thread is started.
#[derive(Clone, Debug)]
pub(crate) struct ThreadSpec {
    /// Thread name (shows in `top -H`).
    pub(crate) name: String,
    /// The driver its runtime uses.
    pub(crate) kind: DriverKind,
    /// Pin the thread to this CPU.
    pub(crate) cpu: Option<usize>,
    /// Submission queue entries of the ring (io_uring only).
    pub(crate) ring_entries: u32,
    /// Buffers lent to reads (`Stream::read_lent`): how many, and the size of each. The pool
    /// is registered when the runtime starts; if the kernel refuses it, the thread runs
    /// without one (see [`read_pool_ready`]).
    pub(crate) read_pool: Option<(u16, usize)>,
    /// Act as if the kernel refused the read pool (tests of the fallback).
    #[cfg(test)]
    pub(crate) refuse_read_pool: bool,
}

thread_local! {
    static READ_POOL_READY: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current shard thread's runtime has its read pool (the provided-buffer ring of
/// [`ThreadSpec::read_pool`]) registered. False on threads started without one, and on those
/// whose kernel refused it: their connections read into buffers of their own.
pub(crate) fn read_pool_ready() -> bool {
    READ_POOL_READY.with(Cell::get)
}

/// Starts a shard thread that runs `main` to completion on a fresh runtime. Returns once the
/// runtime is up (or failed to build, which is returned as the error).
pub(crate) fn spawn_shard_thread<F, Fut>(
    spec: ThreadSpec,
    main: F,
) -> Result<JoinHandle<()>, DriverError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let kind = spec.kind;
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    let handle = std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || {
            let runtime = match build_runtime(&spec) {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            READ_POOL_READY.with(|r| r.set(register_read_pool(&runtime, &spec)));
            let _ = ready_tx.send(Ok(()));
            drop(ready_tx);
            runtime.block_on(RelayWakes::new(main()));
        })
        .map_err(|source| DriverError::Runtime { kind, source })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(source)) => {
            let _ = handle.join();
            Err(DriverError::Runtime { kind, source })
        }
        Err(_) => {
            let _ = handle.join();
            Err(DriverError::Runtime {
                kind,
                source: io::Error::other("shard thread exited before its runtime started"),
            })
        }
    }
}

/// Builds (and drops) a runtime of `kind` on the calling thread, to check that it can start.
pub(crate) fn try_runtime(kind: DriverKind, ring_entries: u32) -> io::Result<()> {
    build_runtime(&ThreadSpec {
        name: String::new(),
        kind,
        cpu: None,
        ring_entries,
        read_pool: None,
        #[cfg(test)]
        refuse_read_pool: false,
    })
    .map(drop)
}

/// Registers the runtime's read pool now, so that a refusal shows at start and not on each
/// read. Any error (a low `RLIMIT_MEMLOCK`, a kernel without provided-buffer rings, a
/// seccomp filter) leaves the thread without a pool, with one warning; the caller's
/// connections then read into buffers of their own. Returns whether the pool is registered.
fn register_read_pool(runtime: &compio::runtime::Runtime, spec: &ThreadSpec) -> bool {
    let Some((count, len)) = spec.read_pool else {
        return false;
    };
    #[cfg(test)]
    let refused = spec.refuse_read_pool;
    #[cfg(not(test))]
    let refused = false;
    let registered = if refused {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "provided-buffer ring refused (test)",
        ))
    } else {
        runtime.buffer_pool().map(drop)
    };
    match registered {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                thread = %spec.name,
                buffers = count,
                buffer_len = len,
                error = %e,
                "cannot register the provided-buffer ring for reads; this shard's connections \
                 read into buffers of their own"
            );
            false
        }
    }
}

fn build_runtime(spec: &ThreadSpec) -> io::Result<compio::runtime::Runtime> {
    use compio::driver::{DriverType, ProactorBuilder};

    let mut proactor = ProactorBuilder::new();
    proactor.capacity(spec.ring_entries.max(8));
    proactor.driver_type(match spec.kind {
        DriverKind::IoUring => DriverType::IoUring,
        DriverKind::Epoll => DriverType::Poll,
    });
    if spec.kind == DriverKind::IoUring && super::net::kernel_at_least(6, 1) {
        // One ring per shard thread, submitted to only by that thread: tell the kernel, so it
        // runs completion work when the shard enters the ring to wait instead of interrupting
        // the shard for each completion (SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN and
        // TASKRUN_FLAG; Linux 6.1 or newer, older kernels keep the default setup).
        proactor
            .single_issuer(true)
            .defer_taskrun(true)
            .coop_taskrun(true)
            .taskrun_flag(true);
    }
    if let Some((count, len)) = spec.read_pool {
        if let Some(count) = std::num::NonZero::new(count) {
            proactor.buffer_pool_size(count);
        }
        proactor.buffer_pool_buffer_len(len.max(1));
    }
    let mut builder = compio::runtime::RuntimeBuilder::new();
    builder.with_proactor(proactor);
    if let Some(cpu) = spec.cpu {
        builder.thread_affinity(HashSet::from([cpu]));
    }
    let runtime = builder.build()?;
    let actual = match runtime.driver_type() {
        DriverType::IoUring => DriverKind::IoUring,
        _ => DriverKind::Epoll,
    };
    if actual != spec.kind {
        return Err(io::Error::other(format!(
            "the runtime started on {actual} instead of {}",
            spec.kind
        )));
    }
    Ok(runtime)
}

/// A task on the current shard. Dropping the handle leaves the task running; [`Task::abort`]
/// cancels it (its pending I/O is cancelled; buffers stay alive until the kernel lets go).
pub(crate) struct Task(Option<compio::runtime::JoinHandle<()>>);

impl Task {
    /// Cancels the task.
    pub(crate) fn abort(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.detach();
        }
    }
}

/// Spawns a task on the current shard's runtime. Must be called from a shard thread.
pub(crate) fn spawn<F>(future: F) -> Task
where
    F: Future<Output = ()> + 'static,
{
    Task(Some(compio::runtime::spawn(RelayWakes::new(future))))
}
