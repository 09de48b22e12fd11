//! MConnection: stock CometBFT's multiplexed connection, as a sans-IO state machine over the
//! plaintext stream inside a SecretConnection.
//!
//! This module does not encrypt, read sockets or look at a clock: the caller decrypts
//! SecretConnection frames and passes the plaintext to [`MConnection::handle_plaintext`], and
//! seals what [`MConnection::poll_transmit`] writes. Rate limiting (stock's `send_rate` /
//! `recv_rate`) and flush throttling belong to the driver.
//!
//! What it does, byte-compatible with stock `p2p/conn/connection.go`:
//! - [`packet`]: ping/pong/msg packets, each a uvarint-delimited `Packet` proto.
//! - [`channel`]: per-channel bounded send queues, chunking into payloads of at most
//!   `max_packet_msg_payload_size` bytes, and reassembly bounded by `recv_message_capacity`.
//! - [`scheduler`]: the next chunk comes from the channel with the lowest
//!   `recently_sent / priority`.
//! - Keepalive: a ping every `ping_interval`; no pong within `pong_timeout` of the time a ping
//!   fell due (written yet or not: a peer that stopped reading holds our writes) ends the
//!   connection. A received ping is answered with one pong (several pending pings are answered
//!   once, as in stock).
//! - Budgets (`proto::budget`): a peer sending more than `max_control_packets_per_second` ping
//!   and pong packets is disconnected ([`MConnError::ControlFlood`]); reassembly buffers grow
//!   only within `partial_budget` ([`MConnError::PartialBudget`]).
//!
//! Backpressure: completed messages wait in a bounded queue until
//! [`MConnection::poll_message`] takes them. While it is full, [`MConnection::wants_input`] is
//! false and the driver must stop reading; nothing is ever dropped.
//!
//! A driver loop, one turn:
//! 1. if [`MConnection::wants_input`], read and decrypt, then [`MConnection::handle_plaintext`];
//! 2. drain [`MConnection::poll_message`] to the application;
//! 3. on reaching [`MConnection::poll_timeout`], call [`MConnection::handle_timeout`];
//! 4. while [`MConnection::has_pending_send`], [`MConnection::poll_transmit`], seal and write.
//!
//! Any error is final: the connection is closed and every later call fails or does nothing.

pub mod channel;
pub mod packet;
pub mod scheduler;
pub(crate) mod varint;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use channel::{ChannelConfig, stock_channels};
pub use packet::{Packet, PacketDecoder, PacketError, PacketRef};

use super::budget::{
    ControlRate, DEFAULT_MAX_CONTROL_FRAMES_PER_SECOND, PartialBudget, PartialBudgetError,
    PartialBytes,
};
use super::by_channel::ByChannel;
use channel::{Channel, RecvError};
use packet::{PING_ENCODED, PONG_ENCODED, encode_msg, max_packet_size, packet_body_len};
use scheduler::Scheduler;

/// The largest `max_packet_msg_payload_size` accepted. Stock peers need 1024 or less.
pub const MAX_PAYLOAD_SIZE_LIMIT: usize = 1 << 20;

/// Connection-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MConnConfig {
    /// Send a ping this often (stock: 60 s).
    pub ping_interval: Duration,
    /// Fail when no pong arrives this long after a ping (stock: 45 s); must be below
    /// `ping_interval`.
    pub pong_timeout: Duration,
    /// Payload bytes per `PacketMsg` (stock: 1024). Also sets the largest packet accepted from
    /// the peer, computed as stock does. Must be at most 1024 when talking to stock peers with
    /// default settings.
    pub max_packet_msg_payload_size: usize,
    /// Completed messages that may wait for [`MConnection::poll_message`].
    pub recv_queue_capacity: usize,
    /// Bytes of completed messages that may wait for [`MConnection::poll_message`]. Reading
    /// stops once this is reached; a single message may exceed it.
    pub recv_queue_max_bytes: usize,
    /// Ping and pong packets the peer may send per second (a token bucket of one second's
    /// worth); one more fails the connection with [`MConnError::ControlFlood`]. At least 1.
    pub max_control_packets_per_second: u32,
    /// Bytes of partly received messages this connection may hold, and the node-wide pool it
    /// reserves them from; over either, [`MConnError::PartialBudget`].
    pub partial_budget: PartialBudget,
}

impl Default for MConnConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(45),
            max_packet_msg_payload_size: packet::STOCK_MAX_PACKET_MSG_PAYLOAD_SIZE,
            recv_queue_capacity: 64,
            recv_queue_max_bytes: 32 << 20,
            max_control_packets_per_second: DEFAULT_MAX_CONTROL_FRAMES_PER_SECOND,
            partial_budget: PartialBudget::default(),
        }
    }
}

