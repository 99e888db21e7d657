//! C entry points for training and for the vokens training produces.

use super::index::handle;
use super::{c_out, guard, AvgError, AvgStatus};
use crate::{limits, Error, Progress, TokenizerTrainConfig};
use std::ffi::c_void;

/// Called after every training step with the host's `user_data`; return false to stop
/// the training cleanly. Runs on the thread that called the training function.
pub type AvgProgressFn = Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const Progress) -> bool>;

/// Codebook statistics of an index's current vokens.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgTokenizerStats {
    /// M.
    pub levels: usize,
    /// Fraction of the N codes used at each level; entries past `levels` are 0.
    pub usage_per_level: [f32; limits::MAX_VOKEN_LEN],
    /// Images whose M codes another image shares (told apart by their last voken).
    pub collided_images: usize,
    pub largest_collision_group: usize,
}

/// Fills `config` with the defaults: 20 epochs, batch 256, lr 1e-3, weights 1 / 0.25 / 1,
/// alignment on, shared codebook, hidden 1024, 10 k-means iterations, seed 42.
/// Thread-safety: any thread.
///
/// # Safety
/// `config` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn avg_tokenizer_train_config_default(
    config: *mut TokenizerTrainConfig,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        *c_out(config, "config")? = TokenizerTrainConfig::default();
        Ok(())
    })
}

/// Trains the tokenizer on the images and captions in the index (with alignment on,
/// every caption needs a text vector), gives every image its M+1 vokens, and saves the
/// index with the tokenizer weights. `progress` (may be NULL) is called after each step;
/// when it returns false the call returns `AVG_STATUS_CANCELLED` and the index keeps its
/// previous tokenizer and vokens. `config` NULL means the defaults.
///
/// Ownership: `config` is borrowed for the call; `user_data` is passed back untouched.
/// Thread-safety: any thread; other calls on the index (adds, reads, searches) may run
/// meanwhile. Two trainings of one index at once are allowed; the later one wins.
///
/// # Safety
/// `index` is NULL or a live handle; `config` NULL or valid; `progress` NULL or a
/// function that is safe to call with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn avg_train_tokenizer(
    index: *const super::AvgIndex,
    config: *const TokenizerTrainConfig,
    progress: AvgProgressFn,
    user_data: *mut c_void,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let index = handle(index)?;
        let cfg = config.as_ref().cloned().unwrap_or_default();
        index.train_tokenizer(&cfg, |p| progress.is_none_or(|f| f(user_data, p)))?;
        Ok(())
    })
}

/// Copies the M+1 vokens of image `image_id` to `out` (`cap` entries) and writes M+1 to
/// `*len_out`; `AVG_STATUS_WRONG_STATE` before the tokenizer is trained.
/// Thread-safety: any thread.
///
/// # Safety
/// `out` is NULL or writable for `cap` values; `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_vokens(
    index: *const super::AvgIndex,
    image_id: u64,
    out: *mut u32,
    cap: usize,
    len_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let len_out = c_out(len_out, "len_out")?;
        let vokens = handle(index)?.vokens(image_id)?;
        *len_out = vokens.len();
        if cap < vokens.len() {
            return Err(Error::BufferTooSmall { needed: vokens.len(), got: cap });
        }
        std::slice::from_raw_parts_mut(c_out(out, "out")?, vokens.len()).copy_from_slice(&vokens);
        Ok(())
    })
}

/// Writes the codebook usage and collision counts of the current vokens to `*stats`;
/// `AVG_STATUS_WRONG_STATE` before the tokenizer is trained. Thread-safety: any thread.
///
/// # Safety
/// `stats` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_tokenizer_stats(
    index: *const super::AvgIndex,
    stats: *mut AvgTokenizerStats,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let stats = c_out(stats, "stats")?;
        let s = handle(index)?.tokenizer_stats()?;
        let mut usage = [0f32; limits::MAX_VOKEN_LEN];
        usage[..s.usage_per_level.len()].copy_from_slice(&s.usage_per_level);
        *stats = AvgTokenizerStats {
            levels: s.usage_per_level.len(),
            usage_per_level: usage,
            collided_images: s.collided_images,
            largest_collision_group: s.largest_collision_group,
        };
        Ok(())
    })
}
