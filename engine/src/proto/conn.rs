//! One connection, from the first handshake byte to the close: [`Connection`].
//!
//! A `Connection` is a sans-IO state machine. It runs the same start for every peer — the stock
//! SecretConnection handshake, then the stock NodeInfo exchange — and then settles in one of two
//! modes:
//!
//! - **compat**: MConnection packets inside SecretConnection frames, byte-exact with stock
//!   CometBFT. Chosen whenever either NodeInfo lacks
//!   [`RINGWIRE_CAPABILITY_CHANNEL`].
//! - **native**: ringwire's record layer and multiplexer (`docs/PROTOCOL.md`), chosen when both
//!   NodeInfos advertise the capability channel. The switch happens right after the NodeInfo
//!   frames, so a stock peer never receives a native byte.
//!
//! # Driving a connection
//!
//! The driver (a runtime shard, or [`sim`](super::sim) in tests) owns the socket and the clock:
//!
//! 1. feed every received byte to [`Connection::handle_input`];
//! 2. when [`Connection::poll_timeout`] passes, call [`Connection::handle_timeout`];
//! 3. after either, drain [`Connection::poll_transmit`] into the socket and
//!    [`Connection::poll_event`] into the application;
//! 4. stop reading the socket while [`Connection::wants_input`] is false (the application is
//!    behind; the peer feels TCP backpressure instead of ringwire buffering without bound).
//!
//! # The peer's signature
//!
//! When this side offers the native protocol, the peer's signature of the handshake challenge
//! is checked after the NodeInfo exchange rather than inside the handshake: on a native
//! connection our HELLO leaves first (step 3's `poll_transmit`), and the check runs at the next
//! `poll_event`, before any event about the peer. The peer waits for our HELLO to report the
//! connection up, so this takes the check off its critical path; nothing about the peer is
//! reported, and no message delivered, before the check passes. A compat connection checks
//! the signature before it reports `Connected`.
//!
//! Errors from `handle_*` close the connection: the error is returned once, and
//! [`Event::Closed`] carries the same reason for the event consumer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::budget::{
    DEFAULT_MAX_CONTROL_FRAMES_PER_SECOND, DEFAULT_MAX_PARTIAL_BYTES,
    DEFAULT_MAX_PARTIAL_BYTES_PER_PEER, Exceeded, PartialBudget, PartialBudgetError,
};
use super::by_channel::ByChannel;
use super::compress::{self, CompressionConfig, Compressor, Decompressor, Outcome};
use super::mconn::{self, ChannelConfig, MConnConfig, MConnection};
use super::native::frame::holds_whole_message;
use super::native::{
    self, MessageKind, Mux, MuxEvent, NativeChannelConfig, NativeConfig, Opened, PinBudget,
    RecordOpener, RecordSealer, RequestId, ResetCode,
};
use super::nodeinfo::{
    MAX_NODE_INFO_SIZE, MAX_NUM_CHANNELS, NodeInfo, NodeInfoError, RINGWIRE_CAPABILITY_CHANNEL,
};
use super::secret::{
    DATA_MAX_SIZE, FRAME_SEALED_SIZE, FrameOpener, FrameSealer, Handshake, NodeId, NodeKey,
    SecretError, SecretSession, UnverifiedSignature,
};

/// Whether a channel's messages are compressed on native connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Never compress.
    #[default]
    Off,
    /// Compress messages large and compressible enough to gain (see `proto::compress`).
    Auto,
}

/// Describes one channel: the same numbers stock CometBFT reactors declare, plus compression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelDescriptor {
    /// Channel id (a byte, as in stock NodeInfo).
    pub id: u8,
    /// Relative priority (≥ 1); higher gets a larger share of the link.
    pub priority: u32,
    /// Messages that may wait in this channel's send queue before `send` reports `Full`. 0
    /// takes the node's default when the channel is opened on a node
    /// (`Limits::channel_send_queue_capacity`, the `limits.channel_send_queue_capacity` key); a
    /// [`Connection`] made directly needs at least 1.
    pub send_queue_capacity: usize,
    /// Largest message accepted on this channel, in bytes; larger ones close the connection.
    pub recv_message_capacity: usize,
    /// Compression on native connections.
    pub compression: Compression,
}

impl ChannelDescriptor {
    /// Channel `id` with `priority` (at least 1), messages of up to `recv_message_capacity`
    /// bytes, the node's default send queue capacity (`send_queue_capacity` 0) and no
    /// compression.
    pub fn new(id: u8, priority: u32, recv_message_capacity: usize) -> Self {
        ChannelDescriptor {
            id,
            priority,
            send_queue_capacity: 0,
            recv_message_capacity,
            compression: Compression::Off,
        }
    }

    /// The ten channels stock CometBFT reactors use, with their stock numbers.
    pub fn stock() -> Vec<ChannelDescriptor> {
        mconn::stock_channels()
            .into_iter()
            .map(|c| ChannelDescriptor {
                id: c.id,
                priority: c.priority,
                send_queue_capacity: c.send_queue_capacity,
                recv_message_capacity: c.recv_message_capacity,
                compression: Compression::Off,
            })
            .collect()
    }
}

