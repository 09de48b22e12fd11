//! A shard: one thread's set of connections.
//!
//! Each shard runs on its own thread and runtime ([`crate::rt`]) and owns its connections for
//! their whole life; nothing about a connection is touched from another thread. Other threads
//! reach a shard only through its bounded inbox of [`Command`]s: sends to a peer, fan-outs of
//! one refcounted buffer to many peers, requests and responses, dials, shutdown.
//!
//! A shard knows the node's [`Registry`] (it registers the peers it admits, delivers into the
//! channel table and counts in the node's counters) and the other shards' [`Inboxes`]; it
//! knows nothing of the router above it.
//!
//! Inbound TCP connections arrive on the shard's own `SO_REUSEPORT` listener; outbound ones on
//! the shard the sender picked. A connection's work is split over three local tasks (see
//! [`conn`]); the shard itself only dispatches commands and accepts.
//!
//! The shard's main task handles at most `commands_per_turn` inbox commands in a row (a
//! fan-out weighing one more per `FANOUT_PEERS_PER_COMMAND` connections it visits), then
//! yields to the runtime: the connections' tasks run and the driver reaps I/O completions
//! before more commands are taken. Without that, an application that keeps the inbox full
//! (an unpaced broadcast loop) would keep the main task busy forever and starve every socket
//! of the shard.
#![forbid(unsafe_code)]

mod channels;
mod conn;
mod deliver;
mod inbound;
mod inbox;
mod lowat;
mod pace;
mod staging;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use crate::proto::conn::{Connection, ConnectionConfig};
use crate::proto::native::SpareBuffers;
use crate::proto::secret::NodeId;
use crate::registry::{ConnId, DialError, Direction, Pending, Registry, SendError};
use crate::rt::net::{self, Listener, Stream};
use crate::rt::{thread, time};

/// A fan-out counts as one more command towards a turn's `commands_per_turn` per this many
/// connections it visits.
const FANOUT_PEERS_PER_COMMAND: usize = 64;

/// How much of a turn's `commands_per_turn` a command uses, given the connections its fan-out
/// visits (0 for any other command; see [`Shard::fanout_visits`]).
fn command_weight(fanout_visits: usize) -> usize {
    1 + fanout_visits / FANOUT_PEERS_PER_COMMAND
}

use conn::ConnCtx;
use inbox::DialReply;
pub(crate) use inbox::{Command, DialTarget, Inboxes};
use pace::Pace;
use staging::Staged;

/// Settings every shard of a node shares.
#[derive(Clone, Debug)]
pub(crate) struct ShardConfig {
    /// The connection settings; `channels` and `expected_peer` are filled per connection.
    pub(crate) template: ConnectionConfig,
    /// Bytes a connection reads per read.
    pub(crate) read_buffer: usize,
    /// Read into buffers the runtime lends per read (provided-buffer ring) instead of one
    /// buffer per connection.
    pub(crate) lent_buffers: bool,
    /// Receive with one multishot receive per connection into the provided-buffer ring
    /// (io_uring with lent buffers, on a kernel that supports it).
    pub(crate) multishot_recv: bool,
    /// Writes of at least this many bytes use zero-copy sends (io_uring only; `None`: never).
    pub(crate) send_zc_threshold: Option<usize>,
    /// Bytes a connection writes per write (records are coalesced up to this).
    pub(crate) write_batch: usize,
    /// Most connections on one shard; further inbound ones are closed at once.
    pub(crate) max_connections: usize,
    /// Pause of the accept loop after a failed accept (out of descriptors or memory).
    pub(crate) accept_backoff: Duration,
    /// Accepts per second of the accept loop (0: no limit).
    pub(crate) accepts_per_second: u32,
    /// How long a closing connection may take to flush its last bytes.
    pub(crate) close_grace: Duration,
    /// Inbox commands handled in a row before the shard yields to I/O (at least 1).
    pub(crate) commands_per_turn: usize,
    /// `TCP_NOTSENT_LOWAT` for TCP connections (`None`: the kernel's default).
    pub(crate) notsent_lowat: Option<u32>,
    /// `SO_RCVBUF` for TCP connections (`None`: the kernel's autotuning).
    pub(crate) recv_buffer: Option<usize>,
    /// Bytes per second written to one connection (0: unlimited).
    pub(crate) send_rate: u64,
    /// Bytes per second read from one connection (0: unlimited).
    pub(crate) recv_rate: u64,
    /// How long a partial batch of stock (compat) packets waits before it is written.
    pub(crate) flush_throttle: Option<Duration>,
}