/// A configuration the connection cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `pong_timeout` is not below `ping_interval` (stock panics on this).
    #[error("pong timeout must be less than the ping interval")]
    PongTimeoutNotBelowPingInterval,
    /// `max_packet_msg_payload_size` is zero or above [`MAX_PAYLOAD_SIZE_LIMIT`].
    #[error("max packet payload size must be 1..={MAX_PAYLOAD_SIZE_LIMIT}, got {0}")]
    PayloadSize(usize),
    /// `recv_queue_capacity` or `recv_queue_max_bytes` is zero.
    #[error("receive queue capacity must be at least 1")]
    RecvQueueCapacity,
    /// `max_control_packets_per_second` is zero.
    #[error("control packets per second must be at least 1")]
    ZeroControlRate,
    /// A channel's priority is zero.
    #[error("channel {0:#04x}: priority must be at least 1")]
    ZeroPriority(u8),
    /// A channel's send queue capacity is zero.
    #[error("channel {0:#04x}: send queue capacity must be at least 1")]
    ZeroSendQueue(u8),
    /// A channel id appears twice.
    #[error("channel {0:#04x} is configured twice")]
    DuplicateChannel(u8),
}

/// Why a message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MConnQueueError {
    /// The channel's send queue is full; try again after [`MConnection::poll_transmit`].
    #[error("send queue of channel {0:#04x} is full")]
    Full(u8),
    /// The channel is not configured on this connection.
    #[error("unknown channel {0:#04x}")]
    UnknownChannel(u8),
    /// The connection has failed or was closed.
    #[error("connection is closed")]
    Closed,
}

/// Why the connection ended. Each peer-caused variant is one for which stock disconnects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MConnError {
    /// A malformed, oversize or kind-less packet.
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// A message chunk on a channel this connection does not run (stock's text: the id in
    /// upper-case hex without a prefix).
    #[error("unknown channel {0:X}")]
    UnknownChannel(u8),
    /// A message grew beyond its channel's receive capacity.
    #[error("received message exceeds available capacity: {capacity} < {received}")]
    MessageOverCapacity {
        /// The channel.
        channel: u8,
        /// Its `recv_message_capacity`.
        capacity: usize,
        /// The size the message reached.
        received: usize,
    },
    /// No pong arrived within `pong_timeout` of our ping.
    #[error("pong timeout")]
    PongTimeout,
    /// The peer sent more ping and pong packets than `max_control_packets_per_second` allows.
    #[error("control packet flood: more than {limit} ping/pong packets per second")]
    ControlFlood {
        /// The packets allowed per second.
        limit: u32,
    },
    /// A reassembly buffer could not grow within the partial-message budget.
    #[error("{0}")]
    PartialBudget(#[from] PartialBudgetError),
    /// The driver passed input while [`MConnection::wants_input`] was false.
    #[error("input passed while the receive queue is full")]
    InputWhileBackpressured,
    /// The connection had already failed or was closed.
    #[error("connection is closed")]
    Closed,
}

/// One stock-compatible multiplexed connection. See the module docs for the driver loop.
#[derive(Debug)]
pub struct MConnection {
    config: MConnConfig,
    channels: Vec<Channel>,
    /// Channel id → index into `channels`.
    index: ByChannel<Option<u8>>,
    decoder: PacketDecoder,
    scheduler: Scheduler,
    recv_queue: VecDeque<(u8, Bytes)>,
    recv_queue_bytes: usize,
    /// A pong is owed to the peer.
    pong_due: bool,
    /// A ping should be written.
    ping_due: bool,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
    /// When the ping now awaiting its pong was written.
    ping_written: Option<Instant>,
    /// The round-trip time of the latest answered ping.
    rtt: Option<Duration>,
    closed: bool,
    /// The peer's ping and pong budget.
    control: ControlRate,
    /// Bytes held in the channels' reassembly buffers.
    partial: PartialBytes,
}

