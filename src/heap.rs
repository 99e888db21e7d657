//! Keeps freed memory in the process while models train.
//!
//! glibc's malloc hands large freed blocks straight back to the kernel: blocks above
//! its mmap threshold are unmapped, a free top of heap above its trim threshold is
//! trimmed, and a thread arena's 64 MiB heaps are unmapped once empty unless the top pad
//! asks to keep them. A training step frees and reallocates the same few hundred MB of
//! tensors every step, so on glibc each step page-faulted all of them in again: a
//! quarter of a t5-small step on the CPU. While any training runs, large blocks come
//! from the heap and no heap is trimmed or unmapped; when the last training ends, the
//! thresholds go to the ceilings glibc's own adjustment reaches (32 and 64 MiB), the
//! mmap count limit and top pad back to their defaults, and the heap is trimmed, so the
//! memory goes back to the system. Elsewhere than glibc this does nothing.
//!
//! A host that manages malloc itself turns this off with `set_heap_tuning(false)`.

use std::sync::Mutex;

static HEAP: Mutex<Heap> = Mutex::new(Heap { trainings: 0, applied: false, enabled: true });

/// The trainings running and whether the settings are in force.
struct Heap {
    trainings: usize,
    /// The retaining settings are in force (set by a training that started while
    /// `enabled`); they are restored when the last training ends.
    applied: bool,
    enabled: bool,
}

impl Heap {
    /// A training starts: whether to apply the retaining settings now.
    fn enter(&mut self) -> bool {
        self.trainings += 1;
        let apply = self.enabled && !self.applied;
        self.applied |= apply;
        apply
    }

    /// A training ends: whether to restore glibc's settings now.
    fn leave(&mut self) -> bool {
        self.trainings -= 1;
        let restore = self.trainings == 0 && self.applied;
        self.applied &= !restore;
        restore
    }
}

fn heap() -> std::sync::MutexGuard<'static, Heap> {
    HEAP.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether trainings change glibc's malloc settings for the process while they run (on
/// by default). Turning it off takes effect once the trainings running now have ended;
/// turning it on, at the next training that starts. Safe from any thread.
pub fn set_heap_tuning(enabled: bool) {
    heap().enabled = enabled;
}

/// Held for the length of a training call.
pub(crate) struct Retain(());

pub(crate) fn retain() -> Retain {
    let mut h = heap();
    if h.enter() {
        glibc::retain();
    }
    Retain(())
}

impl Drop for Retain {
    fn drop(&mut self) {
        let mut h = heap();
        if h.leave() {
            glibc::release();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use libc::{mallopt, M_MMAP_MAX, M_MMAP_THRESHOLD, M_TOP_PAD, M_TRIM_THRESHOLD};

    const MIB: i32 = 1 << 20;

    pub(super) fn retain() {
        // SAFETY: mallopt only sets malloc's tuning parameters, under malloc's own lock.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_TOP_PAD, 64 * MIB);
        }
    }

    pub(super) fn release() {
        // SAFETY: as above; malloc_trim only returns free memory to the system.
        unsafe {
            mallopt(M_MMAP_MAX, 65536);
            mallopt(M_TOP_PAD, 128 << 10);
            mallopt(M_MMAP_THRESHOLD, 32 * MIB);
            mallopt(M_TRIM_THRESHOLD, 64 * MIB);
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub(super) fn retain() {}
    pub(super) fn release() {}
}

#[cfg(test)]
mod tests {
    use super::Heap;

    #[test]
    fn settings_apply_once_and_restore_when_the_last_training_ends() {
        let mut h = Heap { trainings: 0, applied: false, enabled: true };
        assert!(h.enter());
        assert!(!h.enter(), "a second training finds them applied");
        h.enabled = false; // turned off meanwhile: restored when both have ended
        assert!(!h.leave());
        assert!(h.leave());
        assert!(!h.enter() && !h.leave(), "off: nothing applied, nothing restored");
        h.enabled = true;
        assert!(h.enter() && h.leave());
    }
}
