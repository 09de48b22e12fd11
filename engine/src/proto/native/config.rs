//! Configuration of a native multiplexer: its channels, chunk size, keepalive and limits.

use std::time::Duration;

use super::error::ConfigError;
use super::frame::hello::{Hello, HelloError};
use super::frame::{MAX_DATA_CHUNK, MAX_HELLO_CHANNELS, MAX_WINDOW, MIN_WINDOW};
use crate::proto::budget::{DEFAULT_MAX_CONTROL_FRAMES_PER_SECOND, PartialBudget};

/// Default per-channel initial credit window: 1 MiB.
pub const DEFAULT_INITIAL_WINDOW: u32 = 1 << 20;
/// Default credit a channel keeps, per millisecond of round trip, while a channel of higher
/// priority is busy: 64 KiB.
pub const DEFAULT_BUSY_WINDOW: u32 = 64 * 1024;
/// Default largest DATA chunk: 16 KiB.
pub const DEFAULT_MAX_CHUNK: usize = 16 * 1024;
/// Default keepalive interval.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);
/// Default time to wait for a PONG.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(5);
/// Default most requests in flight, each way.
pub const DEFAULT_MAX_INFLIGHT_REQUESTS: u32 = 256;
/// Default most received messages waiting for the application.
pub const DEFAULT_RECV_QUEUE_CAPACITY: usize = 1024;
/// Default per-channel send queue capacity, in messages.
pub const DEFAULT_SEND_QUEUE_CAPACITY: usize = 64;

/// One channel of a native connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeChannelConfig {
    /// Channel id (the reactor's MConnection channel id).
    pub id: u8,
    /// Scheduling weight; higher sends sooner (must be ≥ 1).
    pub priority: u32,
    /// Messages that may wait in this channel's send queue.
    pub send_queue_capacity: usize,
    /// Largest message accepted on this channel, after decompression (1..=u32::MAX).
    pub recv_message_capacity: usize,
    /// Credit granted to the peer on this channel at start, in bytes (1024..=2^31 − 1).
    pub initial_window: u32,
}

impl NativeChannelConfig {
    /// A channel with the default send queue capacity and initial window.
    pub fn new(id: u8, priority: u32, recv_message_capacity: usize) -> Self {
        Self {
            id,
            priority,
            send_queue_capacity: DEFAULT_SEND_QUEUE_CAPACITY,
            recv_message_capacity,
            initial_window: DEFAULT_INITIAL_WINDOW,
        }
    }
}

/// Configuration of one native multiplexer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeConfig {
    /// The channels (at most 64, unique ids). Their order breaks scheduling ties.
    pub channels: Vec<NativeChannelConfig>,
    /// Largest DATA chunk sent (1..=65523); a high-priority chunk waits behind at most one.
    pub max_chunk: usize,
    /// A PING goes out this often.
    pub ping_interval: Duration,
    /// The connection fails when a PING's PONG takes longer than this.
    pub pong_timeout: Duration,
    /// Requests in flight we accept from the peer (announced in HELLO), and requests we keep
    /// in flight ourselves at most.
    pub max_inflight_requests: u32,
    /// Received messages that may wait for the application. DATA arriving while this many
    /// wait is held unassembled, within the peer's credit, until the application takes one;
    /// control frames are still answered. `wants_input()` turns false at this bound (a pacing
    /// hint for drivers that may pause reading).
    pub recv_queue_capacity: usize,
    /// Non-DATA frames the peer may send per second (a token bucket of one second's worth);
    /// one more fails the connection with `MuxError::ControlFlood`. At least 1.
    pub max_control_frames_per_second: u32,
    /// Bytes of partly received messages this connection may hold, and the node-wide pool it
    /// reserves them from; over either, `MuxError::PartialBudget`.
    pub partial_budget: PartialBudget,
    /// Our service capabilities, announced in HELLO (at most 32, each 1..=64 printable ASCII
    /// bytes).
    pub capabilities: Vec<String>,
    /// Credit a channel is granted at most, per millisecond of the connection's smallest
    /// measured round trip (counted as at least one), while a channel of higher priority
    /// carries DATA either way; never more than its initial window. Received bulk then
    /// cannot bury an urgent message under more than this much data sealed ahead of it. Also
    /// the least a channel keeps when its credit follows its application's drain rate. 0
    /// (off: both rules) or 1024..=2^31 − 1. See `flow` for the policy.
    pub busy_window: u32,
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            max_chunk: DEFAULT_MAX_CHUNK,
            ping_interval: DEFAULT_PING_INTERVAL,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            max_inflight_requests: DEFAULT_MAX_INFLIGHT_REQUESTS,
            recv_queue_capacity: DEFAULT_RECV_QUEUE_CAPACITY,
            max_control_frames_per_second: DEFAULT_MAX_CONTROL_FRAMES_PER_SECOND,
            partial_budget: PartialBudget::default(),
            capabilities: Vec::new(),
            busy_window: DEFAULT_BUSY_WINDOW,
        }
    }
}

impl NativeConfig {
    /// The defaults with these channels.
    pub fn with_channels(channels: Vec<NativeChannelConfig>) -> Self {
        Self {
            channels,
            ..Self::default()
        }
    }

    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.channels.len() > MAX_HELLO_CHANNELS {
            return Err(ConfigError::TooManyChannels(self.channels.len()));
        }
        for (i, c) in self.channels.iter().enumerate() {
            if c.id == super::RINGWIRE_CAPABILITY_CHANNEL {
                return Err(ConfigError::ReservedChannel(c.id));
            }
            if self.channels.iter().take(i).any(|d| d.id == c.id) {
                return Err(ConfigError::DuplicateChannel(c.id));
            }
            if c.priority == 0 {
                return Err(ConfigError::ZeroPriority(c.id));
            }
            if c.send_queue_capacity == 0 {
                return Err(ConfigError::ZeroSendQueue(c.id));
            }
            if c.recv_message_capacity == 0 || u32::try_from(c.recv_message_capacity).is_err() {
                return Err(ConfigError::BadRecvCapacity(c.id));
            }
            if !(MIN_WINDOW..=MAX_WINDOW).contains(&c.initial_window) {
                return Err(ConfigError::BadWindow(c.id));
            }
        }
        if self.max_chunk == 0 || self.max_chunk > MAX_DATA_CHUNK {
            return Err(ConfigError::BadMaxChunk(self.max_chunk));
        }
        if self.ping_interval.is_zero() {
            return Err(ConfigError::ZeroDuration("ping_interval"));
        }
        if self.pong_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("pong_timeout"));
        }
        if self.busy_window != 0 && !(MIN_WINDOW..=MAX_WINDOW).contains(&self.busy_window) {
            return Err(ConfigError::BadBusyWindow(self.busy_window));
        }
        if self.recv_queue_capacity == 0 {
            return Err(ConfigError::ZeroRecvQueue);
        }
        if self.max_control_frames_per_second == 0 {
            return Err(ConfigError::ZeroControlRate);
        }
        let probe = Hello {
            min_version: 1,
            max_version: 1,
            features: 0,
            max_inflight_requests: 0,
            capabilities: self.capabilities.clone(),
            channels: Vec::new(),
        };
        probe
            .validate()
            .map_err(|e: HelloError| ConfigError::Capabilities(e))
    }
}
