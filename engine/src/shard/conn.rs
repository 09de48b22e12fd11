//! One connection on a shard: a [`Connection`] state machine, its stream, and three tasks.
//!
//! - the **reader** reads into an owned buffer and feeds [`Connection::handle_input`]; it stops
//!   reading while [`Connection::wants_input`] is false (the peer then feels TCP backpressure);
//! - the **writer** moves held messages into the connection, drains
//!   [`Connection::poll_transmit`] into one buffer (many records, one write) and writes it;
//! - the **driver** runs timers ([`Connection::poll_timeout`]) and turns events into peer
//!   registration, channel deliveries and request answers.
//!
//! The three share the connection through a `RefCell` on the shard's single thread; no borrow
//! is held across an await. They wake each other with notifiers that keep one pending wake-up,
//! so a wake-up sent while a task is busy is never lost.
//!
//! A received message waits in its channel's bounded receive queue. When that queue is full the
//! driver holds the message and stops taking events from this connection (others on the shard
//! continue); compat connections then stop reading, native ones stop returning flow-control
//! credit, so the peer slows down while keepalive keeps being answered.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, pending, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Instant;

use tokio::sync::Notify;

use crate::proto::budget::Exceeded;
use crate::proto::conn::{ConnError, Connection, Event, Message, Mode, PeerInfo};
use crate::proto::native::{MessageKind, RequestId};
use crate::registry::{
    Admitted, ChannelTable, ConnId, DialError, Direction, DownReason, FinishedRequests, Origin,
    PeerEntry, Pending, PendingRequest, Received, Registry, SendError,
};
use crate::rt::net::{self, Stream, ZcInFlight};
use crate::rt::{thread, time};

use super::channels::ChannelSet;
use super::deliver::Gathered;
use super::inbound::InboundRequests;
use super::inbox::{Command, DialReply, RequestReply};
use super::lowat::RateLowat;
use super::pace::Pace;
use super::staging::{Pumped, Staged, Staging};
use super::{Shard, ShardConfig};

/// Why this node closed a connection, beyond what the protocol reports.
enum CloseCause {
    /// The socket failed or reached end of stream.
    Io(String),
    /// Admission refused the authenticated peer.
    Refused(String),
}

/// Shared state of one connection (shard-local).
pub(crate) struct ConnCtx {
    pub(crate) id: ConnId,
    conn: RefCell<Connection>,
    stream: Stream,
    table: Arc<ChannelTable>,
    direction: Direction,
    addr: Option<SocketAddr>,
    entry: RefCell<Option<Arc<PeerEntry>>>,
    /// The channels the peer shares while it is up (empty otherwise): the entry's list, kept
    /// here for broadcasts (`channels.rs`).
    shared: Cell<ChannelSet>,
    staging: RefCell<Staging>,
    requests: RefCell<HashMap<RequestId, RequestReply>>,
    /// Requests the peer sent that the application holds, until it answers or drops them
    /// (as many as the peer may have in flight).
    inbound: RefCell<InboundRequests>,
    /// Where the application's drops of those requests are reported (the driver waits on it).
    finished: Arc<FinishedRequests>,
    dial_reply: RefCell<Option<DialReply>>,
    /// The gate's place for this connection until admission (dropped if it never gets there).
    pending: RefCell<Option<Pending>>,
    /// Why this node closed the connection, when it was not the protocol's own reason (the
    /// first cause wins).
    cause: RefCell<Option<CloseCause>>,
    /// The socket ended or failed; the driver closes once it has taken the events received
    /// before (a peer that closed cleanly sent its reason just before).
    pending_io: RefCell<Option<String>>,
    /// `[p2p] send_rate` and `recv_rate` of this connection (`None`: unlimited).
    send_pace: RefCell<Option<Pace>>,
    recv_pace: RefCell<Option<Pace>>,
    /// How long a partial batch of stock (compat) packets waits for more before it is written.
    flush_throttle: Option<std::time::Duration>,
    /// The node's registry (its counters).
    registry: Arc<Registry>,
    wake_reader: Notify,
    wake_writer: Notify,
    wake_driver: Notify,
    writer_done: Cell<bool>,
    writer_exit: Notify,
    /// The multiplexer's expiry counters (before send, before delivery) already added to the
    /// node's.
    expired_seen: Cell<(u64, u64)>,
}

