//! Wakes of shard tasks that are safe from a thread that is unwinding.
//!
//! compio schedules a task woken from another thread under a guard that aborts the process if
//! the waking thread is panicking. An application thread that panics while it holds a channel,
//! a node or a request handle drops them as it unwinds, and those drops wake shard tasks (a
//! receiver that goes away frees room its driver waits for; a node that goes away tells its
//! shards to stop). Without this relay, any panic in an application with a live node would
//! end the whole process with SIGABRT and lose the panic's message.
//!
//! [`RelayWakes`] wraps every future the runtime layer runs on a shard: the tasks see a waker of
//! their own that forwards to the runtime's. A wake from a thread that is not unwinding is
//! forwarded in place; a wake from one that is unwinding is forwarded from a short-lived
//! thread, which is joined, so the wake has happened when `wake` returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// The waker a relayed future sees: it forwards to the runtime's latest waker for the task.
struct Relay {
    /// The runtime's waker, replaced whenever the task is polled with a different one.
    target: Mutex<Waker>,
}

impl Relay {
    fn target(&self) -> Waker {
        self.target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let target = self.target();
        if !std::thread::panicking() {
            target.wake();
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("ringwire-wake".into())
            .spawn(move || target.wake());
        match spawned {
            Ok(handle) => {
                let _ = handle.join();
            }
            // Without a thread the wake is lost; the task still ends with its shard, which a
            // node's drop stops by its own deadline.
            Err(e) => tracing::warn!("a wake from an unwinding thread was lost: {e}"),
        }
    }
}

/// A future whose wakers are relayed (see the module documentation).
pub(crate) struct RelayWakes<F> {
    future: Pin<Box<F>>,
    /// Set at the first poll: the relay, the waker made from it, and the runtime's waker the
    /// relay forwards to (kept here too, so that a poll compares without taking the lock).
    relay: Option<(Arc<Relay>, Waker, Waker)>,
}

impl<F: Future> RelayWakes<F> {
    /// Wraps `future`.
    pub(crate) fn new(future: F) -> Self {
        Self {
            future: Box::pin(future),
            relay: None,
        }
    }
}

impl<F: Future> Future for RelayWakes<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let (relay, waker, target) = this.relay.get_or_insert_with(|| {
            let relay = Arc::new(Relay {
                target: Mutex::new(cx.waker().clone()),
            });
            let waker = Waker::from(relay.clone());
            (relay, waker, cx.waker().clone())
        });
        if !target.will_wake(cx.waker()) {
            target.clone_from(cx.waker());
            relay
                .target
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone_from(cx.waker());
        }
        this.future.as_mut().poll(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pending once, keeping the waker it was given.
    #[derive(Default)]
    struct Keep(Option<Waker>);

    impl Future for Keep {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.0 = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn a_wake_reaches_the_latest_outer_waker() {
        let first = Arc::new(Count(AtomicUsize::new(0)));
        let second = Arc::new(Count(AtomicUsize::new(0)));
        let mut relayed = RelayWakes::new(Keep::default());
        let w1 = Waker::from(first.clone());
        let _ = Pin::new(&mut relayed).poll(&mut Context::from_waker(&w1));
        let w2 = Waker::from(second.clone());
        let _ = Pin::new(&mut relayed).poll(&mut Context::from_waker(&w2));
        relayed.future.0.take().unwrap().wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    /// Wakes its target when dropped.
    struct WakeOnDrop(Option<Waker>);

    impl Drop for WakeOnDrop {
        fn drop(&mut self) {
            if let Some(w) = self.0.take() {
                w.wake();
            }
        }
    }

    #[test]
    fn a_wake_from_an_unwinding_thread_is_relayed_from_another() {
        struct OnThread(AtomicUsize, Mutex<Option<String>>);
        impl Wake for OnThread {
            fn wake(self: Arc<Self>) {
                assert!(!std::thread::panicking());
                *self.1.lock().unwrap() = std::thread::current().name().map(str::to_owned);
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let outer = Arc::new(OnThread(AtomicUsize::new(0), Mutex::new(None)));
        let mut relayed = RelayWakes::new(Keep::default());
        let w = Waker::from(outer.clone());
        let _ = Pin::new(&mut relayed).poll(&mut Context::from_waker(&w));
        let inner = relayed.future.0.take().unwrap();
        let result = std::thread::spawn(move || {
            let _wake = WakeOnDrop(Some(inner));
            panic!("the application panics while it holds a handle");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(outer.0.load(Ordering::SeqCst), 1);
        assert_eq!(outer.1.lock().unwrap().as_deref(), Some("ringwire-wake"));
    }
}
