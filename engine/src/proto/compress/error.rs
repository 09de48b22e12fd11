//! Errors of the compression layer: bad settings, sender failures, rejected frames.

use thiserror::Error;

/// A [`CompressionConfig`](super::CompressionConfig) or dictionary that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// The compression level is outside what the linked zstd supports.
    #[error("compression level {level} is outside zstd's range {min}..={max}")]
    Level {
        /// The configured level.
        level: i32,
        /// The smallest level zstd accepts.
        min: i32,
        /// The largest level zstd accepts.
        max: i32,
    },
    /// `max_ratio` is not in `(0, 1]`.
    #[error("max_ratio {0} must be greater than 0 and at most 1")]
    MaxRatio(f64),
    /// `window_log_max` is outside the range zstd supports.
    #[error("window_log_max {window_log} is outside {min}..={max}")]
    WindowLog {
        /// The configured value.
        window_log: u32,
        /// The smallest accepted value.
        min: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// The dictionary is not a zstd dictionary with a nonzero ID (raw content is refused because
    /// its frames would not name it, so a mismatch could go unnoticed).
    #[error("not a zstd dictionary with a nonzero dictionary ID")]
    Dictionary,
    /// zstd could not allocate a context.
    #[error("zstd could not allocate a context")]
    Allocation,
    /// zstd refused a parameter or the dictionary.
    #[error("zstd refused the setting: {0}")]
    Zstd(&'static str),
}

/// The sender could not compress a message (it may still send it raw).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompressError {
    /// The output buffer could not grow to the frame budget.
    #[error("could not reserve {0} bytes for the compressed frame")]
    Allocation(usize),
    /// zstd failed for a reason other than the frame outgrowing its budget.
    #[error("zstd failed to compress: {0}")]
    Zstd(&'static str),
}

/// A received frame was rejected; the peer sent something a conforming sender never writes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecompressError {
    /// The input ends before the frame does.
    #[error("compressed frame is truncated")]
    Truncated,
    /// The input does not start with the zstd frame magic number.
    #[error("not a zstd frame (magic {0:#010x})")]
    NotZstd(u32),
    /// A skippable frame, which carries no content and is never sent.
    #[error("skippable zstd frames are not accepted")]
    Skippable,
    /// The frame header is malformed (reserved bit set, or zstd could not parse it).
    #[error("malformed zstd frame header")]
    BadHeader,
    /// The frame does not declare its content size, which every sender writes.
    #[error("zstd frame does not declare its content size")]
    MissingContentSize,
    /// The declared content size is above the caller's cap.
    #[error("zstd frame declares {declared} bytes, above the cap of {cap}")]
    TooLarge {
        /// The content size the frame declares.
        declared: u64,
        /// The caller's cap.
        cap: usize,
    },
    /// The frame requires a larger window than allowed.
    #[error("zstd frame needs a {window}-byte window, above the limit of {max}")]
    WindowTooLarge {
        /// The window the frame requires, in bytes.
        window: u64,
        /// The configured limit, in bytes.
        max: u64,
    },
    /// The frame names a dictionary this side was not given.
    #[error("zstd frame needs dictionary {0}, which this channel does not have")]
    UnknownDictionary(u32),
    /// Bytes follow the frame (another frame or garbage).
    #[error("{0} bytes follow the zstd frame")]
    TrailingBytes(usize),
    /// The frame's content is corrupt or does not match its declared size.
    #[error("corrupt zstd frame: {0}")]
    Corrupt(&'static str),
    /// The output buffer could not grow to the declared size (which is within the cap).
    #[error("could not reserve {0} bytes for the decompressed message")]
    Allocation(usize),
}
