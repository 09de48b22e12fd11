//! The sending side: one reusable zstd context per shard.

use std::fmt;
use std::io::Cursor;

use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
use zstd::zstd_safe::{CCtx, CParameter, ResetDirective};

use super::config::CompressionConfig;
use super::error::{CompressError, ConfigError};

/// What [`Compressor::compress`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A zstd frame was appended to the output; send it flagged as compressed.
    Compressed,
    /// Nothing was appended; send the message raw.
    Skipped(SkipReason),
}

/// Why a message is sent raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The message is shorter than [`CompressionConfig::min_size`].
    TooSmall,
    /// The frame would exceed `len × max_ratio` bytes.
    Incompressible,
}

/// A zstd compression context with ringwire's frame settings; one per shard, reused for every
/// message. Frames declare their content size, carry no checksum and name their dictionary.
pub struct Compressor {
    cctx: CCtx<'static>,
    config: CompressionConfig,
    dictionary_id: Option<u32>,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("config", &self.config)
            .field("dictionary_id", &self.dictionary_id)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor without a dictionary.
    pub fn new(config: CompressionConfig) -> Result<Self, ConfigError> {
        Self::build(config, None)
    }

    /// A compressor that uses `dictionary` (copied), a zstd dictionary with a nonzero ID such as
    /// `zstd --train` writes. The receiving side must be built with the same dictionary.
    pub fn with_dictionary(
        config: CompressionConfig,
        dictionary: &[u8],
    ) -> Result<Self, ConfigError> {
        Self::build(config, Some(dictionary))
    }

    fn build(config: CompressionConfig, dictionary: Option<&[u8]>) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut cctx = CCtx::try_create().ok_or(ConfigError::Allocation)?;
        let zstd = |code| ConfigError::Zstd(zstd::zstd_safe::get_error_name(code));
        for parameter in [
            CParameter::CompressionLevel(config.level),
            CParameter::ContentSizeFlag(true),
            CParameter::ChecksumFlag(false),
            CParameter::DictIdFlag(true),
            // Never write a frame the peer's window limit would refuse. zstd still shrinks the
            // window to the message when the message is smaller.
            CParameter::WindowLog(config.window_log_max),
        ] {
            cctx.set_parameter(parameter).map_err(zstd)?;
        }
        let dictionary_id = match dictionary {
            None => None,
            Some(dictionary) => {
                let id = zstd::zstd_safe::get_dict_id_from_dict(dictionary)
                    .ok_or(ConfigError::Dictionary)?;
                cctx.load_dictionary(dictionary).map_err(zstd)?;
                Some(id.get())
            }
        };
        Ok(Self {
            cctx,
            config,
            dictionary_id,
        })
    }

    /// The settings this compressor was built with.
    pub fn config(&self) -> &CompressionConfig {
        &self.config
    }

    /// The ID of the dictionary frames are compressed with, if any.
    pub fn dictionary_id(&self) -> Option<u32> {
        self.dictionary_id
    }

    /// Compresses `input` into one zstd frame appended to `out`, or appends nothing and says why
    /// the message should be sent raw. On [`Outcome::Skipped`] and on error `out` is unchanged.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Outcome, CompressError> {
        if input.len() < self.config.min_size {
            return Ok(Outcome::Skipped(SkipReason::TooSmall));
        }
        let budget = self.config.budget(input.len());
        let start = out.len();
        out.try_reserve_exact(budget)
            .map_err(|_| CompressError::Allocation(budget))?;
        // zstd writes after the cursor into the spare capacity: usually exactly `budget` bytes, so
        // a frame that outgrows it stops early with `dstSize_tooSmall`. A larger spare capacity
        // left by earlier use only means the size check below decides instead.
        let mut cursor = Cursor::new(&mut *out);
        cursor.set_position(start as u64);
        let result = self.cctx.compress2(&mut cursor, input);
        match result {
            Ok(written) if written <= budget => Ok(Outcome::Compressed),
            Ok(_) => {
                out.truncate(start);
                Ok(Outcome::Skipped(SkipReason::Incompressible))
            }
            Err(code) => {
                out.truncate(start);
                // A failed one-shot call leaves the frame open; start the next one clean.
                let _ = self.cctx.reset(ResetDirective::SessionOnly);
                if zstd::zstd_safe::is_error_kind(code, ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall)
                {
                    Ok(Outcome::Skipped(SkipReason::Incompressible))
                } else {
                    Err(CompressError::Zstd(zstd::zstd_safe::get_error_name(code)))
                }
            }
        }
    }
}
