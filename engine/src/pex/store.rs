//! The address book file on disk: read when a node starts, written atomically by the PEX
//! service (every [`crate::pex::PexConfig::save_interval`] while the book changed, and when
//! the node stops). The writes go through `rt::fs::write_atomic` — a temporary file in the same
//! directory, synced, renamed over the book, the directory synced — so a crash at any moment
//! leaves either the old book or the new one, never a mix.
//!
//! A missing file is an empty book. A file that cannot be read or is not an address book is an
//! error naming the file, and the node does not start (as stock, which panics): the operator
//! moves it away or deletes it; nothing is discarded behind their back. Entries that parse but
//! cannot be used are left out with a warning (see `book::persist`).

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use crate::rt::fs;

use super::book::AddrBookFile;

/// Largest address book file read: a full stock book (20,480 addresses) is about 10 MB.
pub const MAX_BOOK_FILE_SIZE: u64 = 64 << 20;

/// Why an address book file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BookFileError {
    /// The file exists but could not be read.
    #[error("address book {}: cannot read it: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not an address book (or is larger than [`MAX_BOOK_FILE_SIZE`]).
    #[error(
        "address book {}: not an address book file ({reason}); move it away or delete it to \
         start with an empty book",
        path.display()
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file could not be written.
    #[error("address book {}: cannot write it: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl AddrBookFile {
    /// Reads the address book file at `path`; `Ok(None)` when there is none.
    pub fn load(path: impl AsRef<Path>) -> Result<Option<Self>, BookFileError> {
        let path = path.as_ref();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(BookFileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_BOOK_FILE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| BookFileError::Read {
                path: path.to_owned(),
                source,
            })?;
        if bytes.len() as u64 > MAX_BOOK_FILE_SIZE {
            return Err(BookFileError::Format {
                path: path.to_owned(),
                reason: format!("larger than {MAX_BOOK_FILE_SIZE} bytes"),
            });
        }
        Self::from_json(&bytes)
            .map(Some)
            .map_err(|e| BookFileError::Format {
                path: path.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Writes the file to `path` atomically (mode 0644, as stock), creating missing
    /// directories (mode 0700).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), BookFileError> {
        let path = path.as_ref();
        fs::write_atomic(path, &self.to_json(), 0o644, true).map_err(|source| {
            BookFileError::Write {
                path: path.to_owned(),
                source,
            }
        })
    }

    /// Removes the temporary files that writers of `path` killed mid-write left behind;
    /// returns how many. Call it only while no other process writes `path` (a node does, as
    /// it starts).
    pub fn remove_stale_temporary_files(path: impl AsRef<Path>) -> usize {
        fs::remove_stale_temps(path.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_empty_corrupt_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/addrbook.json");
        assert!(AddrBookFile::load(&path).unwrap().is_none());
        let book = AddrBookFile::from_json(br#"{"key": "abc", "addrs": []}"#).unwrap();
        book.save(&path).unwrap();
        assert_eq!(AddrBookFile::load(&path).unwrap(), Some(book));
        std::fs::write(&path, b"{\"key\": \"abc\", \"addrs\": [").unwrap();
        let err = AddrBookFile::load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("not an address book file"), "{err}");
        // A directory where the file should be cannot be read.
        let err = AddrBookFile::load(dir.path()).unwrap_err();
        assert!(matches!(err, BookFileError::Read { .. }), "{err}");
    }
}
