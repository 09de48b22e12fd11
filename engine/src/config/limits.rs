//! `[limits]`: every bound that protects a node from its peers, with a safe default.
//!
//! Each key answers a row of `docs/RELIABILITY.md` (bad input and faults): pending handshakes
//! (slowloris, accept floods), handshake rate per IP (CPU burn), per-IP connections, queue and
//! in-flight budgets (slow readers, floods), control-frame rate (ping and reset floods), message
//! and NodeInfo sizes, bytes of partly received messages per peer and per node (many large
//! messages left unfinished), zstd window (bombs), PEX rates and address-book size (address
//! floods), keepalive (dead peers) and redial backoff (partitions). Some keys are validated but
//! not yet applied by the engine; the status column of that table names them. Anchors:
//! go-libp2p's resource manager (8 connections per IPv4 address), CometBFT PEX (one request per
//! 10 s, 24 h ban), Bitcoin Core address relay (0.1 address/s, burst 1000).

use std::time::Duration;

use super::error::Problems;
use crate::proto::budget::{DEFAULT_MAX_PARTIAL_BYTES, DEFAULT_MAX_PARTIAL_BYTES_PER_PEER};
use crate::proto::mconn::stock_channels;
use crate::proto::native::frame::{MAX_DATA_CHUNK, MAX_WINDOW, MIN_WINDOW};
use crate::proto::nodeinfo::MAX_NODE_INFO_SIZE;

/// Largest message size a configuration may allow (the native multiplexer's u32 length).
pub const MAX_MESSAGE_SIZE_LIMIT: usize = u32::MAX as usize;
/// Smallest NodeInfo limit accepted: a stock NodeInfo with ten channels and a long moniker fits.
pub const MIN_NODE_INFO_SIZE: usize = 1024;
const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);
const MINUTE: Duration = Duration::from_secs(60);

/// The largest receive cap among the stock channels (block sync: a 100 MiB block plus framing).
fn largest_stock_channel_cap() -> usize {
    stock_channels()
        .iter()
        .map(|c| c.recv_message_capacity)
        .max()
        .unwrap_or(0)
}

