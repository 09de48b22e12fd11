//! [`Limits`]: the bounds on a node's queues, buffers and connection counts.

use std::time::Duration;

/// Default of [`Limits::shard_read_buffers`].
const DEFAULT_SHARD_READ_BUFFERS: u16 = 256;

/// Shortest [`Limits::accept_backoff`]: a shorter one is raised to this.
pub(super) const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(1);

/// Most buffers in a provided-buffer ring (the kernel's limit on its entries).
pub(super) const MAX_SHARD_READ_BUFFERS: u16 = 1 << 15;

/// Bounds on queues, buffers and connection counts. Every queue in the node is bounded by one
/// of these (or by a channel's descriptor).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Commands waiting in one shard's inbox.
    pub inbox_capacity: usize,
    /// Messages waiting in one channel's receive queue for the application.
    pub recv_queue_capacity: usize,
    /// Send queue capacity of the channels opened without one (a
    /// [`ChannelDescriptor`](crate::proto::conn::ChannelDescriptor) whose `send_queue_capacity`
    /// is 0): messages that may wait to be sent to one peer on one channel.
    pub channel_send_queue_capacity: usize,
    /// Largest message any channel carries, after decompression (`[limits] max_message_size`):
    /// a channel registered with a larger receive cap gets this one. Default: no lower bound
    /// than the channel's own (`usize::MAX`).
    pub max_message_size: usize,
    /// Payload bytes waiting to be sent to one peer, all its channels together; over it, sends
    /// to that peer fail as if the channel's queue were full (`Full`, or `Timeout` after
    /// waiting). A message larger than this still goes when nothing else waits for the peer.
    pub max_peer_send_bytes: usize,
    /// Peer events a subscriber may fall behind before it loses the oldest.
    pub peer_event_capacity: usize,
    /// Most connections per shard (inbound beyond it are closed at once).
    pub max_connections_per_shard: usize,
    /// Bytes read per read call, per connection.
    pub read_buffer: usize,
    /// Buffers (of `read_buffer` bytes) each shard lends to reads; 0 gives every connection
    /// its own read buffer instead. The pool is an io_uring provided-buffer ring: the kernel
    /// picks a buffer when data arrives, so idle connections hold none. Ignored on epoll.
    /// Rounded up to a power of two, at most 32768.
    ///
    /// The default, 256 (8 MiB of address space per shard with the default `read_buffer`,
    /// touched only as data arrives), makes lent buffers and multishot receive the io_uring
    /// default: a shard holds one fixed pool instead of a buffer per connection. In the
    /// loopback measurements of `tests/node_throughput.rs` 256 buffers ran within the noise of
    /// per-connection buffers (one connection, 256 B and 64 KiB messages), and a two-shard hub
    /// with 1000 idle peers used 20.9 MB of RSS instead of 23.0 MB (`rss_per_idle_peer`; the
    /// rings' share is about 1 MB per shard, paid at start). If a shard's
    /// kernel refuses the ring (a low `RLIMIT_MEMLOCK`, an older kernel, any error), that
    /// shard logs one warning and its connections read into buffers of their own; the node
    /// still starts.
    pub shard_read_buffers: u16,
    /// With lent buffers (`shard_read_buffers` > 0) on io_uring: keep one multishot receive
    /// armed per connection instead of submitting a receive per read. Used only when the
    /// kernel supports it natively (Linux 6.0+); otherwise reads stay single-shot.
    pub multishot_recv: bool,
    /// On io_uring, writes of at least this many bytes go out as zero-copy sends (`SEND_ZC`);
    /// 0 turns them off. The default, 64 KiB, is where zero-copy sends overtook plain ones in
    /// the loopback measurement `rt::net::tests::send_zc_threshold` (below it they were up to
    /// twice as slow). Connections to a peer on this host (loopback, or our own address)
    /// always write plain copies: the kernel copies a zero-copy send's pages there anyway.
    pub send_zc_threshold: usize,
    /// Bytes coalesced into one write, per connection. A connection that goes idle gives up a
    /// write buffer over 16 KiB; each shard keeps such buffers for the next writer, at most
    /// 32 × `write_batch` bytes of them (8 MiB with the default) in at most 64 buffers.
    pub write_batch: usize,
    /// TCP connect timeout for dials.
    pub dial_timeout: Duration,
    /// How long a closing connection may take to flush its last bytes.
    pub close_grace: Duration,
    /// Listen backlog.
    pub backlog: i32,
    /// Buffer of each direction of an in-memory connection.
    pub memory_pipe_capacity: usize,
    /// Inbox commands a shard handles in a row before it yields to I/O completions and its
    /// connections' tasks (0 counts as 1). Bounds how long a full inbox (an unpaced broadcast
    /// loop) can keep a shard from reading and writing its sockets. A broadcast counts as one
    /// command plus one per 64 connections it visits, so a turn of broadcasts to a thousand
    /// peers ends after four of them instead of 64.
    pub commands_per_turn: usize,
    /// `TCP_NOTSENT_LOWAT` of every TCP connection, in bytes; 0 leaves the kernel's default
    /// (no limit). The kernel then holds at most about this many unsent bytes per socket, so
    /// a high-priority message waits behind that much lower-priority data at most instead of
    /// a whole socket buffer. A connection sending faster than this many bytes per 32 µs
    /// gets 32 µs of its measured rate instead (at most 256 KiB), so the wait stays bounded
    /// in time and a fast link is not throttled by wake-ups; see docs/PERFORMANCE.md,
    /// "Unsent bytes bounded in time".
    pub tcp_notsent_lowat: u32,
    /// How long a shard's listener pauses after a failed accept (out of file descriptors or
    /// memory) before it accepts again, instead of spinning on the error; each failure counts
    /// in `NodeStats::accept_errors`. At least 1 ms. Default 100 ms.
    pub accept_backoff: Duration,
    /// Connections each shard's listener accepts per second, refused ones included, in bursts
    /// of one second's worth; beyond it connections wait in the kernel's listen queue, so a
    /// connection flood costs the node at most this much accept work. 0: no limit. Default
    /// 500.
    pub max_accepts_per_second: u32,
    /// `SO_RCVBUF` of every TCP connection, in bytes; 0 keeps the kernel's autotuning. This
    /// bounds how much the peer can have in flight towards this node, which is what a
    /// high-priority message from the peer waits behind once low-priority data fills the
    /// connection; see docs/PERFORMANCE.md.
    pub tcp_recv_buffer: usize,
    /// Bytes per second written to one peer (`[p2p] send_rate`); 0: unlimited. Each write
    /// batch goes whole and the next waits until the average is back at the rate; after an
    /// idle moment a tenth of a second of the rate goes at once, as stock's rate samples allow.
    pub send_rate: u64,
    /// Bytes per second read from one peer (`[p2p] recv_rate`); 0: unlimited. A paced
    /// connection leaves the rest in the kernel (the peer feels TCP backpressure) and reads
    /// single-shot.
    pub recv_rate: u64,
    /// How long a partial batch of stock (compat) packets waits for more before it is
    /// written, as stock's MConnection flush throttle (`[p2p] flush_throttle_timeout`); zero
    /// writes at once. Native connections always write at once.
    pub flush_throttle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            inbox_capacity: 4096,
            recv_queue_capacity: 1024,
            channel_send_queue_capacity: 64,
            max_message_size: usize::MAX,
            max_peer_send_bytes: 16 << 20,
            peer_event_capacity: 1024,
            max_connections_per_shard: 4096,
            read_buffer: 32 * 1024,
            shard_read_buffers: DEFAULT_SHARD_READ_BUFFERS,
            multishot_recv: true,
            send_zc_threshold: 64 * 1024,
            write_batch: 256 * 1024,
            dial_timeout: Duration::from_secs(3),
            close_grace: Duration::from_secs(1),
            backlog: 1024,
            memory_pipe_capacity: 256 * 1024,
            commands_per_turn: 64,
            tcp_notsent_lowat: 16 * 1024,
            tcp_recv_buffer: 0,
            send_rate: 0,
            recv_rate: 0,
            flush_throttle: Duration::ZERO,
            accept_backoff: Duration::from_millis(100),
            max_accepts_per_second: 500,
        }
    }
}