impl ConnCtx {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: ConnId,
        conn: Connection,
        stream: Stream,
        table: Arc<ChannelTable>,
        direction: Direction,
        addr: Option<SocketAddr>,
        dial_reply: Option<DialReply>,
        pending: Option<Pending>,
        config: &ShardConfig,
        registry: Arc<Registry>,
    ) -> Self {
        let now = Instant::now();
        let inbound = InboundRequests::default();
        let finished = inbound.finished();
        ConnCtx {
            id,
            conn: RefCell::new(conn),
            stream,
            table,
            direction,
            addr,
            entry: RefCell::new(None),
            shared: Cell::new(ChannelSet::default()),
            staging: RefCell::new(Staging::default()),
            expired_seen: Cell::new((0, 0)),
            requests: RefCell::new(HashMap::new()),
            inbound: RefCell::new(inbound),
            finished,
            dial_reply: RefCell::new(dial_reply),
            pending: RefCell::new(pending),
            cause: RefCell::new(None),
            // After an idle time a tenth of a second of the rate may go at once (at least a
            // write batch or a read buffer).
            send_pace: RefCell::new(Pace::bytes(config.send_rate, config.write_batch, now)),
            recv_pace: RefCell::new(Pace::bytes(config.recv_rate, config.read_buffer, now)),
            flush_throttle: config.flush_throttle,
            registry,
            pending_io: RefCell::new(None),
            wake_reader: Notify::new(),
            wake_writer: Notify::new(),
            wake_driver: Notify::new(),
            writer_done: Cell::new(false),
            writer_exit: Notify::new(),
        }
    }

    fn entry(&self) -> Option<Arc<PeerEntry>> {
        self.entry.borrow().clone()
    }

    fn is_closed(&self) -> bool {
        self.conn.borrow().is_closed()
    }

    /// Holds `item` for `channel` and moves what fits into the connection; `now` is the
    /// shard's clock for this turn (delivery deadlines are checked against it).
    pub(crate) fn stage(&self, channel: u8, item: Staged, now: Instant) {
        self.move_staged(|staging, conn, entry| staging.offer(conn, entry, channel, item, now));
    }

    /// [`stage`](Self::stage) for several items of one channel: held in order, then one pump.
    pub(crate) fn stage_many(
        &self,
        channel: u8,
        items: impl Iterator<Item = Staged>,
        now: Instant,
    ) {
        {
            let mut staging = self.staging.borrow_mut();
            for item in items {
                staging.push(channel, item);
            }
        }
        self.pump_at(now);
    }

    /// Holds the answer to `request` (sent by this connection's peer); an answer to a request
    /// already answered or finished is ignored.
    pub(crate) fn respond(&self, request: PendingRequest, payload: bytes::Bytes) {
        if self.inbound.borrow_mut().answer(&request) {
            let (channel, id) = (request.0.channel, request.0.id);
            self.stage(channel, Staged::Response { id, payload }, Instant::now());
        }
    }

    /// Frees the places of the requests the application dropped unanswered.
    fn release_finished(&self) {
        let released = {
            let mut conn = self.conn.borrow_mut();
            self.inbound.borrow_mut().release_finished(&mut conn)
        };
        if released {
            // A CANCEL acknowledgement may wait to be written.
            self.wake_writer.notify_one();
        }
    }

    /// Withdraws the requests whose callers stopped waiting: held ones are dropped, those in
    /// the connection are cancelled (a CANCEL frame follows when the peer has them).
    pub(crate) fn withdraw_abandoned(&self) {
        let entry = self.entry();
        self.staging.borrow_mut().drop_abandoned(entry.as_deref());
        let mut cancelled = 0;
        {
            let mut conn = self.conn.borrow_mut();
            self.requests.borrow_mut().retain(|id, reply| {
                if reply.is_closed() {
                    conn.cancel(*id);
                    cancelled += 1;
                    false
                } else {
                    true
                }
            });
        }
        if cancelled > 0 {
            tracing::trace!(conn = self.id, cancelled, "requests withdrawn");
            self.wake_writer.notify_one();
        }
        // Dropped held requests returned credits: more may move now.
        self.pump();
    }

    /// Items held on `channel`.
    pub(crate) fn staged(&self, channel: u8) -> usize {
        self.staging.borrow().len(channel)
    }

    /// Whether the peer is up and shares `channel`.
    pub(crate) fn shares(&self, channel: u8) -> bool {
        self.shared.get().contains(channel)
    }

    /// The channel's send queue capacity (from this connection's channel table).
    pub(crate) fn capacity(&self, channel: u8) -> usize {
        self.table
            .get(channel)
            .map_or(1, |s| s.desc.send_queue_capacity.max(1))
    }

    /// Moves held items into the connection; wakes the writer and returns true if any moved.
    fn pump(&self) -> bool {
        if self.staging.borrow().is_empty() {
            return false;
        }
        self.pump_at(Instant::now())
    }

    /// [`pump`](Self::pump) with the clock already read.
    fn pump_at(&self, now: Instant) -> bool {
        if self.staging.borrow().is_empty() {
            return false;
        }
        self.move_staged(|staging, conn, entry| staging.pump(conn, entry, now))
    }

    /// Runs `step` (an offer or a pump) over the staging, the connection and the peer's entry,
    /// then takes note of what it moved: routes the requests' responses, counts the drops and
    /// wakes the writer; true if anything moved.
    fn move_staged(
        &self,
        step: impl FnOnce(&mut Staging, &mut Connection, Option<&PeerEntry>) -> Pumped,
    ) -> bool {
        let pumped = {
            // Borrowed, not cloned: a clone per message would update the entry's reference
            // count, which the sending threads update too as they look the peer up.
            let entry = self.entry.borrow();
            let mut conn = self.conn.borrow_mut();
            step(&mut self.staging.borrow_mut(), &mut conn, entry.as_deref())
        };
        if !pumped.requests.is_empty() {
            self.requests.borrow_mut().extend(pumped.requests);
        }
        if pumped.dropped > 0 {
            self.registry
                .stats
                .queued_dropped
                .fetch_add(pumped.dropped, Ordering::Relaxed);
        }
        if pumped.expired > 0 {
            self.registry
                .stats
                .expired_before_send
                .fetch_add(pumped.expired, Ordering::Relaxed);
        }
        if pumped.moved > 0 {
            self.wake_writer.notify_one();
        }
        pumped.moved > 0
    }

    /// Adds the payload bytes moved into the connection so far to the peer's traffic counters
    /// (the writer calls it as it takes them out).
    fn flush_sent(&self) {
        let entry = self.entry.borrow();
        self.staging.borrow_mut().flush_sent(entry.as_deref());
    }

    /// Adds the multiplexer's new expiry drops to the node's counters.
    fn sync_expired(&self) {
        let now = match self.conn.borrow().native_stats() {
            Some(s) => (s.expired_before_send, s.expired_before_delivery),
            None => return,
        };
        let seen = self.expired_seen.replace(now);
        let stats = &self.registry.stats;
        let send = now.0.saturating_sub(seen.0);
        let delivery = now.1.saturating_sub(seen.1);
        if send > 0 {
            stats.expired_before_send.fetch_add(send, Ordering::Relaxed);
        }
        if delivery > 0 {
            stats
                .expired_before_delivery
                .fetch_add(delivery, Ordering::Relaxed);
        }
    }

    /// Closes the connection for a local reason (shutdown, disconnect).
    pub(crate) fn close(&self, reason: &str) {
        self.conn.borrow_mut().close(Instant::now(), reason);
        self.wake_all();
    }

    /// Closes the connection because this node does not take its peer, saying why.
    fn refuse(&self, reason: String) {
        self.cause
            .borrow_mut()
            .get_or_insert(CloseCause::Refused(reason.clone()));
        self.close(&reason);
    }

    /// Closes the connection because the socket failed or ended.
    fn fail_io(&self, what: String) {
        if self.is_closed() {
            return;
        }
        self.cause
            .borrow_mut()
            .get_or_insert(CloseCause::Io(what.clone()));
        self.conn.borrow_mut().close(Instant::now(), &what);
        self.wake_all();
    }

    /// Records a socket failure for the driver to act on after the pending events.
    fn defer_io(&self, what: String) {
        self.pending_io.borrow_mut().get_or_insert(what);
        self.wake_driver.notify_one();
    }

    /// Waits out the receive rate after `bytes` were read.
    async fn pace_read(&self, bytes: usize) {
        let wait = match self.recv_pace.borrow_mut().as_mut() {
            Some(p) => p.take(bytes, Instant::now()),
            None => return,
        };
        if !wait.is_zero() {
            time::sleep_until(Instant::now() + wait).await;
        }
    }

    /// Waits out the send rate before `bytes` are written.
    async fn pace_write(&self, bytes: usize) {
        let wait = match self.send_pace.borrow_mut().as_mut() {
            Some(p) => p.take(bytes, Instant::now()),
            None => return,
        };
        if !wait.is_zero() {
            time::sleep_until(Instant::now() + wait).await;
        }
    }

    /// The flush throttle, on a stock (compat) connection that has one.
    fn compat_flush_throttle(&self) -> Option<std::time::Duration> {
        self.flush_throttle
            .filter(|_| self.conn.borrow().mode() == Some(Mode::Compat))
    }

    fn wake_all(&self) {
        self.wake_driver.notify_one();
        self.wake_writer.notify_one();
        self.wake_reader.notify_one();
    }
}

