//! HELLO: the first frame each side sends on a native connection.
//!
//! ```text
//! header: type=0x01 | flags=0 | body length
//! body:
//!   min_version u16 | max_version u16 | features u32 | max_inflight_requests u32
//!   capability_count u8 (<= 32)
//!     capability_count x ( len u8 (1..=64) | len bytes of printable ASCII 0x21..=0x7E )
//!   channel_count u8 (<= 64)
//!     channel_count x ( id u8 | initial_window u32 (1024..=2^31-1) | max_message u32 (>= 1) )
//!   extension bytes (any; ignored by version 1)
//! ```
//!
//! Channel ids are strictly ascending (so unique); capability strings are unique. Unknown
//! `features` bits are ignored: a feature is used only when both HELLOs set it. Extension bytes
//! after the channel list are the one place a version 1 receiver tolerates unknown content, so
//! later versions can add HELLO fields without breaking version 1 peers.

use super::{FRAME_HEADER_LEN, FrameError, MAX_WINDOW, MIN_WINDOW, frame_type, put_header};

/// Most capability strings one HELLO carries.
pub const MAX_CAPABILITIES: usize = 32;
/// Longest capability string, in bytes.
pub const MAX_CAPABILITY_LEN: usize = 64;
/// Most channels one HELLO lists.
pub const MAX_HELLO_CHANNELS: usize = 64;
/// Feature bit: the sender decodes COMPRESSED messages (zstd).
pub const FEATURE_COMPRESSION: u32 = 0x0000_0001;
/// Feature bit: the sender acknowledges every CANCEL it reads with an empty RESPONSE once its
/// application is done with the request, and counts a cancelled request against its limit
/// until then (`docs/PROTOCOL.md` §10).
pub const FEATURE_CANCEL_ACK: u32 = 0x0000_0002;
/// Feature bit: the sender accepts DATA frames with the TTL flag (a message's remaining
/// time-to-live, `docs/PROTOCOL.md` §7.1). A receiver that did not set it rejects the flag, so
/// a sender writes TTL only to peers that set it.
pub const FEATURE_DEADLINE: u32 = 0x0000_0004;
/// Largest HELLO frame a version 1 sender produces (header included):
/// 4 + 12 + 1 + 32 × 65 + 1 + 64 × 9 = 2674 bytes.
pub const MAX_HELLO_FRAME_LEN: usize = FRAME_HEADER_LEN
    + 12
    + 1
    + MAX_CAPABILITIES * (1 + MAX_CAPABILITY_LEN)
    + 1
    + MAX_HELLO_CHANNELS * CHANNEL_ENTRY_LEN;

const CHANNEL_ENTRY_LEN: usize = 9;

/// What is wrong with a HELLO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The body ended before the fields it declares.
    #[error("body truncated")]
    Truncated,
    /// `min_version` is 0 or above `max_version`.
    #[error("version range {min}..={max} is empty or starts at 0")]
    BadVersionRange {
        /// Lowest version offered.
        min: u16,
        /// Highest version offered.
        max: u16,
    },
    /// More than [`MAX_CAPABILITIES`] capabilities.
    #[error("{0} capabilities exceed {MAX_CAPABILITIES}")]
    TooManyCapabilities(usize),
    /// A capability that is empty, longer than [`MAX_CAPABILITY_LEN`] or not printable ASCII.
    #[error("capability is empty, longer than {MAX_CAPABILITY_LEN} bytes, or not printable ASCII")]
    BadCapability,
    /// The same capability twice.
    #[error("duplicate capability")]
    DuplicateCapability,
    /// More than [`MAX_HELLO_CHANNELS`] channels.
    #[error("{0} channels exceed {MAX_HELLO_CHANNELS}")]
    TooManyChannels(usize),
    /// Channel ids not strictly ascending.
    #[error("channel 0x{0:02x} is out of order or repeated")]
    ChannelOrder(u8),
    /// An initial window below 1024 or above 2^31 − 1.
    #[error("channel 0x{channel:02x} initial window {window} outside 1024..=2^31-1")]
    BadWindow {
        /// The channel.
        channel: u8,
        /// The window as received.
        window: u32,
    },
    /// A maximum message size of 0.
    #[error("channel 0x{0:02x} has a zero maximum message size")]
    ZeroMaxMessage(u8),
}

/// One channel as announced in HELLO: what the announcing side accepts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloChannel {
    /// Channel id.
    pub id: u8,
    /// Bytes the peer may send on this channel before the first WINDOW_UPDATE.
    pub initial_window: u32,
    /// Largest message (after decompression) the announcing side accepts on this channel.
    pub max_message: u32,
}

/// A HELLO frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Lowest protocol version the sender speaks (≥ 1).
    pub min_version: u16,
    /// Highest protocol version the sender speaks (≥ `min_version`).
    pub max_version: u16,
    /// Feature bits (`FEATURE_*`).
    pub features: u32,
    /// Most requests the sender accepts in flight from its peer at once.
    pub max_inflight_requests: u32,
    /// Service capabilities of the sender.
    pub capabilities: Vec<String>,
    /// Channels the sender accepts, ascending by id.
    pub channels: Vec<HelloChannel>,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        let (Some(head), Some(rest)) = (self.buf.get(..n), self.buf.get(n..)) else {
            return Err(HelloError::Truncated);
        };
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, HelloError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self) -> Result<u16, HelloError> {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, HelloError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }
}

