//! Reading the files a host names (photos, model checkpoints) and the index's own: a
//! regular file only, never more than a stated size, and an allocation that fails is an
//! error rather than an abort. A desktop app that walks a home directory meets named
//! pipes (an open or read blocks for ever), links to `/dev/zero` (a read never ends) and
//! sparse files of gigabytes; each is refused before a byte is read.

use crate::limits::{MAX_MODEL_JSON_BYTES, MAX_MODEL_WEIGHTS_BYTES};
use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` without blocking (so a named pipe returns at once) and checks it is a
/// regular file; returns it with its length.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64)> {
    let f = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::InvalidArgument(format!(
            "{}: not a regular file (a pipe, device, socket or directory is never read)",
            path.display()
        )));
    }
    Ok((f, meta.len()))
}

/// [`open_regular`], and the file must hold at most `max` bytes.
pub(crate) fn open_at_most(path: &Path, max: u64) -> Result<(File, u64)> {
    let (f, len) = open_regular(path)?;
    if len > max {
        return Err(Error::Limit(format!("{}: {len} bytes, more than the {max} such a file may have", path.display())));
    }
    Ok((f, len))
}

/// The bytes of the regular file `path`, of at most `max` bytes.
pub(crate) fn read_at_most(path: &Path, max: u64) -> Result<Vec<u8>> {
    let (f, len) = open_at_most(path, max)?;
    read_all(path, f, len, &[])
}

/// A checkpoint's safetensors file, whose header must account for its every byte before
/// the tensors are read: a truncated, padded or sparse file of zeros is refused after
/// its header.
pub(crate) fn read_safetensors(path: &Path) -> Result<Vec<u8>> {
    let (mut f, len) = open_at_most(path, MAX_MODEL_WEIGHTS_BYTES)?;
    let bad = |why: String| Error::corrupt(path, format!("not a safetensors file: {why}"));
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|_| bad(format!("{len} bytes")))?;
    let n = u64::from_le_bytes(n);
    if n == 0 || n > MAX_MODEL_JSON_BYTES || 8 + n > len {
        return Err(bad(format!("a header of {n} bytes in a file of {len}")));
    }
    let mut head = vec![0u8; 8 + n as usize];
    head[..8].copy_from_slice(&(n.to_le_bytes()));
    f.read_exact(&mut head[8..]).map_err(|e| Error::io(path, e))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&head[8..]).map_err(|e| bad(e.to_string()))?;
    let data_end = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if 8 + n + data_end != len {
        return Err(bad(format!("its header accounts for {} bytes, the file has {len}", 8 + n + data_end)));
    }
    read_all(path, f, len, &head)
}

/// Reads the rest of an open regular file of `len` bytes whose first bytes, `head`, were
/// read already; a file that grew or shrank meanwhile is an error, and so is memory that
/// cannot be had.
pub(crate) fn read_all(path: &Path, f: File, len: u64, head: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    usize::try_from(len)
        .ok()
        .and_then(|n| bytes.try_reserve_exact(n).ok())
        .ok_or_else(|| Error::Limit(format!("{}: no memory for its {len} bytes", path.display())))?;
    bytes.extend_from_slice(head);
    f.take(len - head.len() as u64 + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 != len {
        return Err(Error::corrupt(path, format!("changed while it was read ({} of {len} bytes)", bytes.len())));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo touches no memory of ours.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for p in [fifo.as_path(), zero.as_path(), dir.path(), Path::new("/dev/urandom")] {
            let e = read_at_most(p, 1 << 20).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(ref m) if m.contains("not a regular file")), "{p:?}: {e}");
        }
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = dir.path().join("sparse.jpg");
        File::create(&sparse).unwrap().set_len(1 << 40).unwrap(); // 1 TiB, no blocks
        assert!(matches!(read_at_most(&sparse, 1 << 30), Err(Error::Limit(_))));
        std::fs::write(dir.path().join("small"), b"abc").unwrap();
        assert_eq!(read_at_most(&dir.path().join("small"), 3).unwrap(), b"abc");
        assert!(matches!(read_at_most(&dir.path().join("missing"), 3), Err(Error::Io { .. })));
    }
}