/// Starts the three tasks of a connection; returns when the connection is finished and its
/// tasks are gone.
pub(crate) async fn run(shard: Rc<Shard>, ctx: Rc<ConnCtx>) {
    // A multishot receive keeps filling the shard's shared buffers while a paced reader waits,
    // so a connection with a receive rate reads single-shot.
    let multishot = shard.config.multishot_recv && ctx.recv_pace.borrow().is_none();
    let reader = if multishot {
        thread::spawn(read_multi_loop(
            shard.clone(),
            ctx.clone(),
            shard.config.read_buffer,
        ))
    } else if shard.config.lent_buffers {
        let (shard2, ctx2, size) = (shard.clone(), ctx.clone(), shard.config.read_buffer);
        thread::spawn(async move {
            read_lent_loop(shard2, ctx2, size, false).await;
        })
    } else {
        thread::spawn(read_loop(ctx.clone(), shard.config.read_buffer))
    };
    let writer = thread::spawn(write_loop(
        shard.clone(),
        ctx.clone(),
        shard.config.write_batch,
    ));
    drive(&shard, &ctx).await;
    // Let the writer send what the close queued (CLOSE or RESET), for a bounded time.
    ctx.wake_writer.notify_one();
    let grace = Instant::now() + shard.config.close_grace;
    let _ = time::timeout_at(grace, async {
        while !ctx.writer_done.get() {
            ctx.writer_exit.notified().await;
        }
    })
    .await;
    if !ctx.writer_done.get() {
        // The peer has not taken our last bytes within the grace (it may be gone without a
        // word): reset the socket, so the kernel frees what it holds to send now, and with it
        // the buffers (and descriptor) of zero-copy sends awaiting release, instead of when TCP
        // gives up retransmitting (docs/RELIABILITY.md row 12).
        ctx.stream.reset();
    }
    reader.abort();
    writer.abort();
    shard.forget(ctx.id);
}