impl MConnection {
    /// A connection running `channels` (at most 256, ids unique), started at `now`.
    pub fn new(
        config: MConnConfig,
        channels: &[ChannelConfig],
        now: Instant,
    ) -> Result<Self, ConfigError> {
        if config.pong_timeout >= config.ping_interval {
            return Err(ConfigError::PongTimeoutNotBelowPingInterval);
        }
        let payload = config.max_packet_msg_payload_size;
        if payload == 0 || payload > MAX_PAYLOAD_SIZE_LIMIT {
            return Err(ConfigError::PayloadSize(payload));
        }
        if config.recv_queue_capacity == 0 || config.recv_queue_max_bytes == 0 {
            return Err(ConfigError::RecvQueueCapacity);
        }
        if config.max_control_packets_per_second == 0 {
            return Err(ConfigError::ZeroControlRate);
        }
        let max_packet = max_packet_size(payload);
        let mut index = ByChannel::new(None);
        let mut chans = Vec::with_capacity(channels.len());
        for (i, c) in channels.iter().enumerate() {
            if c.priority == 0 {
                return Err(ConfigError::ZeroPriority(c.id));
            }
            if c.send_queue_capacity == 0 {
                return Err(ConfigError::ZeroSendQueue(c.id));
            }
            let slot = &mut index[c.id];
            if slot.is_some() {
                return Err(ConfigError::DuplicateChannel(c.id));
            }
            // At most 256 distinct ids, so the index fits a u8.
            *slot = u8::try_from(i).ok();
            chans.push(Channel::new(*c, chunk_size(c.id, payload, max_packet)));
        }
        Ok(Self {
            decoder: PacketDecoder::new(max_packet),
            scheduler: Scheduler::new(now),
            recv_queue: VecDeque::with_capacity(config.recv_queue_capacity.min(1024)),
            recv_queue_bytes: 0,
            pong_due: false,
            ping_due: false,
            next_ping: now.checked_add(config.ping_interval).unwrap_or(now),
            pong_deadline: None,
            ping_written: None,
            rtt: None,
            closed: false,
            control: ControlRate::new(config.max_control_packets_per_second, now),
            partial: PartialBytes::new(config.partial_budget.clone()),
            channels: chans,
            index,
            config,
        })
    }

    /// The settings this connection runs with.
    pub fn config(&self) -> &MConnConfig {
        &self.config
    }

    /// True once the connection failed or [`MConnection::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Stops the connection: later sends fail and nothing more is produced.
    pub fn close(&mut self) {
        self.closed = true;
    }

    fn channel_mut(&mut self, id: u8) -> Option<&mut Channel> {
        let i = self.index[id]?;
        self.channels.get_mut(usize::from(i))
    }

    /// Queues `msg` on `channel`. Never blocks: a full queue is [`MConnQueueError::Full`].
    pub fn send(&mut self, channel: u8, msg: Bytes) -> Result<(), MConnQueueError> {
        if self.closed {
            return Err(MConnQueueError::Closed);
        }
        let ch = self
            .channel_mut(channel)
            .ok_or(MConnQueueError::UnknownChannel(channel))?;
        ch.push(msg).map_err(|_| MConnQueueError::Full(channel))
    }

    /// True when [`MConnection::send`] on `channel` would be accepted now.
    pub fn can_send(&self, channel: u8) -> bool {
        !self.closed
            && self.index[channel]
                .and_then(|i| self.channels.get(usize::from(i)))
                .is_some_and(Channel::can_send)
    }

    /// True while there is anything to write: a pong, a ping or message chunks.
    pub fn has_pending_send(&self) -> bool {
        !self.closed
            && (self.pong_due || self.ping_due || self.channels.iter().any(Channel::has_pending))
    }

    /// False while the received-message queue is full: the driver must stop reading until
    /// [`MConnection::poll_message`] makes room.
    pub fn wants_input(&self) -> bool {
        !self.closed
            && self.recv_queue.len() < self.config.recv_queue_capacity
            && self.recv_queue_bytes < self.config.recv_queue_max_bytes
    }

    /// Takes the next completed message and its channel.
    pub fn poll_message(&mut self) -> Option<(u8, Bytes)> {
        let m = self.recv_queue.pop_front()?;
        self.recv_queue_bytes = self.recv_queue_bytes.saturating_sub(m.1.len());
        Some(m)
    }