/// A shard keeps at most this many write batches' worth of spare write buffers...
const SPARE_WRITE_BATCHES: usize = 32;
/// ...in at most this many buffers.
const SPARE_WRITE_BUFFERS: usize = 64;

/// One shard's state (lives on the shard thread).
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) registry: Arc<Registry>,
    /// Every shard's inbox (to close a connection another shard owns).
    pub(crate) inboxes: Arc<Inboxes>,
    pub(crate) config: Arc<ShardConfig>,
    conns: RefCell<HashMap<ConnId, Rc<ConnCtx>>>,
    /// Write buffers idle writers gave up, for the next writer's burst (`conn.rs`,
    /// `write_loop`).
    pub(crate) spare_writes: Arc<SpareBuffers>,
    closing: Cell<bool>,
    drained: Notify,
}

impl Shard {
    /// The shard's main task: accept (if listening) and dispatch commands until shutdown.
    pub(crate) async fn run(
        index: usize,
        registry: Arc<Registry>,
        inboxes: Arc<Inboxes>,
        config: Arc<ShardConfig>,
        mut inbox: mpsc::Receiver<Command>,
        listener: Option<std::net::TcpListener>,
    ) {
        // The node asked for lent buffers, but this thread's kernel refused the ring (already
        // warned about when the runtime started): its connections read into their own.
        let config = if config.lent_buffers && !thread::read_pool_ready() {
            Arc::new(ShardConfig {
                lent_buffers: false,
                multishot_recv: false,
                ..(*config).clone()
            })
        } else {
            config
        };
        let spare_writes = SpareBuffers::with_count(
            config.write_batch.saturating_mul(SPARE_WRITE_BATCHES),
            SPARE_WRITE_BUFFERS,
        );
        let shard = Rc::new(Shard {
            index,
            registry,
            inboxes,
            config,
            conns: RefCell::new(HashMap::new()),
            spare_writes,
            closing: Cell::new(false),
            drained: Notify::new(),
        });
        let acceptor = match listener.map(Listener::from_std) {
            Some(Ok(l)) => Some(thread::spawn(accept_loop(shard.clone(), l))),
            Some(Err(e)) => {
                tracing::error!(shard = index, error = %e, "cannot register the listener");
                None
            }
            None => None,
        };
        let per_turn = shard.config.commands_per_turn.max(1);
        let mut done = None;
        let mut deadline = Instant::now();
        'turns: while let Some(first) = inbox.recv().await {
            let mut next = Some(first);
            let mut handled = 0;
            // One clock read per turn: the commands of a turn are handled within microseconds.
            let mut now = Instant::now();
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Shutdown {
                        deadline: d,
                        done: reply,
                    } => {
                        deadline = d;
                        done = Some(reply);
                        break 'turns;
                    }
                    other => {
                        // A fan-out weighs one command per `FANOUT_PEERS_PER_COMMAND` peers it
                        // visits: a turn of broadcasts to a thousand peers would otherwise keep
                        // the connections' I/O waiting for milliseconds.
                        handled += command_weight(shard.fanout_visits(&other));
                        shard.handle(other, now);
                    }
                }
                if handled < per_turn {
                    next = inbox.try_recv().ok();
                } else {
                    // The inbox may still hold commands: let the connections and the driver
                    // run before taking more.
                    yield_now().await;
                    now = Instant::now();
                }
            }
        }
        if let Some(a) = acceptor {
            a.abort();
        }
        shard.close_all(deadline).await;
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// How many connections `cmd` visits if it is a fan-out (0 otherwise).
    fn fanout_visits(&self, cmd: &Command) -> usize {
        match cmd {
            Command::Fanout {
                targets: Some(ids), ..
            } => ids.len(),
            Command::Fanout { targets: None, .. } => self.conns.borrow().len(),
            _ => 0,
        }
    }

    fn handle(self: &Rc<Self>, cmd: Command, now: Instant) {
        match cmd {
            Command::Send {
                conn,
                channel,
                payload,
                deliver_by,
            } => {
                // A missing connection means the peer is gone; its credits went with it.
                if let Some(ctx) = self.conn(conn) {
                    ctx.stage(
                        channel,
                        Staged::Send {
                            payload,
                            credit: true,
                            deliver_by,
                        },
                        now,
                    );
                }
            }
            Command::SendMany {
                conn,
                channel,
                payloads,
            } => {
                // As `Send`: a missing connection took its credits with it.
                if let Some(ctx) = self.conn(conn) {
                    let items = payloads.into_iter().map(|payload| Staged::Send {
                        payload,
                        credit: true,
                        deliver_by: None,
                    });
                    ctx.stage_many(channel, items, now);
                }
            }
            Command::Fanout {
                targets,
                channel,
                payload,
                deliver_by,
            } => {
                // A peer far behind skips the copy (counted once per broadcast below: the
                // counter is shared with every thread that reads the node's stats, and a hub
                // whose peers lag skips most copies); only the others are collected.
                let mut skipped = 0u64;
                let mut takes = |ctx: &Rc<ConnCtx>| {
                    if !ctx.shares(channel) {
                        return false;
                    }
                    if ctx.staged(channel) >= ctx.capacity(channel).saturating_mul(2) {
                        skipped += 1;
                        return false;
                    }
                    true
                };
                let conns: Vec<Rc<ConnCtx>> = match targets {
                    Some(ids) => ids
                        .iter()
                        .filter_map(|id| self.conn(*id))
                        .filter(|c| takes(c))
                        .collect(),
                    None => self
                        .conns
                        .borrow()
                        .values()
                        .filter(|c| takes(c))
                        .cloned()
                        .collect(),
                };
                for ctx in conns {
                    ctx.stage(
                        channel,
                        Staged::Send {
                            payload: payload.clone(),
                            credit: false,
                            deliver_by,
                        },
                        now,
                    );
                }
                if skipped > 0 {
                    self.registry
                        .stats
                        .fanout_dropped
                        .fetch_add(skipped, Ordering::Relaxed);
                }
            }
            Command::Request {
                conn,
                channel,
                payload,
                deadline,
                reply,
            } => match self.conn(conn) {
                Some(ctx) => ctx.stage(
                    channel,
                    Staged::Request {
                        payload,
                        deadline,
                        reply,
                    },
                    now,
                ),
                None => {
                    let _ = reply.send(Err(SendError::PeerGone));
                }
            },
            Command::Cancel { conn } => {
                if let Some(ctx) = self.conn(conn) {
                    ctx.withdraw_abandoned();
                }
            }
            Command::Respond { request, payload } => {
                // A request of a connection that is gone has nothing left to free.
                if let Some(ctx) = self.conn(request.0.conn) {
                    ctx.respond(request, payload);
                }
            }
            Command::Dial {
                target,
                expected,
                deadline,
                reply,
                pending,
            } => {
                if self.closing.get() {
                    let _ = reply.send(Err(DialError::Stopped));
                    return;
                }
                let shard = self.clone();
                thread::spawn(async move {
                    shard.dial(target, expected, deadline, reply, pending).await;
                });
            }
            Command::Adopt { end } => {
                if !self.closing.get() {
                    self.start(
                        Stream::memory(end),
                        Direction::Inbound,
                        None,
                        None,
                        None,
                        None,
                    );
                }
            }
            Command::Disconnect { conn, reason } => {
                if let Some(ctx) = self.conn(conn) {
                    ctx.close(&reason);
                }
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn conn(&self, id: ConnId) -> Option<Rc<ConnCtx>> {
        self.conns.borrow().get(&id).cloned()
    }

    /// Removes a finished connection.
    fn forget(&self, id: ConnId) {
        let empty = {
            let mut conns = self.conns.borrow_mut();
            conns.remove(&id);
            conns.is_empty()
        };
        if empty {
            self.drained.notify_one();
        }
    }

    async fn dial(
        self: Rc<Self>,
        target: DialTarget,
        expected: Option<NodeId>,
        deadline: Instant,
        mut reply: DialReply,
        pending: Option<Pending>,
    ) {
        let (stream, addr) = match target {
            DialTarget::Memory(end) => (Stream::memory(end), None),
            DialTarget::Tcp(addr) => {
                // A dialer that gives up (its future dropped, its cancel token fired) closes
                // the reply: the connect is dropped with it, and `pending` frees its place.
                let connected = {
                    let connect = std::pin::pin!(net::connect(addr, deadline));
                    let gave_up = std::pin::pin!(reply.closed());
                    match futures_util::future::select(connect, gave_up).await {
                        futures_util::future::Either::Left((r, _)) => r,
                        futures_util::future::Either::Right(_) => return,
                    }
                };
                match connected {
                    Ok(s) => (s, Some(addr)),
                    Err(e) => {
                        let _ = reply.send(Err(DialError::Connect(e.to_string())));
                        return;
                    }
                }
            }
        };
        if self.closing.get() {
            let _ = reply.send(Err(DialError::Stopped));
            return;
        }
        self.start(
            stream,
            Direction::Outbound,
            addr,
            expected,
            Some(reply),
            pending,
        );
    }

    /// Starts a connection on this shard.
    fn start(
        self: &Rc<Self>,
        stream: Stream,
        direction: Direction,
        addr: Option<SocketAddr>,
        expected: Option<NodeId>,
        reply: Option<DialReply>,
        pending: Option<Pending>,
    ) {
        if let Some(lowat) = self.config.notsent_lowat
            && let Err(e) = stream.set_notsent_lowat(lowat)
        {
            tracing::debug!(error = %e, "cannot set TCP_NOTSENT_LOWAT");
        }
        if let Some(size) = self.config.recv_buffer
            && let Err(e) = stream.set_recv_buffer(size)
        {
            tracing::debug!(error = %e, "cannot set SO_RCVBUF");
        }
        let table = self.registry.table();
        let mut config = self.config.template.clone();
        config.channels = table.descriptors();
        config.expected_peer = expected;
        let conn = match new_connection(config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a connection");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(DialError::Io(e.to_string())));
                }
                return;
            }
        };
        let id = self.registry.next_conn_id();
        let ctx = Rc::new(ConnCtx::new(
            id,
            conn,
            stream,
            table,
            direction,
            addr,
            reply,
            pending,
            &self.config,
            self.registry.clone(),
        ));
        self.conns.borrow_mut().insert(id, ctx.clone());
        thread::spawn(conn::run(self.clone(), ctx));
    }

    /// Closes every connection and waits (until `deadline`) for them to finish.
    async fn close_all(&self, deadline: Instant) {
        self.closing.set(true);
        let conns: Vec<Rc<ConnCtx>> = self.conns.borrow().values().cloned().collect();
        for ctx in conns {
            ctx.close("node shutting down");
        }
        while !self.conns.borrow().is_empty() {
            if time::timeout_at(deadline, self.drained.notified())
                .await
                .is_none()
            {
                tracing::warn!(
                    shard = self.index,
                    left = self.conns.borrow().len(),
                    "shutdown deadline passed with connections still closing"
                );
                break;
            }
        }
    }
}