async fn read_loop(ctx: Rc<ConnCtx>, size: usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(size);
    loop {
        if !wait_for_input_demand(&ctx).await {
            return;
        }
        buf.clear();
        let (result, b) = ctx.stream.read(buf).await;
        buf = b;
        match result {
            Ok(0) => {
                ctx.defer_io("connection closed by the peer".into());
                return;
            }
            Ok(n) => {
                // The error, if any, is also reported as `Event::Closed`.
                let _ = ctx.conn.borrow_mut().handle_input(Instant::now(), &buf);
                ctx.wake_driver.notify_one();
                ctx.wake_writer.notify_one();
                ctx.pace_read(n).await;
            }
            Err(e) => {
                ctx.defer_io(format!("read: {e}"));
                return;
            }
        }
    }
}

/// Like `read_loop`, with buffers lent by the runtime for the duration of one read (the
/// provided-buffer ring on io_uring): an idle connection holds no read buffer.
///
/// With `until_native`, returns once the connection runs the native protocol (its reader then
/// switches to a multishot receive); the return value says whether that happened.
async fn read_lent_loop(
    shard: Rc<Shard>,
    ctx: Rc<ConnCtx>,
    size: usize,
    until_native: bool,
) -> bool {
    loop {
        if !wait_for_input_demand(&ctx).await {
            return false;
        }
        if until_native && ctx.conn.borrow().mode() == Some(Mode::Native) {
            return true;
        }
        let read = Cell::new(0);
        let result = ctx
            .stream
            .read_lent(size, |bytes| {
                read.set(bytes.len());
                // The error, if any, is also reported as `Event::Closed`.
                let _ = ctx.conn.borrow_mut().handle_input(Instant::now(), bytes);
            })
            .await;
        match result {
            Ok(Some(())) => {
                ctx.wake_driver.notify_one();
                ctx.wake_writer.notify_one();
                ctx.pace_read(read.get()).await;
            }
            Ok(None) => {
                ctx.defer_io("connection closed by the peer".into());
                return false;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                // Every pooled buffer is in use on this shard: let the others drain first.
                shard
                    .registry
                    .stats
                    .read_buffers_exhausted
                    .fetch_add(1, Ordering::Relaxed);
                time::sleep_until(Instant::now() + std::time::Duration::from_millis(1)).await;
            }
            Err(e) => {
                ctx.defer_io(format!("read: {e}"));
                return false;
            }
        }
    }
}

