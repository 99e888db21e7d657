//! What the library tells its host besides results and errors: opens and saves, trainings
//! finished, and things it worked around (an old format, a lock it waited for). Off until
//! the host sets a logger; messages are only formatted when one would receive them.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

/// How much a message matters; a logger receives its level and those above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Per-operation detail (each search's time).
    Debug = 0,
    /// Opens, saves, trainings finished.
    Info = 1,
    /// Something the library worked around, which the host may want to fix.
    Warn = 2,
}

/// A host's logger: called on the thread that did the work, so it must be quick and
/// thread-safe.
pub type Logger = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// Below every level: nothing is logged.
const OFF: u8 = u8::MAX;
static MIN: AtomicU8 = AtomicU8::new(OFF);
static LOGGER: RwLock<Option<Logger>> = RwLock::new(None);

/// Sends messages of `min` and above to `logger`; `None` turns logging off (the default).
/// Process-wide; replaces any logger set before, once the messages it is receiving now
/// are delivered: after this returns, the previous logger is never called again. A
/// logger must not call this itself (it would wait for its own message).
pub fn set_logger(logger: Option<Logger>, min: Level) {
    let on = logger.is_some();
    *LOGGER.write() = logger;
    MIN.store(if on { min as u8 } else { OFF }, Relaxed);
}

/// Sends `message()` to the logger if one takes `level`.
pub(crate) fn emit(level: Level, message: impl FnOnce() -> String) {
    if (level as u8) < MIN.load(Relaxed) {
        return;
    }
    // Called under the lock, so that `set_logger` waits for messages in flight; recursive,
    // so that a logger may call into the library, which may log again.
    if let Some(logger) = LOGGER.read_recursive().as_ref() {
        logger(level, &message());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn a_logger_gets_its_level_and_above_until_it_is_removed() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        set_logger(Some(Arc::new(move |l, m: &str| sink.lock().push((l, m.to_owned())))), Level::Info);
        emit(Level::Debug, || unreachable!("not formatted below the level"));
        emit(Level::Warn, || "careful".into());
        set_logger(None, Level::Debug);
        emit(Level::Warn, || unreachable!("not formatted without a logger"));
        // Other tests of this binary may log meanwhile, at Info and above only.
        let got = got.lock();
        assert!(got.contains(&(Level::Warn, "careful".to_owned())) && got.iter().all(|(l, _)| *l >= Level::Info));
    }
}
