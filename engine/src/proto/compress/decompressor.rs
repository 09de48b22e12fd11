//! The receiving side: one reusable zstd context per shard, bounded before it allocates.

use std::fmt;

use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
use zstd::zstd_safe::{DCtx, DParameter};

use super::config::CompressionConfig;
use super::error::{ConfigError, DecompressError};
use super::header;

/// A zstd decompression context that accepts exactly one frame per message, as ringwire's
/// [`Compressor`](super::Compressor) writes it, and never produces more than the caller's cap.
pub struct Decompressor {
    dctx: DCtx<'static>,
    window_max: u64,
    dictionary_id: Option<u32>,
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("window_max", &self.window_max)
            .field("dictionary_id", &self.dictionary_id)
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// A decompressor without a dictionary: frames that name one are rejected.
    pub fn new(config: &CompressionConfig) -> Result<Self, ConfigError> {
        Self::build(config, None)
    }

    /// A decompressor that accepts frames made with `dictionary` (copied) or with none; frames that
    /// name any other dictionary are rejected.
    pub fn with_dictionary(
        config: &CompressionConfig,
        dictionary: &[u8],
    ) -> Result<Self, ConfigError> {
        Self::build(config, Some(dictionary))
    }

    fn build(config: &CompressionConfig, dictionary: Option<&[u8]>) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut dctx = DCtx::try_create().ok_or(ConfigError::Allocation)?;
        let zstd = |code| ConfigError::Zstd(zstd::zstd_safe::get_error_name(code));
        // The checks in `decompress` already bound the window; zstd enforces this too on any
        // path that would allocate a window buffer of its own.
        dctx.set_parameter(DParameter::WindowLogMax(config.window_log_max))
            .map_err(zstd)?;
        let dictionary_id = match dictionary {
            None => None,
            Some(dictionary) => {
                let id = zstd::zstd_safe::get_dict_id_from_dict(dictionary)
                    .ok_or(ConfigError::Dictionary)?;
                dctx.load_dictionary(dictionary).map_err(zstd)?;
                Some(id.get())
            }
        };
        Ok(Self {
            dctx,
            window_max: config.window_max(),
            dictionary_id,
        })
    }

    /// The ID of the dictionary this side accepts, if any.
    pub fn dictionary_id(&self) -> Option<u32> {
        self.dictionary_id
    }

    /// Decompresses `input`, which must be exactly one zstd frame declaring a content size of at
    /// most `cap` bytes, and appends the content to `out`. On error `out` is unchanged; it never
    /// grows by more than `cap` bytes, and its memory grows only after every header check passed.
    pub fn decompress(
        &mut self,
        input: &[u8],
        cap: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), DecompressError> {
        let header = header::peek(input)?;
        let declared = match zstd::zstd_safe::get_frame_content_size(input) {
            Ok(Some(declared)) => declared,
            Ok(None) => return Err(DecompressError::MissingContentSize),
            Err(_) => return Err(DecompressError::BadHeader),
        };
        let size = usize::try_from(declared)
            .ok()
            .filter(|&size| size <= cap)
            .ok_or(DecompressError::TooLarge { declared, cap })?;
        if let Some(window) = header.window
            && window > self.window_max
        {
            return Err(DecompressError::WindowTooLarge {
                window,
                max: self.window_max,
            });
        }
        if let Some(id) = zstd::zstd_safe::get_dict_id_from_frame(input)
            && Some(id.get()) != self.dictionary_id
        {
            return Err(DecompressError::UnknownDictionary(id.get()));
        }
        let frame_len = zstd::zstd_safe::find_frame_compressed_size(input).map_err(frame_error)?;
        if let Some(extra) = input.len().checked_sub(frame_len)
            && extra > 0
        {
            return Err(DecompressError::TrailingBytes(extra));
        }

        let start = out.len();
        out.try_reserve_exact(size)
            .map_err(|_| DecompressError::Allocation(size))?;
        // zstd writes until its buffer is full and checks the declared size only at the end, so
        // it gets a slice of exactly `size` bytes: a frame with more content fails after `size`.
        out.resize(start + size, 0);
        let target = out.get_mut(start..).unwrap_or_default();
        match self.dctx.decompress(target, input) {
            Ok(written) if written == size => Ok(()),
            Ok(_) => {
                out.truncate(start);
                Err(DecompressError::Corrupt(
                    "content size does not match the frame header",
                ))
            }
            Err(code) => {
                out.truncate(start);
                // The frame is known to be complete here, so every error is about its content.
                Err(DecompressError::Corrupt(zstd::zstd_safe::get_error_name(
                    code,
                )))
            }
        }
    }
}

/// Maps an error from measuring the frame: the input ends early, or a block header is invalid.
fn frame_error(code: usize) -> DecompressError {
    if zstd::zstd_safe::is_error_kind(code, ZSTD_ErrorCode::ZSTD_error_srcSize_wrong) {
        DecompressError::Truncated
    } else {
        DecompressError::Corrupt(zstd::zstd_safe::get_error_name(code))
    }
}
