//! The payload codec hook: how compression plugs into the multiplexer.
//!
//! The multiplexer carries a COMPRESSED flag per message and calls a [`PayloadCodec`] at two
//! points: when a message is about to start on the wire (encode, only when both HELLOs set the
//! compression feature) and when a COMPRESSED message has been reassembled (decode, bounded by
//! the channel's maximum message size). The connection layer supplies the real codec (zstd with
//! per-shard contexts); [`NoCodec`] disables compression.

use bytes::Bytes;

/// Encodes and decodes message payloads (compression).
pub trait PayloadCodec {
    /// Whether this side offers compression in its HELLO (and accepts COMPRESSED messages).
    fn enabled(&self) -> bool {
        true
    }

    /// Encodes `payload` for `channel`. `None` sends it as it is (compression off for the
    /// channel, too small, or incompressible); the multiplexer also sends it as it is when the
    /// result is not smaller.
    fn encode(&mut self, channel: u8, payload: &Bytes) -> Option<Bytes>;

    /// Decodes a COMPRESSED payload received on `channel`, producing at most `cap` bytes; more
    /// is an error, and so is any malformed input.
    fn decode(&mut self, channel: u8, data: &[u8], cap: usize) -> Result<Bytes, String>;
}

/// No compression: offers nothing and accepts no COMPRESSED message.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCodec;

impl PayloadCodec for NoCodec {
    fn enabled(&self) -> bool {
        false
    }

    fn encode(&mut self, _channel: u8, _payload: &Bytes) -> Option<Bytes> {
        None
    }

    fn decode(&mut self, _channel: u8, _data: &[u8], _cap: usize) -> Result<Bytes, String> {
        Err("compression was not negotiated".to_owned())
    }
}