/// Like `read_lent_loop` with one multishot receive per native connection (io_uring): the
/// kernel keeps filling ring buffers without a submission per read, and the reader hands each
/// to the connection as it comes.
///
/// Policy: a multishot receive cannot be stopped without losing what the kernel already
/// delivered for it (the runtime drops the results of a cancelled operation), so it is used
/// only where the connection always takes input: native connections, which bound what waits
/// with credit windows. The handshake and compat connections (which stop reading when their
/// receive queue is full) use single-shot reads from the same ring. A ring that runs dry
/// (`ENOBUFS`) ends the receive; it is re-armed after a short pause so the other connections
/// of the shard can return buffers.
async fn read_multi_loop(shard: Rc<Shard>, ctx: Rc<ConnCtx>, size: usize) {
    if !read_lent_loop(shard.clone(), ctx.clone(), size, true).await {
        return;
    }
    let arms = shard.clone();
    let on_arm = move || {
        arms.registry
            .stats
            .multishot_arms
            .fetch_add(1, Ordering::Relaxed);
    };
    let Some(mut rx) = ctx.stream.recv_multi(size, on_arm) else {
        // Not a socket (the in-memory pipe): plain reads.
        return read_loop(ctx, size).await;
    };
    loop {
        // Native connections always want input until they close.
        if !wait_for_input_demand(&ctx).await {
            return;
        }
        let result = rx
            .next(|bytes| {
                // The error, if any, is also reported as `Event::Closed`.
                let _ = ctx.conn.borrow_mut().handle_input(Instant::now(), bytes);
            })
            .await;
        match result {
            Ok(Some(())) => {
                shard
                    .registry
                    .stats
                    .multishot_receives
                    .fetch_add(1, Ordering::Relaxed);
                ctx.wake_driver.notify_one();
                ctx.wake_writer.notify_one();
            }
            Ok(None) => {
                ctx.defer_io("connection closed by the peer".into());
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                // The next call re-arms the receive.
                shard
                    .registry
                    .stats
                    .read_buffers_exhausted
                    .fetch_add(1, Ordering::Relaxed);
                time::sleep_until(Instant::now() + std::time::Duration::from_millis(1)).await;
            }
            Err(e) => {
                ctx.defer_io(format!("read: {e}"));
                return;
            }
        }
    }
}

/// Waits until the connection wants input; false once it is closed.
async fn wait_for_input_demand(ctx: &ConnCtx) -> bool {
    loop {
        let (closed, wants) = {
            let c = ctx.conn.borrow();
            (c.is_closed(), c.wants_input())
        };
        if closed {
            return false;
        }
        if wants {
            return true;
        }
        ctx.wake_reader.notified().await;
    }
}

/// The largest write buffer a connection keeps while it has nothing to send.
const IDLE_WRITE_BUFFER: usize = 16 * 1024;