/// Returns to the runtime once, asking to be polled again right away.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

fn new_connection(config: ConnectionConfig) -> io::Result<Connection> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
    Connection::new(config, secret, Instant::now()).map_err(|e| io::Error::other(e.to_string()))
}

async fn accept_loop(shard: Rc<Shard>, listener: Listener) {
    // One accept is one token: a flood waits in the kernel's listen queue, not in this loop.
    let rate = shard.config.accepts_per_second;
    let mut pace = Pace::new(u64::from(rate), rate as usize, Instant::now());
    loop {
        if let Some(p) = pace.as_mut() {
            let wait = p.take(1, Instant::now());
            if !wait.is_zero() {
                time::sleep_until(Instant::now() + wait).await;
            }
        }
        match listener.accept().await {
            Ok((stream, addr)) => {
                let stats = &shard.registry.stats;
                if shard.closing.get() || shard.conns.borrow().len() >= shard.config.max_connections
                {
                    stats.accept_refused.fetch_add(1, Ordering::Relaxed);
                    stream.refuse();
                    continue;
                }
                // The gate's caps (per address, handshakes in progress) apply before the
                // connection allocates anything; a refused socket is closed by the drop.
                let pending = match shard.registry.gate().on_accept(addr) {
                    Ok(p) => p,
                    Err(reason) => {
                        tracing::debug!(%addr, %reason, "inbound refused at accept");
                        stats.accept_refused.fetch_add(1, Ordering::Relaxed);
                        stream.refuse();
                        continue;
                    }
                };
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                shard.start(
                    stream.admit(),
                    Direction::Inbound,
                    Some(addr),
                    None,
                    None,
                    pending,
                );
            }
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                shard
                    .registry
                    .stats
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(shard = shard.index, error = %e, "accept failed");
                time::sleep_until(Instant::now() + shard.config.accept_backoff).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_to_many_peers_weighs_more_in_a_turn() {
        assert_eq!(command_weight(0), 1);
        assert_eq!(command_weight(FANOUT_PEERS_PER_COMMAND - 1), 1);
        assert_eq!(command_weight(FANOUT_PEERS_PER_COMMAND), 2);
        // The default turn of 64 holds four broadcasts to a thousand peers.
        assert_eq!(64 / command_weight(1000), 4);
    }
}
