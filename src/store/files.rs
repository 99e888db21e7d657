//! File primitives of the store: atomic writes, checksums and the directory lock.

use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one:
/// write a temporary sibling, fsync it, rename it over `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Reads a file of the index: it must be a regular file (not a pipe, device or
/// directory, which could block or never end) of `size` bytes, or of at most `max`
/// bytes when `size` is `None`. Nothing past that is read.
pub(crate) fn read_regular(path: &Path, size: Option<u64>, max: u64) -> Result<Vec<u8>> {
    let (f, len) = crate::file::open_regular(path).map_err(|e| match e {
        Error::InvalidArgument(_) => Error::corrupt(path, "not a regular file"),
        e => e,
    })?;
    match size {
        Some(n) if len != n => return Err(Error::corrupt(path, format!("{len} bytes, manifest says {n}"))),
        None if len > max => return Err(Error::corrupt(path, format!("{len} bytes, more than the {max} allowed"))),
        _ => {}
    }
    crate::file::read_all(path, f, len, &[])
}

/// How long an open waits for a directory's lock before `Error::Locked`.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);

/// An exclusive advisory lock on `<dir>/LOCK`, held for the life of an open index, so
/// two handles (in one process or two) never write the same directory.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        Self::take(dir, true)
    }

    /// A shared lock, for readers: any number of them, and no writer meanwhile. Needs
    /// only read access: a missing LOCK is created where the directory allows it, and
    /// the directory itself is locked where it does not.
    pub(crate) fn acquire_shared(dir: &Path) -> Result<Self> {
        Self::take(dir, false)
    }

    fn take(dir: &Path, exclusive: bool) -> Result<Self> {
        let path = dir.join("LOCK");
        // Non-blocking: a named pipe in its place would block the open forever.
        let open = |write: bool| {
            OpenOptions::new()
                .read(!write)
                .write(write)
                .create(write)
                .truncate(false)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
        };
        let (file, whole_dir) = match open(exclusive) {
            // An index copied without its LOCK (a backup, read-only media): a reader
            // creates it where it may; where it may not, nobody can write the directory
            // either, and the reader locks the directory itself.
            Err(e) if !exclusive && e.kind() == std::io::ErrorKind::NotFound => match open(true) {
                Ok(f) => (f, false),
                Err(_) => (File::open(dir).map_err(|e| Error::io(dir, e))?, true),
            },
            r => (r.map_err(|e| Error::io(&path, e))?, false),
        };
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !(meta.is_file() || whole_dir && meta.is_dir()) {
            return Err(Error::corrupt(&path, "not a regular file"));
        }
        let mode = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        Self::lock(file, dir, mode)
    }

    fn lock(file: File, dir: &Path, mode: libc::c_int) -> Result<Self> {
        let path = dir.join("LOCK");
        // A lock held a moment longer than its handle: a process forked by any thread of
        // the host keeps a copy of the descriptor, and so the lock, until it execs. Such
        // a holder lets go within milliseconds, so a held lock is tried again for up to
        // LOCK_PATIENCE before the open is refused.
        let started = std::time::Instant::now();
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) } == 0 {
                let waited = started.elapsed();
                if !waited.is_zero() && waited >= std::time::Duration::from_millis(5) {
                    crate::log::emit(crate::log::Level::Info, || {
                        format!("waited {} ms for the lock of {}", waited.as_millis(), dir.display())
                    });
                }
                return Ok(DirLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(Error::io(&path, err));
            }
            if started.elapsed() >= LOCK_PATIENCE {
                return Err(Error::Locked(dir.to_path_buf()));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_let_go_within_moments_is_taken_and_a_held_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        // A copy of the descriptor, as a forked child holds until it execs.
        let copy = first._file.try_clone().unwrap();
        drop(first);
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(copy);
        });
        DirLock::acquire(dir.path()).expect("taken once the copy is closed");
        holder.join().unwrap();

        let _held = DirLock::acquire(dir.path()).unwrap();
        let t = std::time::Instant::now();
        assert!(matches!(DirLock::acquire(dir.path()), Err(Error::Locked(_))));
        assert!(t.elapsed() >= LOCK_PATIENCE);
    }

    #[test]
    fn second_lock_on_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DirLock::acquire(dir.path()), Err(Error::Locked(_))));
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn readers_share_a_directory_and_keep_writers_out() {
        let dir = tempfile::tempdir().unwrap();
        drop(DirLock::acquire(dir.path()).unwrap()); // creates LOCK
        let a = DirLock::acquire_shared(dir.path()).unwrap();
        let b = DirLock::acquire_shared(dir.path()).unwrap();
        assert!(matches!(DirLock::acquire(dir.path()), Err(Error::Locked(_))));
        drop((a, b));
        let w = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DirLock::acquire_shared(dir.path()), Err(Error::Locked(_))));
        drop(w);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!tmp_path(&p).exists());
    }
}