section! {
    /// `[limits]`: bounds on what peers may cost this node.
    pub struct LimitsConfig in "limits" {
        /// Connections in the handshake (accepted or dialed, NodeInfo not yet exchanged), all
        /// addresses together. Over it, new connections are closed at accept, before any
        /// buffer is allocated.
        max_pending_handshakes: u32 = 256,
        /// Connections in the handshake from one IP address.
        max_pending_handshakes_per_ip: u32 = 8,
        /// Handshakes one IP address (IPv6: one /64) may start per second (token-bucket
        /// refill). A socket over the rate is closed at accept, before any X25519 or ed25519
        /// work, and counted as a `handshake_rate` refusal.
        handshake_rate_per_ip: f64 = 2.0,
        /// Handshakes one IP address may start at once (token-bucket size).
        handshake_burst_per_ip: u32 = 10,
        /// Established connections from one IP address when p2p.allow_duplicate_ip = true
        /// (with false, one, as stock).
        max_connections_per_ip: u32 = 8,
        /// Pause before accepting again after an accept failed (out of file descriptors or
        /// memory); each failure counts in the node's `accept_errors`.
        #[serde(with = "super::duration::serde_text")]
        accept_backoff: Duration = Duration::from_millis(100),
        /// Connections each shard's listener accepts per second, refused ones included
        /// (bursts of one second's worth); beyond it connections wait in the kernel's listen
        /// queue, so a connection flood costs the node at most this much accept work and its
        /// connected peers keep their latency. 0: no limit.
        max_accepts_per_second: u32 = 500,
        /// Outbound connection attempts in progress at once: the peer manager starts no
        /// dial while this many are in progress (operator dials count too).
        max_concurrent_dials: u32 = 16,
        /// First pause before redialing a peer; doubles on each failure (each pause is up to
        /// 20 % shorter at random).
        #[serde(with = "super::duration::serde_text")]
        dial_backoff_min: Duration = Duration::from_secs(1),
        /// Longest pause between redials of a peer.
        #[serde(with = "super::duration::serde_text")]
        dial_backoff_max: Duration = Duration::from_secs(300),
        /// Largest message any channel accepts, after decompression; each channel's own
        /// receive cap is lowered to this. Default: the largest stock cap (block sync).
        max_message_size: usize = largest_stock_channel_cap(),
        /// Largest NodeInfo accepted, in bytes (stock: 10240, also the most allowed); a peer
        /// declaring a longer one fails the handshake.
        max_node_info_size: usize = MAX_NODE_INFO_SIZE,
        /// Messages that may wait in one channel's send queue to one peer, for channels that
        /// do not set their own: opened with a send queue capacity of 0 (a
        /// ChannelDescriptor's send_queue_capacity, ringwire_node_open_channel's argument,
        /// Go's ChannelDesc.SendQueueCapacity). The stock channels keep their stock
        /// capacities. A full queue makes send wait until its deadline, then fail.
        channel_send_queue_capacity: usize = 64,
        /// Bytes of application sends queued for one peer over all its channels (broadcast
        /// copies and responses have bounds of their own); over it, sends to that peer fail
        /// as if the queue were full (try_send: Full; send: waits, then Timeout). A message
        /// larger than this still goes when nothing else waits for that peer.
        max_peer_send_bytes: usize = 16 << 20,
        /// Bytes of received messages from one peer waiting for the application; reading
        /// from that peer pauses at this bound.
        max_peer_inflight_bytes: usize = 32 << 20,
        /// Received messages from one stock (compat) peer waiting for the application.
        recv_queue_capacity: usize = 64,
        /// Received messages from one native peer waiting for the application. Data the peer
        /// sends beyond them is held unassembled, within its credit windows, until the
        /// application takes messages; keepalive is still answered.
        native_recv_queue_capacity: usize = 1024,
        /// Initial per-channel credit window on native connections, in bytes
        /// (1024 to 2147483647).
        native_window: u32 = 1 << 20,
        /// Credit a native channel keeps while a channel of higher priority carries data
        /// (either way, within the last second), per millisecond of the connection's smallest
        /// measured round trip, never above native_window: received bulk then holds an urgent
        /// message back by at most this much data sealed ahead of it. It is also the least a
        /// channel keeps when its credit follows its application's pace (a tenth of a second
        /// of the best recent rate). 0 (off: every channel keeps its full window) or 1024 to
        /// 2147483647.
        native_busy_window: u32 = 64 * 1024,
        /// Largest DATA chunk on native connections (1 to 65523); a high-priority message
        /// waits behind at most one.
        native_max_chunk: usize = 16 * 1024,
        /// Requests one native peer may have in flight to this node.
        max_inflight_requests: u32 = 256,
        /// Control frames one peer may send per second, with bursts of up to one second's
        /// worth: on native connections every frame but data (pings, pongs, window updates,
        /// cancels, close, reset; window updates returning credit for data this node sent and
        /// cancels of requests it holds are free), on stock connections ping and pong packets.
        /// A peer over it is disconnected and counted (ping and reset floods).
        max_control_frames_per_second: u32 = 1000,
        /// Bytes of partly received messages (reassembly buffers) one peer may hold, all its
        /// channels together; a peer that would hold more is disconnected and counted. At
        /// least limits.max_message_size, so the largest message can arrive.
        max_partial_bytes_per_peer: usize = DEFAULT_MAX_PARTIAL_BYTES_PER_PEER,
        /// Bytes of partly received messages all peers together may hold; a peer whose
        /// message would grow past it is disconnected and counted. At least
        /// limits.max_partial_bytes_per_peer.
        max_partial_bytes: usize = DEFAULT_MAX_PARTIAL_BYTES,
        /// Bytes written to one peer per event-loop turn before other peers get their turn.
        write_budget: usize = 256 * 1024,
        /// Largest zstd window a received frame may need, as a power of two (10 to 30;
        /// 23 = 8 MiB). Decompressed output is capped by the channel's receive cap.
        zstd_window_log_max: u32 = 23,
        /// Keepalive ping interval on stock (compat) connections (stock: 60s).
        #[serde(with = "super::duration::serde_text")]
        ping_interval: Duration = Duration::from_secs(60),
        /// A stock (compat) peer that leaves a ping unanswered this long is dropped (stock:
        /// 45s); must be less than ping_interval.
        #[serde(with = "super::duration::serde_text")]
        pong_timeout: Duration = Duration::from_secs(45),
        /// Keepalive ping interval on native connections.
        #[serde(with = "super::duration::serde_text")]
        native_ping_interval: Duration = Duration::from_secs(5),
        /// A native peer that leaves a ping unanswered this long is dropped.
        #[serde(with = "super::duration::serde_text")]
        native_pong_timeout: Duration = Duration::from_secs(5),
        /// A peer may ask for addresses at most this often (after two free requests); a peer
        /// asking sooner breaks the PEX rules: disconnected and banned for pex_ban_duration
        /// (stock rule: 10s; 0s: no pacing).
        #[serde(with = "super::duration::serde_text")]
        pex_request_interval: Duration = Duration::from_secs(10),
        /// Most addresses in one PEX message (stock's answers carry at most 250): a longer list
        /// breaks the PEX rules (the peer is disconnected and banned for pex_ban_duration), and
        /// this node's answers carry no more. Below 250, honest stock peers with large books
        /// are dropped.
        pex_max_addresses_per_message: u32 = 250,
        /// Addresses per second accepted from one peer (token-bucket refill); the rest are
        /// dropped and counted (NodeStats::pex_addresses_rate_limited).
        pex_address_rate: f64 = 0.1,
        /// Addresses accepted from one peer at once (token-bucket size, full when it connects).
        pex_address_burst: u32 = 1000,
        /// Most addresses kept in the address book (besides 64 per bucket, as stock). When it
        /// is full, a new address replaces one of its most crowded bucket: a bad one, else the
        /// least recently tried; learned from another peer's list before those nodes announced
        /// themselves (their NodeInfo), and never a tried one.
        max_address_book_size: usize = 20_000,
        /// How long a peer that broke the PEX rules (request pacing, unsolicited or too long
        /// address lists, bad messages) stays banned through the peer manager, besides being
        /// disconnected (stock: 24h; 0s: disconnected only).
        #[serde(with = "super::duration::serde_text")]
        pex_ban_duration: Duration = DAY,
    }
}

