//! One error type for the whole library; the C ABI maps it to `AvgStatus` in one place.

use std::borrow::Cow;
use std::path::PathBuf;

/// Result of every fallible libavg call.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, with the context a host needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required pointer argument was NULL (C ABI only).
    #[error("null pointer: {0}")]
    NullPointer(Cow<'static, str>),
    /// A string argument was not valid UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(Cow<'static, str>),
    /// An argument is out of range or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A vector had the wrong length for this index.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    /// A vector held NaN or an infinity.
    #[error("non-finite value in {what} at position {position}")]
    NonFinite { what: String, position: usize },
    /// An image id is already in the index.
    #[error("duplicate image id {0}")]
    DuplicateId(u64),
    /// An image id is not in the index.
    #[error("unknown image id {0}")]
    UnknownId(u64),
    /// The operating system refused a file operation.
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A file of the index is damaged, truncated or inconsistent with the manifest.
    #[error("corrupt index file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// The index was written by a newer format version than this library reads.
    #[error("index format version {found} is newer than the supported version {supported}")]
    UnsupportedVersion { found: u32, supported: u32 },
    /// The configuration given at open differs from the one the index was created with.
    #[error("config mismatch: {0}")]
    ConfigMismatch(String),
    /// Another handle (in this or another process) holds the index directory.
    #[error("index directory {0} is locked by another handle")]
    Locked(PathBuf),
    /// A call came before the step it depends on (for example search before training).
    #[error("wrong state: {0}")]
    WrongState(String),
    /// The requested compute device is unavailable or unsupported by this build.
    #[error("device error: {0}")]
    Device(String),
    /// A tensor computation failed.
    #[error("model error: {0}")]
    Model(String),
    /// The caller's output buffer is too small; `needed` says how large it must be.
    #[error("buffer too small: need {needed}, got {got}")]
    BufferTooSmall { needed: usize, got: usize },
    /// A documented limit was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A photo could not be decoded (corrupt, truncated, unsupported format or too large).
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The progress callback asked to stop.
    #[error("cancelled by the progress callback")]
    Cancelled,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), reason: reason.into() }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Model(candle_message(&e))
    }
}

/// A Candle error as a message for users: with `RUST_BACKTRACE` set in the host's
/// environment Candle attaches a backtrace (kilobytes, with build paths), left out here.
fn candle_message(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => candle_message(inner),
        E::Context { inner, context } => format!("{context}: {}", candle_message(inner)),
        E::WithPath { inner, path } => format!("{}: {}", path.display(), candle_message(inner)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_backtraces_stay_out_of_messages() {
        let inner = candle_core::Error::Msg("shape mismatch".into());
        let e = candle_core::Error::WithBacktrace {
            inner: Box::new(inner.with_path("/tmp/w.safetensors").context("loading")),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(e.to_string().len() > 200, "the backtrace is there to leave out");
        let msg = Error::from(e).to_string();
        assert_eq!(msg, "model error: loading: /tmp/w.safetensors: shape mismatch");
    }
}
