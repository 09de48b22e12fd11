//! zstd transport compression with hard bounds on what a peer can make us do.
//!
//! # Policy
//!
//! - **Sender** ([`Compressor`], one per shard, its zstd context reused for every message):
//!   messages shorter than [`CompressionConfig::min_size`] are sent raw, because the frame and
//!   table overhead eats the gain and a context call costs more than copying them. A message is
//!   sent compressed only when the frame is at most `len × max_ratio` bytes, otherwise the caller
//!   sends it raw; zstd is handed room for that budget, so it can stop as soon as it overflows.
//!   Every frame declares its content size, carries no checksum (the record layer already
//!   authenticates every byte) and never needs a window above
//!   [`CompressionConfig::window_log_max`].
//! - **Receiver** ([`Decompressor`], one per shard): before any allocation it reads the frame
//!   header and rejects anything that is not exactly one zstd frame: skippable frames, a missing
//!   content size, a declared size above the caller's cap (the channel's receive limit), a window
//!   above `window_log_max`, a dictionary it was not given, and trailing bytes. Only then does it
//!   reserve the declared size, and zstd decodes into exactly that many bytes: a frame that lies
//!   about its size fails after producing at most the size it declared, which is within the cap.
//! - Dictionaries are optional and per channel: both ends build their context with the same
//!   dictionary ([`Compressor::with_dictionary`], [`Decompressor::with_dictionary`]). Only real
//!   zstd dictionaries with a nonzero ID are accepted, so every frame names the dictionary it needs
//!   and a mismatch is an error, never silently wrong output.
//!
//! There is deliberately no entropy pre-check before compressing: zstd already gives up on random
//! input at 1.5–7 GB/s for 16 KiB–1 MiB messages (its match finder strides over input without
//! matches and stores such blocks raw), so sampling a byte histogram would save at most about
//! 0.2 ms per MiB of random data, and it would wrongly skip data whose bytes look random but
//! repeat, such as keys and hashes.
//!
//! Nothing here performs I/O, and no input can make it panic.

mod compressor;
mod config;
mod decompressor;
mod error;
mod header;

pub use compressor::{Compressor, Outcome, SkipReason};
pub use config::CompressionConfig;
pub use decompressor::Decompressor;
pub use error::{CompressError, ConfigError, DecompressError};
