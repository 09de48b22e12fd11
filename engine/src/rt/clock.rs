//! Deadlines for the application side: a [`Sleep`] future that works on any executor (tokio,
//! async-std, a plain `block_on`, a compio shard) and [`block_on`] for blocking callers.
//!
//! One process-wide timer thread keeps a heap of pending deadlines and wakes each future when
//! its deadline passes. The heap holds one entry per pending [`Sleep`]; an entry whose future
//! was dropped is skipped when it comes due, and the heap is compacted once such entries
//! outnumber live ones, so it stays proportional to the waits in progress.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

struct Slot {
    fired: AtomicBool,
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct Entry {
    at: Instant,
    seq: u64,
    slot: Arc<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    cancelled: usize,
    seq: u64,
}

struct Service {
    heap: Mutex<Heap>,
    cv: Condvar,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<&'static Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let s: &'static Service = Box::leak(Box::new(Service {
            heap: Mutex::new(Heap::default()),
            cv: Condvar::new(),
        }));
        if let Err(e) = std::thread::Builder::new()
            .name("ringwire-clock".into())
            .spawn(move || run(s))
        {
            // Deadlines then only fire when something else wakes the waiting future.
            tracing::error!(error = %e, "cannot start the deadline timer thread");
        }
        s
    })
}

fn run(s: &'static Service) {
    let mut heap = s.heap.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse(top)) = heap.entries.peek() {
            if top.at > now {
                break;
            }
            if let Some(Reverse(e)) = heap.entries.pop() {
                if e.slot.cancelled.load(Ordering::Acquire) {
                    heap.cancelled = heap.cancelled.saturating_sub(1);
                } else {
                    due.push(e.slot);
                }
            }
        }
        if !due.is_empty() {
            drop(heap);
            for slot in due {
                slot.fired.store(true, Ordering::Release);
                let w = slot.waker.lock().map(|mut w| w.take()).unwrap_or(None);
                if let Some(w) = w {
                    w.wake();
                }
            }
            heap = s.heap.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        heap = match heap.entries.peek() {
            Some(Reverse(top)) => {
                let wait = top.at.saturating_duration_since(now);
                s.cv.wait_timeout(heap, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0)
            }
            None => s.cv.wait(heap).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// Completes at a deadline, on any executor.
pub(crate) struct Sleep {
    at: Instant,
    slot: Option<Arc<Slot>>,
}

/// A future that completes at `at`.
pub(crate) fn sleep_until(at: Instant) -> Sleep {
    Sleep { at, slot: None }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        match &self.slot {
            Some(slot) => {
                if slot.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                if let Ok(mut w) = slot.waker.lock() {
                    *w = Some(cx.waker().clone());
                }
                if slot.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
            }
            None => {
                let slot = Arc::new(Slot {
                    fired: AtomicBool::new(false),
                    cancelled: AtomicBool::new(false),
                    waker: Mutex::new(Some(cx.waker().clone())),
                });
                let s = service();
                let mut heap = s.heap.lock().unwrap_or_else(|e| e.into_inner());
                heap.seq = heap.seq.wrapping_add(1);
                let seq = heap.seq;
                let earliest = heap
                    .entries
                    .peek()
                    .is_none_or(|Reverse(top)| self.at < top.at);
                heap.entries.push(Reverse(Entry {
                    at: self.at,
                    seq,
                    slot: slot.clone(),
                }));
                drop(heap);
                if earliest {
                    s.cv.notify_one();
                }
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        if slot.fired.load(Ordering::Acquire) {
            return;
        }
        slot.cancelled.store(true, Ordering::Release);
        let s = service();
        let mut heap = s.heap.lock().unwrap_or_else(|e| e.into_inner());
        heap.cancelled = heap.cancelled.saturating_add(1);
        if heap.cancelled > 1024 && heap.cancelled > heap.entries.len() / 2 {
            let entries = std::mem::take(&mut heap.entries);
            heap.entries = entries
                .into_iter()
                .filter(|Reverse(e)| !e.slot.cancelled.load(Ordering::Acquire))
                .collect();
            heap.cancelled = 0;
        }
    }
}

/// Runs `future` until `deadline`; `None` when the deadline came first.
pub(crate) async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut sleep = std::pin::pin!(sleep_until(deadline));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Blocks the current thread until `future` completes. For callers outside any executor; do not
/// call it from a shard thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        /// This thread's waker, made once: blocking callers (the C ABI's sends, one per
        /// message) would otherwise pay an allocation per call.
        static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    }
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Polls `future` once, without a waker that does anything; `None` when it is not ready. For
/// futures that never wait on the path taken (a send with no deadline).
pub(crate) fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sleep_completes_after_its_deadline() {
        let start = Instant::now();
        let at = start + Duration::from_millis(30);
        block_on(sleep_until(at));
        assert!(Instant::now() >= at);
    }

    #[test]
    fn timeout_reports_which_came_first() {
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            block_on(timeout_at(soon, std::future::pending::<()>())),
            None
        );
        let later = Instant::now() + Duration::from_secs(30);
        assert_eq!(block_on(timeout_at(later, async { 7 })), Some(7));
    }

    #[test]
    fn many_dropped_sleeps_are_compacted() {
        for _ in 0..3000 {
            let mut s = Box::pin(sleep_until(Instant::now() + Duration::from_secs(3600)));
            let w = Waker::noop();
            let _ = s.as_mut().poll(&mut Context::from_waker(w));
        }
        let heap = service().heap.lock().unwrap();
        assert!(heap.entries.len() < 3000);
    }
}