/// Writes what the connection has to send, coalescing records up to `batch` bytes per write.
/// On io_uring a write of at least `send_zc_threshold` bytes goes out as zero-copy sends,
/// unless the peer is on this host (where the kernel copies such sends anyway).
async fn write_loop(shard: Rc<Shard>, ctx: Rc<ConnCtx>, batch: usize) {
    let zc_threshold = shard
        .config
        .send_zc_threshold
        .filter(|_| !ctx.stream.is_local_tcp());
    let mut in_flight = ZcInFlight::new(net::ZC_DEPTH);
    let mut out: Vec<u8> = Vec::new();
    // The size of the last write: a spare write buffer is taken only if it fits that.
    let mut last_write = 0;
    let mut lowat = shard
        .config
        .notsent_lowat
        .map(|base| RateLowat::new(base, Instant::now()));
    loop {
        if out.capacity() == 0
            && let Some(spare) = shard.spare_writes.take(last_write)
        {
            out = spare;
        }
        pack(&ctx, &mut out, batch);
        if !out.is_empty() && out.len() < batch {
            // Stock's flush throttle: a partial batch of packets waits for more, then goes.
            // Sends that come meanwhile are packed as they come, as stock's send routine packs
            // them into its write buffer while the flush waits: the throttle delays bytes and
            // never caps messages (with stock's mempool queue of one message, packing only at
            // the end let two transactions per peer through every 10 ms).
            if let Some(throttle) = ctx.compat_flush_throttle() {
                let mut until = pin!(time::sleep_until(Instant::now() + throttle));
                while out.len() < batch {
                    let notified = pin!(ctx.wake_writer.notified());
                    let expired = matches!(
                        futures_util::future::select(until.as_mut(), notified).await,
                        futures_util::future::Either::Left(_)
                    );
                    pack(&ctx, &mut out, batch);
                    if expired || ctx.is_closed() {
                        break;
                    }
                }
            }
        }
        if !out.is_empty() {
            ctx.pace_write(out.len()).await;
            let written = out.len();
            last_write = written;
            let result = if zc_threshold.is_some_and(|t| out.len() >= t) {
                shard
                    .registry
                    .stats
                    .zero_copy_writes
                    .fetch_add(1, Ordering::Relaxed);
                // The kernel sends from this buffer until it releases it: a fresh one follows.
                let bytes = bytes::Bytes::from(std::mem::take(&mut out));
                ctx.stream.write_all_zc(bytes, &mut in_flight).await
            } else {
                let (result, b) = ctx.stream.write_all(out).await;
                out = b;
                out.clear();
                result
            };
            if let Err(e) = result {
                ctx.defer_io(format!("write: {e}"));
                break;
            }
            if let Some(l) = lowat.as_mut()
                && !follow_rate(&ctx, l, written)
            {
                lowat = None;
            }
            ctx.wake_driver.notify_one();
            continue;
        }
        if ctx.is_closed() {
            ctx.stream.shutdown_write().await;
            break;
        }
        // Nothing to send. A busy connection keeps its write buffer from write to write (a
        // full batch otherwise regrows it from empty, copying as it doubles); an idle one
        // keeps no large buffer, and gives it to the shard's spares for the next writer.
        if out.capacity() > IDLE_WRITE_BUFFER {
            shard.spare_writes.give(std::mem::take(&mut out));
        }
        // Wait for work, letting the kernel release what zero-copy sends still hold meanwhile
        // (new work does not wait for those releases).
        let mut notified = pin!(ctx.wake_writer.notified());
        if let futures_util::future::Either::Left(_) =
            futures_util::future::select(pin!(in_flight.drain()), notified.as_mut()).await
        {
            notified.await;
        }
    }
    in_flight.drain().await;
    shard.spare_writes.give(out);
    ctx.writer_done.set(true);
    ctx.writer_exit.notify_one();
}

/// Counts a completed write toward the connection's `TCP_NOTSENT_LOWAT` (`lowat.rs`) and sets
/// the bound when it changes; false when it cannot be set (the connection stops following).
/// Kept out of line: inlined into `write_loop` it changed that loop's code and cost S2 about
/// 7 % in alternating pair runs, with the bound never changing.
#[inline(never)]
fn follow_rate(ctx: &ConnCtx, lowat: &mut RateLowat, written: usize) -> bool {
    let Some(bound) = lowat.wrote(written, Instant::now) else {
        return true;
    };
    match ctx.stream.set_notsent_lowat(bound) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "cannot set TCP_NOTSENT_LOWAT");
            false
        }
    }
}

/// Moves held sends into the connection and what it has to send into `out`, up to `batch`
/// bytes, until neither moves: taking packets out frees the connection's queues for more held
/// sends (a send queue of one message takes the next only once the last was taken out).
fn pack(ctx: &ConnCtx, out: &mut Vec<u8>, batch: usize) {
    ctx.pump();
    fill(ctx, out, batch);
    while out.len() < batch && ctx.pump() {
        fill(ctx, out, batch);
    }
    ctx.flush_sent();
}

/// Moves what the connection has to send into `out`, up to `batch` bytes.
fn fill(ctx: &ConnCtx, out: &mut Vec<u8>, batch: usize) {
    let mut conn = ctx.conn.borrow_mut();
    let now = Instant::now();
    while out.len() < batch && conn.poll_transmit(now, out) {}
}

enum Wake {
    Notified,
    Timer,
    Room,
}