/// Whether `cap` is a valid capability string.
pub fn valid_capability(cap: &[u8]) -> bool {
    !cap.is_empty()
        && cap.len() <= MAX_CAPABILITY_LEN
        && cap.iter().all(|b| (0x21..=0x7E).contains(b))
}

impl Hello {
    /// Checks every rule a receiver enforces.
    pub fn validate(&self) -> Result<(), HelloError> {
        if self.min_version == 0 || self.min_version > self.max_version {
            return Err(HelloError::BadVersionRange {
                min: self.min_version,
                max: self.max_version,
            });
        }
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(HelloError::TooManyCapabilities(self.capabilities.len()));
        }
        for (i, c) in self.capabilities.iter().enumerate() {
            if !valid_capability(c.as_bytes()) {
                return Err(HelloError::BadCapability);
            }
            if self.capabilities.iter().take(i).any(|d| d == c) {
                return Err(HelloError::DuplicateCapability);
            }
        }
        if self.channels.len() > MAX_HELLO_CHANNELS {
            return Err(HelloError::TooManyChannels(self.channels.len()));
        }
        let mut prev: Option<u8> = None;
        for ch in &self.channels {
            if prev.is_some_and(|p| p >= ch.id) {
                return Err(HelloError::ChannelOrder(ch.id));
            }
            prev = Some(ch.id);
            if !(MIN_WINDOW..=MAX_WINDOW).contains(&ch.initial_window) {
                return Err(HelloError::BadWindow {
                    channel: ch.id,
                    window: ch.initial_window,
                });
            }
            if ch.max_message == 0 {
                return Err(HelloError::ZeroMaxMessage(ch.id));
            }
        }
        Ok(())
    }

    /// Appends the encoded HELLO frame to `out`; fails, writing nothing, if it is invalid.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.validate()?;
        let caps: usize = self.capabilities.iter().map(|c| 1 + c.len()).sum();
        let body = 12 + 1 + caps + 1 + self.channels.len() * CHANNEL_ENTRY_LEN;
        // Bounded by MAX_HELLO_FRAME_LEN after validation.
        let body_len = u16::try_from(body).map_err(|_| FrameError::BadLength {
            frame_type: frame_type::HELLO,
            len: body,
        })?;
        put_header(out, frame_type::HELLO, 0, body_len);
        out.extend_from_slice(&self.min_version.to_be_bytes());
        out.extend_from_slice(&self.max_version.to_be_bytes());
        out.extend_from_slice(&self.features.to_be_bytes());
        out.extend_from_slice(&self.max_inflight_requests.to_be_bytes());
        out.push(self.capabilities.len() as u8);
        for c in &self.capabilities {
            out.push(c.len() as u8);
            out.extend_from_slice(c.as_bytes());
        }
        out.push(self.channels.len() as u8);
        for ch in &self.channels {
            out.push(ch.id);
            out.extend_from_slice(&ch.initial_window.to_be_bytes());
            out.extend_from_slice(&ch.max_message.to_be_bytes());
        }
        Ok(())
    }

    pub(super) fn decode_body(body: &[u8]) -> Result<Self, HelloError> {
        let mut r = Reader { buf: body };
        let min_version = r.u16()?;
        let max_version = r.u16()?;
        let features = r.u32()?;
        let max_inflight_requests = r.u32()?;
        let n_caps = usize::from(r.u8()?);
        if n_caps > MAX_CAPABILITIES {
            return Err(HelloError::TooManyCapabilities(n_caps));
        }
        let mut capabilities = Vec::with_capacity(n_caps);
        for _ in 0..n_caps {
            let len = usize::from(r.u8()?);
            let bytes = r.take(len)?;
            if !valid_capability(bytes) {
                return Err(HelloError::BadCapability);
            }
            // Printable ASCII is UTF-8.
            let s = std::str::from_utf8(bytes).map_err(|_| HelloError::BadCapability)?;
            capabilities.push(s.to_owned());
        }
        let n_channels = usize::from(r.u8()?);
        if n_channels > MAX_HELLO_CHANNELS {
            return Err(HelloError::TooManyChannels(n_channels));
        }
        let mut channels = Vec::with_capacity(n_channels);
        for _ in 0..n_channels {
            let id = r.u8()?;
            let initial_window = r.u32()?;
            let max_message = r.u32()?;
            channels.push(HelloChannel {
                id,
                initial_window,
                max_message,
            });
        }
        // Whatever remains is extension data from a later version: ignored.
        let hello = Self {
            min_version,
            max_version,
            features,
            max_inflight_requests,
            capabilities,
            channels,
        };
        hello.validate()?;
        Ok(hello)
    }

    /// The announced entry for channel `id`, if any.
    pub fn channel(&self, id: u8) -> Option<&HelloChannel> {
        self.channels
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .and_then(|i| self.channels.get(i))
    }
}