/// Everything a [`Connection`] needs to know before its first byte.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// This node's identity key.
    pub node_key: NodeKey,
    /// This node's NodeInfo. Its `node_id` and `channels` are replaced by the key's ID and the
    /// ids of [`ConnectionConfig::channels`] (plus the capability channel when native is
    /// offered), so what a peer is told always matches what this connection accepts.
    pub node_info: NodeInfo,
    /// The channels this connection carries.
    pub channels: Vec<ChannelDescriptor>,
    /// For dialed connections: the ID that was dialed; the handshake fails if the peer
    /// authenticates as anyone else.
    pub expected_peer: Option<NodeId>,
    /// Offer ringwire's native protocol (advertise the capability channel).
    pub offer_native: bool,
    /// Service capabilities announced to native peers (strings such as `"archive"`).
    pub capabilities: Vec<String>,
    /// Deadline for the SecretConnection handshake and the NodeInfo exchange together (stock
    /// allows 3 s for each).
    pub handshake_timeout: Duration,
    /// MConnection settings for compat mode (keepalive, packet size, receive queue).
    pub mconn: MConnConfig,
    /// Initial per-channel flow-control window on native connections, in bytes.
    pub native_window: u32,
    /// Credit a native channel keeps, per millisecond of round trip, while a channel of higher
    /// priority is busy (0: off); see `NativeConfig::busy_window`.
    pub native_busy_window: u32,
    /// Largest DATA chunk on native connections; a high-priority frame waits behind at most one.
    pub native_max_chunk: usize,
    /// Keepalive ping interval on native connections.
    pub native_ping_interval: Duration,
    /// How long a native peer may leave a ping unanswered before the connection fails.
    pub native_pong_timeout: Duration,
    /// Most requests this side accepts in flight from a native peer.
    pub max_inflight_requests: u32,
    /// Received messages that may wait for the application on a native connection.
    pub native_recv_queue_capacity: usize,
    /// zstd settings; `None` disables compression (it is then neither offered nor accepted).
    pub compression: Option<CompressionConfig>,
    /// Most bytes [`Connection::poll_transmit`] appends per call (one more record or frame
    /// batch may overshoot it).
    pub transmit_budget: usize,
    /// Largest NodeInfo accepted from the peer, in bytes (1 to the stock 10,240); a longer one
    /// fails the handshake with [`NodeInfoError::TooLarge`] before its body is buffered.
    pub max_node_info_size: usize,
    /// Control frames (every frame but DATA) a native peer may send per second; one more
    /// closes the connection (`MuxError::ControlFlood`). Compat peers: the
    /// [`MConnConfig::max_control_packets_per_second`] of [`ConnectionConfig::mconn`].
    pub max_control_frames_per_second: u32,
    /// Bytes of partly received messages a native peer may hold, and the node-wide pool they
    /// come from (`MuxError::PartialBudget`). Compat peers: the [`MConnConfig::partial_budget`]
    /// of [`ConnectionConfig::mconn`]; [`ConnectionConfig::new`] puts one pool in both.
    pub partial_budget: PartialBudget,
}

impl ConnectionConfig {
    /// A configuration with the stock channels and safe defaults, and a fresh node-wide pool
    /// for partly received messages (connections cloned from this configuration share it).
    pub fn new(node_key: NodeKey, node_info: NodeInfo) -> Self {
        let partial_budget = PartialBudget::new(
            DEFAULT_MAX_PARTIAL_BYTES_PER_PEER,
            DEFAULT_MAX_PARTIAL_BYTES,
        );
        ConnectionConfig {
            node_key,
            node_info,
            channels: ChannelDescriptor::stock(),
            expected_peer: None,
            offer_native: true,
            capabilities: Vec::new(),
            handshake_timeout: Duration::from_secs(6),
            mconn: MConnConfig {
                partial_budget: partial_budget.clone(),
                ..MConnConfig::default()
            },
            native_window: native::config::DEFAULT_INITIAL_WINDOW,
            native_busy_window: native::config::DEFAULT_BUSY_WINDOW,
            native_max_chunk: native::config::DEFAULT_MAX_CHUNK,
            native_ping_interval: native::config::DEFAULT_PING_INTERVAL,
            native_pong_timeout: native::config::DEFAULT_PONG_TIMEOUT,
            max_inflight_requests: native::config::DEFAULT_MAX_INFLIGHT_REQUESTS,
            native_recv_queue_capacity: native::config::DEFAULT_RECV_QUEUE_CAPACITY,
            compression: Some(CompressionConfig::default()),
            transmit_budget: 256 * 1024,
            max_node_info_size: MAX_NODE_INFO_SIZE,
            max_control_frames_per_second: DEFAULT_MAX_CONTROL_FRAMES_PER_SECOND,
            partial_budget,
        }
    }
}

/// A configuration a [`Connection`] cannot run with.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Rejected by the MConnection layer.
    #[error("compat settings: {0}")]
    MConn(#[from] mconn::ConfigError),
    /// Rejected by the native multiplexer.
    #[error("native settings: {0}")]
    Native(#[from] native::ConfigError),
    /// Rejected by the compression layer.
    #[error("compression settings: {0}")]
    Compression(#[from] compress::ConfigError),
    /// A channel uses the capability channel id, which never carries messages.
    #[error("channel {0:#04x} is reserved for the ringwire capability")]
    ReservedChannel(u8),
    /// NodeInfo allows at most 16 channels, the capability channel included.
    #[error("{0} channels exceed the 16 a NodeInfo may list")]
    TooManyChannels(usize),
    /// `max_node_info_size` is zero or above the stock 10,240 bytes.
    #[error("max node info size must be 1..={MAX_NODE_INFO_SIZE}, got {0}")]
    NodeInfoSize(usize),
}

/// Which protocol an established connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Stock MConnection framing (the peer did not advertise ringwire's capability channel).
    Compat,
    /// ringwire's native record layer and multiplexer.
    Native,
}

/// What the application learns about a peer once the connection is up.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The authenticated node ID.
    pub node_id: NodeId,
    /// The peer's NodeInfo (validated and compatible).
    pub node_info: NodeInfo,
    /// The protocol in use.
    pub mode: Mode,
    /// Service capabilities the peer announced (empty for compat peers).
    pub capabilities: Vec<String>,
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel it arrived on.
    pub channel: u8,
    /// The payload, exactly as the peer's application sent it.
    pub payload: Bytes,
    /// Plain message, request (answer with [`Connection::respond`]) or response.
    pub kind: MessageKind,
    /// The deadline the peer's time-to-live gives it (native peers that send one).
    pub deliver_by: Option<Instant>,
}