impl LimitsConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        const S: &str = "limits";
        p.within(
            S,
            "max_pending_handshakes",
            self.max_pending_handshakes,
            1,
            100_000,
        );
        p.within(
            S,
            "max_pending_handshakes_per_ip",
            self.max_pending_handshakes_per_ip,
            1,
            self.max_pending_handshakes.max(1),
        );
        rate(p, S, "handshake_rate_per_ip", self.handshake_rate_per_ip);
        p.within(
            S,
            "handshake_burst_per_ip",
            self.handshake_burst_per_ip,
            1,
            100_000,
        );
        p.within(
            S,
            "max_connections_per_ip",
            self.max_connections_per_ip,
            1,
            10_000,
        );
        p.duration(S, "accept_backoff", self.accept_backoff, true, MINUTE);
        p.within(
            S,
            "max_accepts_per_second",
            self.max_accepts_per_second,
            0,
            1_000_000,
        );
        p.within(
            S,
            "max_concurrent_dials",
            self.max_concurrent_dials,
            1,
            10_000,
        );
        p.duration(S, "dial_backoff_min", self.dial_backoff_min, true, HOUR);
        p.duration(S, "dial_backoff_max", self.dial_backoff_max, true, DAY);
        if self.dial_backoff_max < self.dial_backoff_min {
            p.push(
                S,
                "dial_backoff_max",
                "must not be less than limits.dial_backoff_min",
            );
        }
        p.within(
            S,
            "max_message_size",
            self.max_message_size,
            1024,
            MAX_MESSAGE_SIZE_LIMIT,
        );
        p.within(
            S,
            "max_node_info_size",
            self.max_node_info_size,
            MIN_NODE_INFO_SIZE,
            MAX_NODE_INFO_SIZE,
        );
        p.within(
            S,
            "channel_send_queue_capacity",
            self.channel_send_queue_capacity,
            1,
            1_000_000,
        );
        p.within(
            S,
            "max_peer_send_bytes",
            self.max_peer_send_bytes,
            64 * 1024,
            usize::MAX,
        );
        p.within(
            S,
            "max_peer_inflight_bytes",
            self.max_peer_inflight_bytes,
            64 * 1024,
            usize::MAX,
        );
        p.within(
            S,
            "recv_queue_capacity",
            self.recv_queue_capacity,
            1,
            1_000_000,
        );
        p.within(
            S,
            "native_recv_queue_capacity",
            self.native_recv_queue_capacity,
            1,
            1_000_000,
        );
        p.within(
            S,
            "native_window",
            self.native_window,
            MIN_WINDOW,
            MAX_WINDOW,
        );
        if self.native_busy_window != 0 {
            p.within(
                S,
                "native_busy_window",
                self.native_busy_window,
                MIN_WINDOW,
                MAX_WINDOW,
            );
        }
        p.within(
            S,
            "native_max_chunk",
            self.native_max_chunk,
            1,
            MAX_DATA_CHUNK,
        );
        p.within(
            S,
            "max_inflight_requests",
            self.max_inflight_requests,
            1,
            1_000_000,
        );
        p.within(
            S,
            "max_control_frames_per_second",
            self.max_control_frames_per_second,
            10,
            1_000_000,
        );
        p.within(
            S,
            "max_partial_bytes_per_peer",
            self.max_partial_bytes_per_peer,
            self.max_message_size.max(1024),
            usize::MAX,
        );
        p.within(
            S,
            "max_partial_bytes",
            self.max_partial_bytes,
            self.max_partial_bytes_per_peer,
            usize::MAX,
        );
        p.within(S, "write_budget", self.write_budget, 1024, 1 << 30);
        p.within(S, "zstd_window_log_max", self.zstd_window_log_max, 10, 30);
        p.duration(S, "ping_interval", self.ping_interval, true, DAY);
        p.duration(S, "pong_timeout", self.pong_timeout, true, DAY);
        if self.pong_timeout >= self.ping_interval {
            p.push(S, "pong_timeout", "must be less than limits.ping_interval");
        }
        p.duration(
            S,
            "native_ping_interval",
            self.native_ping_interval,
            true,
            DAY,
        );
        p.duration(
            S,
            "native_pong_timeout",
            self.native_pong_timeout,
            true,
            DAY,
        );
        p.duration(
            S,
            "pex_request_interval",
            self.pex_request_interval,
            false,
            DAY,
        );
        p.within(
            S,
            "pex_max_addresses_per_message",
            self.pex_max_addresses_per_message,
            1,
            10_000,
        );
        rate(p, S, "pex_address_rate", self.pex_address_rate);
        p.within(S, "pex_address_burst", self.pex_address_burst, 1, 1_000_000);
        p.within(
            S,
            "max_address_book_size",
            self.max_address_book_size,
            1,
            10_000_000,
        );
        p.duration(
            S,
            "pex_ban_duration",
            self.pex_ban_duration,
            false,
            30 * DAY,
        );
    }
}

/// A token-bucket refill rate: positive and finite.
fn rate(p: &mut Problems, section: &str, key: &str, value: f64) {
    if !(value > 0.0 && value <= 1_000_000.0) {
        p.push(
            section,
            key,
            format!("must be above 0 and at most 1000000 per second, got {value}"),
        );
    }
}