async fn drive(shard: &Rc<Shard>, ctx: &Rc<ConnCtx>) {
    // Received messages on their way to the channels' queues, pushed in batches; while a full
    // queue holds some back, no further event is taken from the connection (backpressure).
    let mut gathered = Gathered::default();
    // An event taken from the connection that waits until the messages before it are pushed.
    let mut held: Option<Event> = None;
    loop {
        if !gathered.is_empty() && ctx.is_closed() {
            // Nobody will receive them: the connection is gone.
            gathered.clear();
        }
        ctx.release_finished();
        let now = Instant::now();
        {
            let mut conn = ctx.conn.borrow_mut();
            conn.set_now(now);
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                // The error, if any, is also reported as `Event::Closed`.
                let _ = conn.handle_timeout(now);
            }
        }
        let mut finished = false;
        if gathered.flush() {
            loop {
                let event = match held.take() {
                    Some(e) => e,
                    None => match ctx.conn.borrow_mut().poll_event() {
                        Some(e) => e,
                        None => break,
                    },
                };
                let message = matches!(event, Event::Message(_));
                // Messages go before whatever follows them (a close, above all).
                if !message && !gathered.flush() {
                    held = Some(event);
                    break;
                }
                if let Flow::Finished = on_event(shard, ctx, event, &mut gathered) {
                    finished = true;
                    break;
                }
                if message && gathered.is_due() && !gathered.flush() {
                    break;
                }
            }
            gathered.flush();
        }
        ctx.sync_expired();
        if finished {
            return;
        }
        if let Some(entry) = ctx.entry.borrow().as_deref()
            && let Some(rtt) = ctx.conn.borrow().rtt()
        {
            entry.set_rtt(rtt);
        }
        let failed = ctx.pending_io.borrow_mut().take();
        if let Some(what) = failed
            && !ctx.is_closed()
        {
            ctx.fail_io(what);
            continue;
        }
        if ctx.conn.borrow().wants_input() {
            ctx.wake_reader.notify_one();
        }
        // Polling events may have freed flow-control credit to announce.
        ctx.wake_writer.notify_one();

        let timeout = ctx.conn.borrow().poll_timeout();
        let mut notified = pin!(ctx.wake_driver.notified());
        let mut dropped = pin!(ctx.finished.finished());
        let mut timer = pin!(async {
            match timeout {
                Some(t) => time::sleep_until(t).await,
                None => pending::<()>().await,
            }
        });
        let room_tx = gathered.take_blocked();
        let mut room = pin!(async move {
            match room_tx {
                // Room, or the receiver is gone: either way the next flush settles it.
                Some(tx) => drop(tx.room().await),
                None => pending().await,
            }
        });
        // Each wake-up only starts another pass; room is used by the pass's first flush.
        poll_fn(|cx| {
            if notified.as_mut().poll(cx).is_ready() || dropped.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Notified);
            }
            if room.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Room);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
    }
}

enum Flow {
    Continue,
    Finished,
}

/// Handles one event; a message is added to `gathered` for the driver to push.
fn on_event(shard: &Rc<Shard>, ctx: &Rc<ConnCtx>, event: Event, gathered: &mut Gathered) -> Flow {
    match event {
        Event::Connected(info) => {
            on_connected(shard, ctx, info);
            Flow::Continue
        }
        Event::Message(m) => {
            on_message(shard, ctx, m, gathered);
            Flow::Continue
        }
        Event::RequestTimedOut(id) => {
            if let Some(reply) = ctx.requests.borrow_mut().remove(&id) {
                let _ = reply.send(Err(SendError::Timeout));
            }
            Flow::Continue
        }
        Event::RequestFailed(id) => {
            if let Some(reply) = ctx.requests.borrow_mut().remove(&id) {
                let _ = reply.send(Err(SendError::PeerGone));
            }
            Flow::Continue
        }
        Event::Cancelled(id) => {
            tracing::trace!(conn = ctx.id, ?id, "peer cancelled a request");
            // The request keeps its place until the application answers or drops it.
            ctx.inbound.borrow().cancel(id);
            Flow::Continue
        }
        Event::Closed(reason) => {
            on_closed(shard, ctx, reason);
            Flow::Finished
        }
    }
}

fn on_connected(shard: &Rc<Shard>, ctx: &Rc<ConnCtx>, info: Box<PeerInfo>) {
    if ctx
        .dial_reply
        .borrow()
        .as_ref()
        .is_some_and(|r| r.is_closed())
    {
        // The dialer gave up during the handshake: no peer comes of it.
        ctx.refuse("the dial was given up by its caller".to_owned());
        return;
    }
    let info: Arc<PeerInfo> = Arc::from(info);
    let shared: Vec<_> = ctx
        .table
        .descriptors()
        .into_iter()
        .filter(|d| info.node_info.has_channel(d.id))
        .collect();
    // The most the credits can hold: a send is refused above its channel's receive cap.
    let reachable = shared
        .iter()
        .map(|d| {
            let capacity = d.send_queue_capacity.max(1) as u64;
            capacity.saturating_mul(d.recv_message_capacity as u64)
        })
        .fold(0, u64::saturating_add);
    let entry = PeerEntry::new(
        info.clone(),
        ctx.id,
        shard.index,
        ctx.direction,
        ctx.addr,
        shared.iter().map(|d| (d.id, d.send_queue_capacity)),
    )
    .with_send_budget(shard.registry.max_peer_send_bytes, reachable);
    let pending = ctx.pending.borrow_mut().take();
    match shard.registry.admit(entry, pending) {
        Ok(Admitted { entry, replaced }) => {
            if let Some(old) = replaced {
                // If the inbox is full the old connection stays open until it fails on its
                // own; it is already invisible to senders.
                let _ = shard.inboxes.try_send(
                    old.shard,
                    Command::Disconnect {
                        conn: old.conn,
                        reason: "replaced by a newer connection to the same peer".into(),
                    },
                );
            }
            tracing::debug!(
                peer = %info.node_id,
                mode = ?info.mode,
                direction = ?ctx.direction,
                shard = shard.index,
                "peer up"
            );
            *ctx.entry.borrow_mut() = Some(entry.clone());
            ctx.shared.set(ChannelSet::of(shared.iter().map(|d| d.id)));
            shard.registry.announce_up(&entry);
            if let Some(reply) = ctx.dial_reply.borrow_mut().take() {
                let _ = reply.send(Ok(info));
            }
            ctx.pump();
        }
        Err(reason) => {
            tracing::debug!(peer = %info.node_id, %reason, "peer refused");
            ctx.refuse(reason);
        }
    }
}