/// Something the application must learn about.
#[derive(Clone, Debug)]
pub enum Event {
    /// The handshake, NodeInfo exchange and (native) HELLO completed.
    Connected(Box<PeerInfo>),
    /// A message arrived.
    Message(Message),
    /// A request sent with [`Connection::request`] got no response before its deadline.
    RequestTimedOut(RequestId),
    /// A request sent with [`Connection::request`] could not be sent (the connection is
    /// closing).
    RequestFailed(RequestId),
    /// The peer cancelled a request it had sent us; no answer is needed. The request keeps its
    /// place among those the peer may have in flight until the application is done with it
    /// ([`Connection::respond`] or [`Connection::finish_request`]).
    Cancelled(RequestId),
    /// The connection is closed; nothing more will be sent or received.
    Closed(ConnError),
}

/// Why a connection failed or closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The SecretConnection handshake or a frame failed.
    #[error("secret connection: {0}")]
    Secret(#[from] SecretError),
    /// The peer's NodeInfo is malformed, invalid or incompatible.
    #[error("node info: {0}")]
    NodeInfo(#[from] NodeInfoError),
    /// The dialed peer authenticated as a different node.
    #[error("dialed {expected} but the peer authenticated as {actual}")]
    WrongPeer {
        /// The ID that was dialed.
        expected: NodeId,
        /// The ID the peer proved.
        actual: NodeId,
    },
    /// The NodeInfo's ID differs from the authenticated ID.
    #[error("node info claims ID {claimed} but the peer authenticated as {actual}")]
    NodeInfoIdMismatch {
        /// The ID in the NodeInfo.
        claimed: String,
        /// The authenticated ID.
        actual: NodeId,
    },
    /// The peer is this node.
    #[error("connected to self")]
    SelfConnection,
    /// The NodeInfo frames carried bytes after the NodeInfo message.
    #[error("unexpected bytes after the node info message")]
    TrailingNodeInfoBytes,
    /// The handshake and NodeInfo exchange did not finish in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// A native peer's HELLO did not arrive before the handshake deadline.
    #[error("native hello timed out")]
    HelloTimeout,
    /// A compat-mode protocol error.
    #[error("mconnection: {0}")]
    MConn(#[from] mconn::MConnError),
    /// A native record failed to open.
    #[error("native record: {0}")]
    Record(#[from] native::RecordError),
    /// A native multiplexer protocol error.
    #[error("native mux: {0}")]
    Mux(#[from] native::MuxError),
    /// The peer closed the native connection cleanly.
    #[error("peer closed: {0}")]
    PeerClosed(String),
    /// The peer aborted the native connection.
    #[error("peer reset ({code:?}): {reason}")]
    PeerReset {
        /// The reset code (docs/PROTOCOL.md).
        code: ResetCode,
        /// The peer's explanation.
        reason: String,
    },
    /// A setting was refused after the handshake (cannot happen with a configuration that
    /// [`Connection::new`] accepted; reported rather than panicking).
    #[error("configuration: {0}")]
    Config(String),
    /// This side closed the connection.
    #[error("closed locally: {0}")]
    LocalClose(String),
}

impl ConnError {
    /// The budget (`proto::budget`) whose exhaustion closed the connection, if that is why.
    pub fn exceeded_budget(&self) -> Option<Exceeded> {
        let partial = |e: &PartialBudgetError| match e {
            PartialBudgetError::Peer { .. } => Exceeded::PeerPartialBytes,
            PartialBudgetError::Node { .. } => Exceeded::NodePartialBytes,
        };
        match self {
            ConnError::MConn(mconn::MConnError::ControlFlood { .. })
            | ConnError::Mux(native::MuxError::ControlFlood { .. }) => {
                Some(Exceeded::ControlFrames)
            }
            ConnError::MConn(mconn::MConnError::PartialBudget(e))
            | ConnError::Mux(native::MuxError::PartialBudget(e)) => Some(partial(e)),
            _ => None,
        }
    }
}

/// Why a send was refused. Nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The channel's send queue is at capacity: retry later or give up (backpressure).
    #[error("send queue of channel {0:#04x} is full")]
    Full(u8),
    /// The channel is not configured on this connection.
    #[error("channel {0:#04x} is not configured")]
    UnknownChannel(u8),
    /// The peer did not advertise the channel; stock peers drop connections that receive one.
    #[error("peer does not accept channel {0:#04x}")]
    ChannelNotShared(u8),
    /// Request/response needs a native peer.
    #[error("request/response is not supported by compat peers")]
    Unsupported,
    /// The connection is not established yet.
    #[error("connection is not established yet")]
    NotReady,
    /// The connection is closed.
    #[error("connection is closed")]
    Closed,
    /// Refused by the multiplexer (message too large, too many requests, ...).
    #[error("{0}")]
    Native(native::MuxQueueError),
    /// Refused by the MConnection layer.
    #[error("{0}")]
    Compat(mconn::MConnQueueError),
}

/// Largest plaintext sealed into SecretConnection frames per seal call in compat mode.
const COMPAT_PLAINTEXT_BATCH: usize = 16 * 1024;

/// The frames a NodeInfo of at most `max_size` bytes (plus its length prefix) may span.
fn max_node_info_frames(max_size: usize) -> usize {
    max_size.div_ceil(DATA_MAX_SIZE) + 1
}

enum State {
    Handshake(Box<Handshake>),
    NodeInfo(Box<NodeInfoExchange>),
    Compat(Box<Compat>),
    Native(Box<Native>),
    Closed,
}

struct NodeInfoExchange {
    session: SecretSession,
    received: Vec<u8>,
    frames_read: usize,
}

struct Compat {
    sealer: FrameSealer,
    opener: FrameOpener,
    mconn: MConnection,
    peer_channels: ByChannel<bool>,
}

struct Native {
    sealer: RecordSealer,
    opener: RecordOpener,
    /// Bounds the record buffers that received messages, handed out as slices, keep alive:
    /// the channels' receive window (`native_window`), so what a peer can make us hold at
    /// most doubles however its messages fall into records.
    pins: Arc<PinBudget>,
    mux: Mux<ZstdCodec>,
    /// The peer, until its HELLO is polled and `Connected` reported.
    pending_peer: Option<(NodeId, NodeInfo)>,
}

/// One peer connection as a sans-IO state machine (see the module docs for the driving order).
pub struct Connection {
    config: ConnectionConfig,
    state: State,
    /// Our NodeInfo with the channel list this connection actually serves.
    local_info: NodeInfo,
    /// Compat channel settings, validated at construction.
    mconn_channels: Vec<ChannelConfig>,
    handshake_deadline: Option<Instant>,
    /// Wire bytes received during the handshake stages but not consumed yet.
    inbuf: Vec<u8>,
    /// Wire bytes produced by state transitions, drained first by `poll_transmit`.
    outbuf: Vec<u8>,
    /// Reusable plaintext scratch.
    plain: Vec<u8>,
    events: VecDeque<Event>,
    peer: Option<PeerInfo>,
    closed_reason: Option<ConnError>,
    /// The latest `now` any input carried (used to seal a final RESET from `fail`).
    last_now: Instant,
    /// The peer's signature of the challenge, until it is checked (module docs).
    unverified: Option<UnverifiedSignature>,
}

impl Connection {
    /// Starts a connection at `now`. `ephemeral_secret` must be 32 fresh random bytes: the
    /// X25519 key of this handshake (the core takes randomness as input).
    pub fn new(
        config: ConnectionConfig,
        ephemeral_secret: [u8; 32],
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let mut local_info = config.node_info.clone();
        local_info.node_id = config.node_key.node_id().to_string();
        local_info.channels = config.channels.iter().map(|c| c.id).collect();
        if let Some(c) = config
            .channels
            .iter()
            .find(|c| c.id == RINGWIRE_CAPABILITY_CHANNEL)
        {
            return Err(ConfigError::ReservedChannel(c.id));
        }
        if config.offer_native {
            local_info.channels.push(RINGWIRE_CAPABILITY_CHANNEL);
        }
        if local_info.channels.len() > MAX_NUM_CHANNELS {
            return Err(ConfigError::TooManyChannels(local_info.channels.len()));
        }
        if !(1..=MAX_NODE_INFO_SIZE).contains(&config.max_node_info_size) {
            return Err(ConfigError::NodeInfoSize(config.max_node_info_size));
        }
        let mconn_channels: Vec<ChannelConfig> = config
            .channels
            .iter()
            .map(|c| ChannelConfig {
                id: c.id,
                priority: c.priority,
                send_queue_capacity: c.send_queue_capacity,
                recv_message_capacity: c.recv_message_capacity,
            })
            .collect();
        // Validate every layer now, so a bad setting fails here and not mid-handshake.
        MConnection::new(config.mconn.clone(), &mconn_channels, now)?;
        if config.offer_native {
            native_config(&config).validate()?;
        }
        if let Some(c) = &config.compression {
            c.validate()?;
        }
        let mut handshake = Handshake::new(config.node_key.clone(), ephemeral_secret);
        if config.offer_native {
            handshake.defer_signature_check();
        }
        // Our NodeInfo leaves right behind our authentication frame, a round trip earlier
        // than stock sends it (docs/PROTOCOL.md, A.1): stock reads it when it is ready.
        let mut info_bytes = Vec::new();
        local_info.encode_delimited(&mut info_bytes);
        handshake.send_after_auth(info_bytes);
        let handshake_deadline = Some(now + config.handshake_timeout);
        let mut conn = Connection {
            config,
            state: State::Handshake(Box::new(handshake)),
            local_info,
            mconn_channels,
            handshake_deadline,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            plain: Vec::new(),
            events: VecDeque::new(),
            peer: None,
            closed_reason: None,
            last_now: now,
            unverified: None,
        };
        if let State::Handshake(h) = &mut conn.state {
            h.poll_transmit(&mut conn.outbuf);
        }
        Ok(conn)
    }

    /// The NodeInfo this connection sends.
    pub fn local_node_info(&self) -> &NodeInfo {
        &self.local_info
    }

    /// The peer, once [`Event::Connected`] has been emitted.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// The mode, once the NodeInfo exchange has chosen one.
    pub fn mode(&self) -> Option<Mode> {
        match self.state {
            State::Compat(_) => Some(Mode::Compat),
            State::Native(_) => Some(Mode::Native),
            _ => None,
        }
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Why the connection closed, if it did.
    pub fn close_reason(&self) -> Option<&ConnError> {
        self.closed_reason.as_ref()
    }

    /// Advances the native multiplexer's clock, against which the deadlines of received
    /// messages are checked as [`poll_event`](Self::poll_event) hands them out.
    pub fn set_now(&mut self, now: Instant) {
        if let State::Native(n) = &mut self.state {
            n.mux.set_now(now);
        }
    }

    /// Counters of the native multiplexer (`None` on a compat connection or before the
    /// handshake).
    pub fn native_stats(&self) -> Option<&native::MuxStats> {
        match &self.state {
            State::Native(n) => Some(n.mux.stats()),
            _ => None,
        }
    }

    /// The round-trip time of the latest answered keepalive ping (native PING/PONG frames, or
    /// stock ping/pong packets), once one was answered.
    pub fn rtt(&self) -> Option<Duration> {
        match &self.state {
            State::Native(n) => n.mux.rtt(),
            State::Compat(c) => c.mconn.rtt(),
            _ => None,
        }
    }

    /// Received messages waiting in the native multiplexer for [`Connection::poll_event`] (at
    /// most `native_recv_queue_capacity`), if native.
    pub fn native_queued_messages(&self) -> Option<usize> {
        match &self.state {
            State::Native(n) => Some(n.mux.queued_messages()),
            _ => None,
        }
    }

    /// Feeds bytes received from the socket. On error the connection is closed and the same
    /// error is also reported as [`Event::Closed`].
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), ConnError> {
        self.last_now = self.last_now.max(now);
        if self.is_closed() {
            return Ok(());
        }
        let result = self.process_input(now, data);
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    fn process_input(&mut self, now: Instant, data: &[u8]) -> Result<(), ConnError> {
        // Established modes consume input straight from `data`; the handshake stages go through
        // `inbuf` because they stop at exact message boundaries.
        match &mut self.state {
            State::Compat(c) => return c.input(now, data, &mut self.plain),
            State::Native(n) => return n.input(now, data),
            State::Closed => return Ok(()),
            State::Handshake(_) | State::NodeInfo(_) => {}
        }
        self.inbuf.extend_from_slice(data);
        loop {
            let advanced = match &mut self.state {
                State::Handshake(h) => {
                    let used = h.handle_input(&self.inbuf)?;
                    self.inbuf.drain(..used);
                    h.poll_transmit(&mut self.outbuf);
                    if h.is_complete() {
                        self.finish_handshake()?;
                        true
                    } else {
                        false
                    }
                }
                State::NodeInfo(_) => self.read_node_info_frame(now)?,
                State::Compat(c) => {
                    let rest = std::mem::take(&mut self.inbuf);
                    c.input(now, &rest, &mut self.plain)?;
                    false
                }
                State::Native(n) => {
                    let rest = std::mem::take(&mut self.inbuf);
                    n.input(now, &rest)?;
                    false
                }
                State::Closed => false,
            };
            if !advanced {
                return Ok(());
            }
        }
    }

    fn finish_handshake(&mut self) -> Result<(), ConnError> {
        let State::Handshake(h) = std::mem::replace(&mut self.state, State::Closed) else {
            return Ok(());
        };
        let mut session = h.into_session()?;
        self.unverified = session.take_unverified_signature();
        let remote = session.remote_node_id();
        if let Some(expected) = self.config.expected_peer
            && expected != remote
        {
            return Err(ConnError::WrongPeer {
                expected,
                actual: remote,
            });
        }
        // Our NodeInfo already left with our authentication (`send_after_auth`).
        let received = session.take_early_data();
        self.state = State::NodeInfo(Box::new(NodeInfoExchange {
            session,
            received,
            frames_read: 0,
        }));
        Ok(())
    }

    /// Opens one SecretConnection frame of the peer's NodeInfo, if a whole one is buffered, and
    /// establishes the connection once the NodeInfo is complete. Returns whether it advanced.
    fn read_node_info_frame(&mut self, now: Instant) -> Result<bool, ConnError> {
        let State::NodeInfo(x) = &mut self.state else {
            return Ok(false);
        };
        // Early data (rare) may already hold the whole NodeInfo; otherwise read a frame.
        let max = self.config.max_node_info_size;
        let mut advanced = false;
        if NodeInfo::decode_delimited_max(&x.received, max)?.is_none() {
            let Some(frame) = self.inbuf.get(..FRAME_SEALED_SIZE) else {
                return Ok(false);
            };
            let mut frame: [u8; FRAME_SEALED_SIZE] =
                frame.try_into().unwrap_or([0; FRAME_SEALED_SIZE]);
            self.inbuf.drain(..FRAME_SEALED_SIZE);
            let data = x.session.opener_mut().open_frame(&mut frame)?;
            x.received.extend_from_slice(data);
            x.frames_read += 1;
            advanced = true;
        }
        match NodeInfo::decode_delimited_max(&x.received, max)? {
            None if x.frames_read >= max_node_info_frames(max) => Err(NodeInfoError::TooLarge {
                declared: x.received.len() as u64,
                max,
            }
            .into()),
            None => Ok(advanced),
            Some((_, used)) if used != x.received.len() => Err(ConnError::TrailingNodeInfoBytes),
            Some((info, _)) => {
                self.establish(now, info)?;
                Ok(true)
            }
        }
    }

    /// Checks the peer's NodeInfo as stock does, then settles in compat or native mode.
    fn establish(&mut self, now: Instant, info: NodeInfo) -> Result<(), ConnError> {
        let State::NodeInfo(x) = std::mem::replace(&mut self.state, State::Closed) else {
            return Ok(());
        };
        let session = x.session;
        let remote = session.remote_node_id();
        info.validate()?;
        if info.node_id.to_ascii_lowercase() != remote.to_string() {
            return Err(ConnError::NodeInfoIdMismatch {
                claimed: info.node_id.clone(),
                actual: remote,
            });
        }
        if remote == self.config.node_key.node_id() {
            return Err(ConnError::SelfConnection);
        }
        self.local_info.compatible_with(&info)?;
        if self.config.offer_native && info.advertises_native() {
            let keys = session.native_keys();
            let codec = ZstdCodec::new(&self.config);
            let mux = Mux::with_codec(native_config(&self.config), codec, now)
                .map_err(|e| ConnError::Config(e.to_string()))?;
            self.state = State::Native(Box::new(Native {
                sealer: RecordSealer::new(&keys.send),
                opener: RecordOpener::new(&keys.recv),
                pins: PinBudget::new(self.config.native_window as usize),
                mux,
                pending_peer: Some((remote, info)),
            }));
            // `Connected` is reported when the peer's HELLO (it carries the capabilities) is
            // polled; the handshake deadline stays armed until the HELLO has arrived.
        } else {
            self.check_signature()?;
            let mut peer_channels = ByChannel::new(false);
            for &c in &info.channels {
                peer_channels[c] = true;
            }
            let mconn = MConnection::new(self.config.mconn.clone(), &self.mconn_channels, now)
                .map_err(|e| ConnError::Config(e.to_string()))?;
            let SecretSession { sealer, opener, .. } = session;
            self.state = State::Compat(Box::new(Compat {
                sealer,
                opener,
                mconn,
                peer_channels,
            }));
            self.connected(PeerInfo {
                node_id: remote,
                node_info: info,
                mode: Mode::Compat,
                capabilities: Vec::new(),
            });
        }
        Ok(())
    }

    /// Checks the peer's signature if the handshake left it to us.
    fn check_signature(&mut self) -> Result<(), ConnError> {
        match self.unverified.take() {
            Some(signature) => signature.check().map(drop).map_err(ConnError::from),
            None => Ok(()),
        }
    }

    fn connected(&mut self, peer: PeerInfo) {
        self.handshake_deadline = None;
        self.peer = Some(peer.clone());
        self.events.push_back(Event::Connected(Box::new(peer)));
    }

    /// Appends bytes to send to `out`: at most about `transmit_budget` per call. Returns whether
    /// anything was appended; call again until it returns `false` or the socket is full.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        if !self.outbuf.is_empty() {
            out.append(&mut self.outbuf);
        }
        let limit = start.saturating_add(self.config.transmit_budget);
        let result = match &mut self.state {
            State::Handshake(h) => {
                h.poll_transmit(out);
                Ok(())
            }
            State::Compat(c) => c.transmit(now, out, limit, &mut self.plain),
            State::Native(n) => n.transmit(now, out, limit),
            State::NodeInfo(_) | State::Closed => Ok(()),
        };
        if let Err(e) = result {
            self.fail(e);
        }
        out.len() > start
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.unverified.is_some() && !self.is_closed() {
            // The check waits until our HELLO is out of our hands, and nothing about the peer
            // surfaces before it.
            if !matches!(&self.state, State::Native(n) if n.mux.hello_sent()) {
                return None;
            }
            if let Err(e) = self.check_signature() {
                self.fail(e);
            }
        }
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        match &mut self.state {
            State::Compat(c) => c.mconn.poll_message().map(|(channel, payload)| {
                Event::Message(Message {
                    channel,
                    payload,
                    kind: MessageKind::Plain,
                    deliver_by: None,
                })
            }),
            State::Native(n) => match n.mux.poll_event()? {
                MuxEvent::Hello { capabilities, .. } => {
                    if let Some((node_id, node_info)) = n.pending_peer.take() {
                        self.connected(PeerInfo {
                            node_id,
                            node_info,
                            mode: Mode::Native,
                            capabilities,
                        });
                    }
                    self.events.pop_front()
                }
                MuxEvent::Message {
                    channel,
                    payload,
                    kind,
                    deliver_by,
                } => Some(Event::Message(Message {
                    channel,
                    payload,
                    kind,
                    deliver_by,
                })),
                MuxEvent::RequestTimedOut(id) => Some(Event::RequestTimedOut(id)),
                MuxEvent::RequestFailed { id, .. } => Some(Event::RequestFailed(id)),
                MuxEvent::Cancelled(id) => Some(Event::Cancelled(id)),
                MuxEvent::Closed { reason } => {
                    self.fail(ConnError::PeerClosed(reason));
                    self.events.pop_front()
                }
                MuxEvent::Reset { code, reason } => {
                    self.fail(ConnError::PeerReset { code, reason });
                    self.events.pop_front()
                }
                MuxEvent::Failed(e) => {
                    self.fail(ConnError::Mux(e));
                    self.events.pop_front()
                }
            },
            _ => None,
        }
    }

    /// The next instant at which [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let inner = match &self.state {
            State::Compat(c) => c.mconn.poll_timeout(),
            State::Native(n) => n.mux.poll_timeout(),
            State::Closed => return None,
            State::Handshake(_) | State::NodeInfo(_) => None,
        };
        match (inner, self.handshake_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles timers due at `now`: the handshake deadline, keepalive and request deadlines.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnError> {
        self.last_now = self.last_now.max(now);
        if let State::Native(n) = &self.state
            && n.mux.peer_hello().is_some()
            && self.peer.is_none()
            && self.unverified.is_none()
        {
            // The HELLO is in; `Connected` waits only for the application to poll it.
            self.handshake_deadline = None;
        }
        if let Some(deadline) = self.handshake_deadline
            && now >= deadline
        {
            let e = match self.state {
                State::Native(_) => ConnError::HelloTimeout,
                _ => ConnError::HandshakeTimeout,
            };
            self.fail(e.clone());
            return Err(e);
        }
        let result = match &mut self.state {
            State::Compat(c) => c.mconn.handle_timeout(now).map_err(ConnError::from),
            State::Native(n) => n.mux.handle_timeout(now).map_err(ConnError::from),
            _ => Ok(()),
        };
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    /// Whether the driver should read more from the socket: false while received messages wait
    /// for the application (compat). Native connections always accept input, so keepalive is
    /// answered however slowly the application drains: at most `native_recv_queue_capacity`
    /// messages wait, and DATA beyond them is held within the peer's credit windows.
    pub fn wants_input(&self) -> bool {
        match &self.state {
            State::Compat(c) => c.mconn.wants_input(),
            State::Native(_) | State::Handshake(_) | State::NodeInfo(_) => true,
            State::Closed => false,
        }
    }

    /// Queues `payload` on `channel`. Returns at once: `Full` is backpressure.
    pub fn send(&mut self, channel: u8, payload: Bytes) -> Result<(), QueueError> {
        self.send_by(channel, payload, None)
    }

    /// Queues a message worth delivering only until `deliver_by` (`None`: no deadline). A
    /// native peer that announced the feature receives the remaining time-to-live and drops
    /// the message if it runs out before its application takes it; our multiplexer drops it
    /// if the deadline passes before it is written. A compat (stock) connection has no field
    /// for it: the caller drops expired messages before handing them over, and once queued
    /// here they go out.
    pub fn send_by(
        &mut self,
        channel: u8,
        payload: Bytes,
        deliver_by: Option<Instant>,
    ) -> Result<(), QueueError> {
        match &mut self.state {
            State::Compat(c) => {
                if !c.peer_channels[channel] {
                    return Err(QueueError::ChannelNotShared(channel));
                }
                c.mconn.send(channel, payload).map_err(QueueError::Compat)
            }
            State::Native(n) => n
                .mux
                .send_by(channel, payload, deliver_by)
                .map_err(QueueError::Native),
            State::Closed => Err(QueueError::Closed),
            State::Handshake(_) | State::NodeInfo(_) => Err(QueueError::NotReady),
        }
    }

    /// Sends a request on `channel`. The answer arrives as an [`Event::Message`] with
    /// [`MessageKind::Response`] and the returned id, or [`Event::RequestTimedOut`] comes after
    /// `deadline`. Compat peers cannot answer: [`QueueError::Unsupported`].
    pub fn request(
        &mut self,
        channel: u8,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<RequestId, QueueError> {
        match &mut self.state {
            State::Native(n) => n
                .mux
                .request(channel, payload, deadline)
                .map_err(QueueError::Native),
            State::Compat(_) => Err(QueueError::Unsupported),
            State::Closed => Err(QueueError::Closed),
            State::Handshake(_) | State::NodeInfo(_) => Err(QueueError::NotReady),
        }
    }

    /// Gives up request `id` we sent: a request still queued is dropped, one already on the
    /// wire is followed by a CANCEL frame, and a late response is dropped. Returns whether the
    /// request was still pending (false for compat connections, which have no requests).
    pub fn cancel(&mut self, id: RequestId) -> bool {
        match &mut self.state {
            State::Native(n) => n.mux.cancel(id),
            _ => false,
        }
    }

    /// Answers request `id` received on `channel`.
    pub fn respond(
        &mut self,
        channel: u8,
        id: RequestId,
        payload: Bytes,
    ) -> Result<(), QueueError> {
        match &mut self.state {
            State::Native(n) => n
                .mux
                .respond(channel, id, payload)
                .map_err(QueueError::Native),
            State::Compat(_) => Err(QueueError::Unsupported),
            State::Closed => Err(QueueError::Closed),
            State::Handshake(_) | State::NodeInfo(_) => Err(QueueError::NotReady),
        }
    }

    /// The application is done with request `id` the peer sent, without answering it: see
    /// [`Mux::finish_request`](crate::proto::native::Mux::finish_request). Returns whether the
    /// request was held (false for compat connections, which have no requests).
    pub fn finish_request(&mut self, id: RequestId) -> bool {
        match &mut self.state {
            State::Native(n) => n.mux.finish_request(id),
            _ => false,
        }
    }

    /// Closes the connection. A native peer is sent a CLOSE frame with `reason` (drain
    /// [`Connection::poll_transmit`] once more); compat connections just stop, as stock does.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.last_now = self.last_now.max(now);
        if let State::Native(n) = &mut self.state {
            n.mux.close(reason);
        }
        self.fail(ConnError::LocalClose(reason.to_owned()));
    }

    fn fail(&mut self, reason: ConnError) {
        if self.closed_reason.is_some() {
            return;
        }
        if let State::Native(n) = &mut self.state {
            // Tell a native peer why (best effort). A multiplexer error has already queued its
            // RESET and a local close its CLOSE; other failures queue a RESET here. Ends the
            // peer initiated need no answer.
            let code = match &reason {
                ConnError::PeerClosed(_) | ConnError::PeerReset { .. } => None,
                ConnError::Mux(_) | ConnError::LocalClose(_) => Some(None),
                ConnError::Record(_) => Some(Some(ResetCode::RECORD_ERROR)),
                ConnError::HelloTimeout => Some(Some(ResetCode::KEEPALIVE_TIMEOUT)),
                _ => Some(Some(ResetCode::INTERNAL_ERROR)),
            };
            if let Some(code) = code {
                if let Some(code) = code {
                    n.mux.reset(code, &reason.to_string());
                }
                let mut out = std::mem::take(&mut self.outbuf);
                // Best effort: if sealing fails there is nothing left to tell the peer.
                let _ = n.transmit(self.last_now, &mut out, usize::MAX);
                self.outbuf = out;
            }
        }
        self.state = State::Closed;
        self.handshake_deadline = None;
        self.closed_reason = Some(reason.clone());
        self.events.push_back(Event::Closed(reason));
    }
}

fn native_config(config: &ConnectionConfig) -> NativeConfig {
    let channels = config
        .channels
        .iter()
        .map(|c| NativeChannelConfig {
            id: c.id,
            priority: c.priority,
            send_queue_capacity: c.send_queue_capacity,
            recv_message_capacity: c.recv_message_capacity,
            initial_window: config.native_window,
        })
        .collect();
    NativeConfig {
        channels,
        max_chunk: config.native_max_chunk,
        ping_interval: config.native_ping_interval,
        pong_timeout: config.native_pong_timeout,
        max_inflight_requests: config.max_inflight_requests,
        recv_queue_capacity: config.native_recv_queue_capacity,
        max_control_frames_per_second: config.max_control_frames_per_second,
        busy_window: config.native_busy_window,
        partial_budget: config.partial_budget.clone(),
        capabilities: config.capabilities.clone(),
    }
}

impl Compat {
    fn input(&mut self, now: Instant, data: &[u8], plain: &mut Vec<u8>) -> Result<(), ConnError> {
        plain.clear();
        self.opener.open(data, plain)?;
        self.mconn.handle_plaintext(now, plain)?;
        Ok(())
    }

    fn transmit(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        limit: usize,
        plain: &mut Vec<u8>,
    ) -> Result<(), ConnError> {
        while out.len() < limit {
            plain.clear();
            if self.mconn.poll_transmit(now, plain, COMPAT_PLAINTEXT_BATCH) == 0 {
                break;
            }
            self.sealer.seal(plain, out)?;
        }
        Ok(())
    }
}

impl Native {
    fn input(&mut self, now: Instant, mut data: &[u8]) -> Result<(), ConnError> {
        loop {
            let used = self.opener.feed(data)?;
            data = data.get(used..).unwrap_or_default();
            // Messages that arrive whole in a record are handed out as slices of it; a record
            // without one (control frames, chunks of a larger message, which are reassembled
            // by copy) is opened in the opener's own buffer, reused record after record.
            while let Some(record) = self
                .opener
                .next_record_shared(&self.pins, holds_whole_message)?
            {
                match record {
                    Opened::Shared(plaintext) => self.mux.handle_record_bytes(now, plaintext)?,
                    Opened::Lent(plaintext) => self.mux.handle_record(now, plaintext)?,
                }
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>, limit: usize) -> Result<(), ConnError> {
        // Each record's plaintext is written straight after its header in `out` and sealed
        // there: the payload is copied once, from the sender's buffer into the write buffer.
        // Nothing is reserved ahead: an idle connection's poll must not grow its buffer.
        while out.len() < limit {
            let start = self.sealer.begin(out);
            if !self.mux.poll_record(now, out, native::MAX_RECORD_PLAINTEXT) {
                out.truncate(start);
                break;
            }
            self.sealer.finish(out, start)?;
        }
        Ok(())
    }
}

/// Compression for a native connection: zstd contexts created on first use, so idle peers and
/// peers whose channels never compress pay nothing.
struct ZstdCodec {
    config: Option<CompressionConfig>,
    compress_channel: ByChannel<bool>,
    compressor: Option<Compressor>,
    decompressor: Option<Decompressor>,
}

impl ZstdCodec {
    fn new(config: &ConnectionConfig) -> Self {
        let mut compress_channel = ByChannel::new(false);
        for c in &config.channels {
            compress_channel[c.id] = c.compression == Compression::Auto;
        }
        ZstdCodec {
            config: config.compression,
            compress_channel,
            compressor: None,
            decompressor: None,
        }
    }
}

impl native::PayloadCodec for ZstdCodec {
    fn enabled(&self) -> bool {
        self.config.is_some()
    }

    fn encode(&mut self, channel: u8, payload: &Bytes) -> Option<Bytes> {
        let config = self.config.as_ref()?;
        if !self.compress_channel[channel] || payload.len() < config.min_size {
            return None;
        }
        if self.compressor.is_none() {
            self.compressor = Compressor::new(*config).ok();
        }
        let compressor = self.compressor.as_mut()?;
        // Compress straight into the buffer that becomes the message: no second copy.
        let mut frame = Vec::new();
        match compressor.compress(payload, &mut frame) {
            Ok(Outcome::Compressed) => Some(Bytes::from(frame)),
            Ok(Outcome::Skipped(_)) | Err(_) => None,
        }
    }

    fn decode(&mut self, _channel: u8, data: &[u8], cap: usize) -> Result<Bytes, String> {
        let Some(config) = &self.config else {
            return Err("compression was not negotiated".to_owned());
        };
        if self.decompressor.is_none() {
            self.decompressor = Some(Decompressor::new(config).map_err(|e| e.to_string())?);
        }
        let Some(d) = self.decompressor.as_mut() else {
            return Err("no decompressor".to_owned());
        };
        let mut out = Vec::new();
        d.decompress(data, cap, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(Bytes::from(out))
    }
}

impl super::sim::Endpoint for Connection {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        // The error is also reported as `Event::Closed`.
        let _ = Connection::handle_input(self, now, data);
    }
    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        while Connection::poll_transmit(self, now, out) {}
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        // The error is also reported as `Event::Closed`.
        let _ = Connection::handle_timeout(self, now);
    }
    fn wants_input(&self) -> bool {
        Connection::wants_input(self)
    }
}