    /// Consumes decrypted plaintext from the peer, in any slicing.
    ///
    /// A ping schedules a pong; a pong clears the pong deadline; message chunks are reassembled
    /// and completed messages queued for [`MConnection::poll_message`]. Call only while
    /// [`MConnection::wants_input`]; the queue may then exceed its bound by the messages that
    /// this one input completes. `now` refills the peer's ping and pong budget.
    pub fn handle_plaintext(&mut self, now: Instant, data: &[u8]) -> Result<(), MConnError> {
        if self.closed {
            return Err(MConnError::Closed);
        }
        if !self.wants_input() {
            self.closed = true;
            return Err(MConnError::InputWhileBackpressured);
        }
        let r = self.consume(now, data);
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    fn consume(&mut self, now: Instant, data: &[u8]) -> Result<(), MConnError> {
        let mut rest = data;
        while !rest.is_empty() {
            let (packet, used) = self.decoder.decode(rest)?;
            rest = rest.get(used..).unwrap_or(&[]);
            if matches!(packet, Some(PacketRef::Ping | PacketRef::Pong))
                && !self.control.charge(now)
            {
                return Err(MConnError::ControlFlood {
                    limit: self.control.per_second(),
                });
            }
            match packet {
                None => {}
                Some(PacketRef::Ping) => self.pong_due = true,
                Some(PacketRef::Pong) => {
                    self.pong_deadline = None;
                    if let Some(sent) = self.ping_written.take() {
                        self.rtt = Some(now.saturating_duration_since(sent));
                    }
                }
                Some(PacketRef::Msg {
                    channel_id,
                    eof,
                    data,
                }) => {
                    let ch = self.index[channel_id]
                        .and_then(|i| self.channels.get_mut(usize::from(i)))
                        .ok_or(MConnError::UnknownChannel(channel_id))?;
                    let done = ch.recv(data, eof, &mut self.partial).map_err(|e| match e {
                        RecvError::OverCapacity(e) => MConnError::MessageOverCapacity {
                            channel: channel_id,
                            capacity: e.capacity,
                            received: e.received,
                        },
                        RecvError::Budget(e) => MConnError::PartialBudget(e),
                    })?;
                    if let Some(msg) = done {
                        self.recv_queue_bytes = self.recv_queue_bytes.saturating_add(msg.len());
                        self.recv_queue.push_back((channel_id, msg));
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends packets to `out`: a pending pong, then a pending ping, then message chunks
    /// picked by the scheduler, one chunk per pick, until at least `max_bytes` were written
    /// (message packets stop at the first one that reaches the limit, so `out` grows by at most
    /// `max_bytes` plus one packet) or nothing is left. Returns the bytes appended.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>, max_bytes: usize) -> usize {
        if self.closed {
            return 0;
        }
        let start = out.len();
        if self.pong_due {
            out.extend_from_slice(&PONG_ENCODED);
            self.pong_due = false;
        }
        if self.ping_due {
            out.extend_from_slice(&PING_ENCODED);
            self.ping_due = false;
            self.ping_written = Some(now);
            // The deadline runs from when the ping was due (see `handle_timeout`).
            self.pong_deadline
                .get_or_insert_with(|| now.checked_add(self.config.pong_timeout).unwrap_or(now));
        }
        self.scheduler.advance(now, &mut self.channels);
        while out.len() - start < max_bytes {
            let Some(i) = Scheduler::select(&mut self.channels) else {
                break;
            };
            let Some(ch) = self.channels.get_mut(i) else {
                break;
            };
            let Some((chunk, eof)) = ch.next_chunk() else {
                break;
            };
            let n = encode_msg(ch.config.id, eof, &chunk, out);
            ch.recently_sent = ch.recently_sent.saturating_add(n as u64);
        }
        out.len() - start
    }

    /// When [`MConnection::handle_timeout`] should next be called, or `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        Some(match self.pong_deadline {
            Some(d) => d.min(self.next_ping),
            None => self.next_ping,
        })
    }

    /// The round-trip time of the latest answered ping: from when the ping was handed out by
    /// [`MConnection::poll_transmit`] to when its pong was read, so it includes the time the
    /// ping waited in socket buffers and the time the peer took to answer.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Fires due timers: fails with [`MConnError::PongTimeout`] when a ping went unanswered for
    /// `pong_timeout`, and schedules a ping every `ping_interval`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), MConnError> {
        if self.closed {
            return Err(MConnError::Closed);
        }
        if self.pong_deadline.is_some_and(|d| now >= d) {
            self.closed = true;
            return Err(MConnError::PongTimeout);
        }
        if now >= self.next_ping {
            self.ping_due = true;
            // The pong deadline starts when the ping is due, not when it is written: a peer
            // that stopped reading (a black hole, with our socket's send buffer full) never
            // lets the ping out, and must still be dropped `pong_timeout` later, as the
            // native multiplexer does (docs/RELIABILITY.md row 12). A deadline already
            // running for an earlier ping is kept.
            self.pong_deadline
                .get_or_insert_with(|| now.checked_add(self.config.pong_timeout).unwrap_or(now));
            // Like a ticker that drops missed ticks: the next ping is on the original grid.
            let interval = self.config.ping_interval.as_nanos();
            let late = now.duration_since(self.next_ping).as_nanos();
            let into = Duration::from_nanos((late % interval) as u64);
            self.next_ping = now
                .checked_add(self.config.ping_interval.saturating_sub(into))
                .unwrap_or(now);
        }
        Ok(())
    }

    /// Bytes held in partly received messages across all channels (what this connection has
    /// reserved from its partial-message budget).
    pub fn recv_buffered(&self) -> usize {
        self.channels.iter().map(Channel::recv_buffered).sum()
    }
}

/// The payload per chunk on `channel`: the configured size, less what a two-byte channel id
/// varint (ids 128 and up) would push past the receive limit stock computes for channel 1.
fn chunk_size(channel: u8, payload: usize, max_packet: usize) -> usize {
    let mut size = payload;
    while size > 1 && packet_body_len(channel, true, size) > max_packet {
        size -= 1;
    }
    size
}

#[cfg(test)]
mod tests;