fn on_message(shard: &Rc<Shard>, ctx: &Rc<ConnCtx>, m: Message, gathered: &mut Gathered) {
    let Some(peer) = ctx.entry.borrow().as_ref().map(|e| {
        e.record_received(m.channel, m.payload.len());
        e.node_id()
    }) else {
        return;
    };
    let request = match m.kind {
        MessageKind::Response(id) => {
            match ctx.requests.borrow_mut().remove(&id) {
                Some(reply) if !reply.is_closed() => {
                    let _ = reply.send(Ok(m.payload));
                }
                _ => {
                    shard
                        .registry
                        .stats
                        .late_responses
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        MessageKind::Request(id) => {
            Some(
                ctx.inbound
                    .borrow_mut()
                    .track(peer, ctx.id, shard.index, m.channel, id),
            )
        }
        MessageKind::Plain => None,
    };
    let Some(slot) = ctx.table.get(m.channel) else {
        return;
    };
    let msg = Received {
        origin: Origin::Peer(peer),
        channel: m.channel,
        payload: m.payload,
        request,
        deliver_by: m.deliver_by,
    };
    gathered.push(m.channel, &slot.tx, msg);
}

fn on_closed(shard: &Rc<Shard>, ctx: &Rc<ConnCtx>, reason: ConnError) {
    let cause = ctx.cause.borrow_mut().take();
    let down = match &cause {
        Some(CloseCause::Io(what)) => DownReason::Io(what.clone()),
        Some(CloseCause::Refused(r)) => DownReason::Local(r.clone()),
        None => DownReason::from_conn(reason.clone()),
    };
    let stats = &shard.registry.stats;
    match &down {
        DownReason::Io(_) => {
            stats.io_errors.fetch_add(1, Ordering::Relaxed);
        }
        DownReason::Protocol(e) if is_peer_fault(e) => {
            stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::info!(conn = ctx.id, addr = ?ctx.addr, reason = %e, "connection closed: protocol error");
        }
        _ => {}
    }
    if let DownReason::Protocol(e) = &down {
        match e.exceeded_budget() {
            Some(Exceeded::ControlFrames) => {
                stats.control_floods.fetch_add(1, Ordering::Relaxed);
            }
            Some(Exceeded::PeerPartialBytes | Exceeded::NodePartialBytes) => {
                stats
                    .partial_budget_exceeded
                    .fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
    }
    let entry = ctx.entry.borrow_mut().take();
    ctx.shared.set(ChannelSet::default());
    ctx.staging.borrow_mut().clear(entry.as_deref());
    for (_, reply) in ctx.requests.borrow_mut().drain() {
        let _ = reply.send(Err(SendError::PeerGone));
    }
    ctx.inbound.borrow_mut().clear();
    if let Some(reply) = ctx.dial_reply.borrow_mut().take() {
        let err = match cause {
            Some(CloseCause::Refused(r)) => DialError::Refused(r),
            Some(CloseCause::Io(what)) => DialError::Io(what),
            None => DialError::Handshake(reason),
        };
        let _ = reply.send(Err(err));
    }
    if let Some(entry) = entry {
        tracing::debug!(peer = %entry.node_id(), reason = %down, "peer down");
        shard.registry.peer_down(&entry, down);
    }
    ctx.wake_writer.notify_one();
    ctx.wake_reader.notify_one();
}

/// Whether a close reason is the peer breaking the protocol (as opposed to a clean close).
fn is_peer_fault(e: &ConnError) -> bool {
    !matches!(
        e,
        ConnError::PeerClosed(_) | ConnError::LocalClose(_) | ConnError::Config(_)
    )
}
