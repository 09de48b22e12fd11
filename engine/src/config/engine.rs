//! `[engine]`: how ringwire runs — I/O driver, shard count, native protocol, compression.

use super::error::Problems;
use crate::proto::compress::CompressionConfig;
use crate::proto::native::frame::hello::{MAX_CAPABILITIES, MAX_CAPABILITY_LEN};
use crate::rt::Driver;

/// Most shard threads a configuration may ask for.
pub const MAX_SHARDS: usize = 1024;

section! {
    /// `[engine]`: runtime and protocol choices.
    pub struct EngineConfig in "engine" {
        /// I/O driver: "auto" (io_uring when available, else epoll), "io_uring" (fail when
        /// unavailable) or "epoll".
        driver: Driver = Driver::Auto,
        /// Shard threads, each with its own peers and event loop. 0: one per CPU core.
        shards: usize = 0,
        /// Offer ringwire's native protocol to peers that advertise it. Stock peers always
        /// get the stock protocol.
        native: bool = true,
        /// Service capabilities announced to native peers (for example "archive"); at most
        /// 32, each 1 to 64 printable ASCII characters.
        capabilities: Vec<String> = Vec::new(),
        /// Offer zstd compression on native connections; each channel decides what it
        /// compresses.
        compression: bool = true,
        /// zstd level: 1 (fastest) to 22 (smallest); negative levels are faster still.
        compression_level: i32 = 3,
        /// Messages shorter than this many bytes are sent uncompressed.
        compression_min_size: usize = 256,
        /// A message is sent compressed only when that saves at least this fraction of it:
        /// compressed size <= size * compression_max_ratio. From 0 (exclusive) to 1.
        compression_max_ratio: f64 = 0.9,
    }
}

impl EngineConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        const S: &str = "engine";
        p.at_most(S, "shards", self.shards, MAX_SHARDS);
        if self.capabilities.len() > MAX_CAPABILITIES {
            p.push(
                S,
                "capabilities",
                format!(
                    "at most {MAX_CAPABILITIES} entries, got {}",
                    self.capabilities.len()
                ),
            );
        }
        for (i, cap) in self.capabilities.iter().enumerate() {
            let printable = cap.bytes().all(|b| (0x21..=0x7e).contains(&b));
            if cap.is_empty() || cap.len() > MAX_CAPABILITY_LEN || !printable {
                p.push(
                    S,
                    "capabilities",
                    format!(
                        "entry {i} ({cap:?}) must be 1 to {MAX_CAPABILITY_LEN} printable ASCII \
                         characters without spaces"
                    ),
                );
            }
            if self.capabilities[..i].contains(cap) {
                p.push(
                    S,
                    "capabilities",
                    format!("entry {i} ({cap:?}) is listed twice"),
                );
            }
        }
        let (min, max) = (
            zstd::zstd_safe::min_c_level(),
            zstd::zstd_safe::max_c_level(),
        );
        p.within(S, "compression_level", self.compression_level, min, max);
        // NaN fails the comparison, so it is refused too.
        if !(self.compression_max_ratio > 0.0 && self.compression_max_ratio <= 1.0) {
            p.push(
                S,
                "compression_max_ratio",
                format!(
                    "must be above 0 and at most 1, got {}",
                    self.compression_max_ratio
                ),
            );
        }
    }

    /// The compression settings for connections, `None` when compression is off.
    /// `window_log_max` comes from `[limits]`.
    pub fn compression_config(&self, window_log_max: u32) -> Option<CompressionConfig> {
        self.compression.then_some(CompressionConfig {
            level: self.compression_level,
            min_size: self.compression_min_size,
            max_ratio: self.compression_max_ratio,
            window_log_max,
        })
    }
}
