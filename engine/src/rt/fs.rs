//! Durable files: a file is replaced whole or not at all, even when the process is killed or the
//! machine loses power part way through a write. The node key (`config::NodeKeyFile`) and the
//! PEX address book are written this way.
//!
//! The bytes go to a fresh temporary file beside the target (`.NAME.tmp-PID-N`, so a rename
//! never crosses a file system), are synced, and the temporary file is then renamed over the
//! target (or hard-linked to it when an existing file must not be replaced); finally the
//! directory is synced so the new entry survives a power loss. A process killed before the
//! rename leaves the old file intact and a temporary file behind, which
//! [`remove_stale_temps`] clears.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically: a temporary file created with `mode` beside it, synced,
/// then moved into place — renamed over `path` when `replace`, otherwise hard-linked, which
/// fails with [`io::ErrorKind::AlreadyExists`] when a file is at `path`. The directory is
/// synced afterwards (a file system that refuses to sync a directory is tolerated). Missing
/// parent directories are created with mode 0700.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = parent_dir(path);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let (tmp, mut file) = create_temp(&dir, file_name, mode)?;
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            if replace {
                fs::rename(&tmp, path)
            } else {
                fs::hard_link(&tmp, path)
            }
        });
    drop(file);
    if !replace || result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the new directory entry durable; some file systems refuse to sync a directory.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the temporary files [`write_atomic`] leaves beside `path` when a process dies
/// between creating one and moving it into place; returns how many it removed. Call it only
/// while no other process writes `path`.
pub(crate) fn remove_stale_temps(path: &Path) -> usize {
    let Some(file_name) = path.file_name() else {
        return 0;
    };
    let prefix = temp_prefix(file_name);
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = name
            .as_encoded_bytes()
            .starts_with(prefix.as_encoded_bytes());
        if stale && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.tmp-`: how the temporary files for `NAME` begin.
fn temp_prefix(file_name: &OsStr) -> OsString {
    let mut name = OsString::from(".");
    name.push(file_name);
    name.push(".tmp-");
    name
}

/// Creates a new, empty temporary file with `mode` in `dir`.
fn create_temp(dir: &Path, file_name: &OsStr, mode: u32) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = temp_prefix(file_name);
        name.push(format!("{}-{n}", std::process::id()));
        let tmp = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary file name available")))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/book.json");
        write_atomic(&path, b"first", 0o644, true).unwrap();
        write_atomic(&path, b"second", 0o644, true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Without replace, an existing file stays and the write fails.
        let err = write_atomic(&path, b"third", 0o600, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("book.json")]);
    }

    #[test]
    fn stale_temporary_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.json");
        fs::write(&path, b"kept").unwrap();
        fs::write(dir.path().join(".book.json.tmp-1-0"), b"x").unwrap();
        fs::write(dir.path().join(".book.json.tmp-99-7"), b"x").unwrap();
        fs::write(dir.path().join(".other.json.tmp-1-0"), b"x").unwrap();
        assert_eq!(remove_stale_temps(&path), 2);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                OsString::from(".other.json.tmp-1-0"),
                OsString::from("book.json")
            ]
        );
        assert_eq!(remove_stale_temps(&dir.path().join("missing/x.json")), 0);
    }
}
