//! C entry points for training and for the vokens training produces.

use super::types::{
    handle, host_callback, read_sized, write_sized, AvgGeneratorTrainConfig, AvgIndex, AvgProgressFn,
    AvgTokenizerStats, AvgTokenizerTrainConfig,
};
use super::{c_out, c_write, guard, AvgError, AvgStatus};
use crate::Error;
use std::ffi::c_void;

/// Fills `config` with the library's defaults, those of the Rust API's
/// `TokenizerTrainConfig::default()` (src/quantizer/train.rs). `size` is
/// `sizeof(AvgTokenizerTrainConfig)` (it becomes `config->struct_size`).
/// Thread-safety: any thread.
///
/// # Safety
/// `config` is NULL or valid for `size` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn avg_tokenizer_train_config_default(
    config: *mut AvgTokenizerTrainConfig,
    size: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { write_sized(config, size, AvgTokenizerTrainConfig::default(), "config") })
}

/// Trains the tokenizer on the images and captions in the index (with alignment on,
/// every caption needs a text vector), gives every image its M+1 vokens, and saves the
/// index with the tokenizer weights. `progress` (may be NULL) is called after each step;
/// when it returns false the call returns `AVG_STATUS_CANCELLED` and the index keeps its
/// previous tokenizer and vokens. `config` NULL means the defaults.
///
/// With a generator trained, the new tokenizer and its vokens wait, saved, for a
/// generator trained on them (`avg_index_has_pending_tokenizer`): until an
/// `avg_train_generator` without `incremental` ends, searches, `avg_index_image_vokens`
/// and `avg_index_tokenizer_stats` use the previous ones and the previous generator.
///
/// Ownership: `config` is borrowed for the call; `user_data` is passed back untouched.
/// Thread-safety: any thread; other calls on the index (adds, reads, searches) may run
/// meanwhile. Two trainings of one index at once are allowed; the later one wins.
///
/// Memory: on glibc, while any training runs, malloc keeps freed memory in the process
/// for reuse (its mmap, trim and top-pad settings change process-wide); when the last
/// training ends they are set to glibc's own ceilings and defaults and the heap is
/// trimmed, giving the memory back. Training peaks at about 19 times the codebooks'
/// bytes (N x dim x 4, times M without a shared codebook): an index shape that needs
/// more than the machine has available is refused up front with `AVG_STATUS_LIMIT`.
///
/// # Safety
/// `index` is NULL or a live handle; `config` NULL or valid; `progress` NULL or a
/// function that is safe to call with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn avg_train_tokenizer(
    index: *const AvgIndex,
    config: *const AvgTokenizerTrainConfig,
    progress: AvgProgressFn,
    user_data: *mut c_void,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        let cfg = match config.is_null() {
            true => AvgTokenizerTrainConfig::default(),
            false => read_sized(config, "config")?,
        };
        index.train_tokenizer(&cfg.to_rust(), host_callback(progress, user_data))?;
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
    index: *const AvgIndex,
    image_id: u64,
    out: *mut u32,
    cap: usize,
    len_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let len_out = c_out(len_out, "len_out")?;
        let vokens = handle(index)?.vokens(image_id)?;
        *len_out = vokens.len();
        if cap < vokens.len() {
            return Err(Error::BufferTooSmall { needed: vokens.len(), got: cap });
        }
        c_write(out, &vokens, "out")
    })
}

/// Writes the codebook usage and collision counts of the current vokens to `*stats`;
/// `AVG_STATUS_WRONG_STATE` before the tokenizer is trained. `size` is
/// `sizeof(AvgTokenizerStats)` (it becomes `stats->struct_size`).
/// Thread-safety: any thread.
///
/// # Safety
/// `stats` is NULL or writable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn avg_index_tokenizer_stats(
    index: *const AvgIndex,
    stats: *mut AvgTokenizerStats,
    size: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        // The output is checked (and cleared) before the index is asked.
        write_sized(stats, size, AvgTokenizerStats::default(), "stats")?;
        let s = handle(index)?.tokenizer_stats()?;
        write_sized(stats, size, (&s).into(), "stats")
    })
}

/// Writes to `*pending_out` whether a retrained tokenizer's vokens wait for a generator
/// trained on them (see `avg_train_tokenizer`). Thread-safety: any thread.
///
/// # Safety
/// `pending_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_has_pending_tokenizer(
    index: *const AvgIndex,
    pending_out: *mut bool,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        *c_out(pending_out, "pending_out")? = handle(index)?.has_pending_tokenizer();
        Ok(())
    })
}

/// Fills `config` with the library's defaults, those of the Rust API's
/// `GeneratorTrainConfig::default()` (src/generator/config.rs), and `model_dir` NULL,
/// which must be set. `size` is `sizeof(AvgGeneratorTrainConfig)` (it
/// becomes `config->struct_size`).
/// Thread-safety: any thread.
///
/// # Safety
/// `config` is NULL or valid for `size` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn avg_generator_train_config_default(
    config: *mut AvgGeneratorTrainConfig,
    size: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { write_sized(config, size, AvgGeneratorTrainConfig::default(), "config") })
}

/// Trains the generator on every caption and attached text in the index, each paired
/// with its image's vokens
/// (the tokenizer must be trained: else `AVG_STATUS_WRONG_STATE`). After each epoch the
/// model so far answers searches and is saved in the index directory; reopening needs
/// neither retraining nor `model_dir`. `progress` (may be NULL) is called after each
/// step, and about once a second while the texts are prepared (step 0, no losses); when
/// it returns false the call returns `AVG_STATUS_CANCELLED` and the last completed
/// epoch's model stays (or the previous generator, if no epoch completed).
///
/// With a pending tokenizer (`avg_index_has_pending_tokenizer`), a training without
/// `incremental` learns its vokens and installs them with its model only when it ends: a
/// cancelled one leaves the previous generator serving, and `resume` restarts it.
///
/// Ownership: `config` and its strings are borrowed for the call. Thread-safety: any
/// thread; searches and adds may run meanwhile.
///
/// Memory: as `avg_train_tokenizer`.
///
/// # Safety
/// As `avg_train_tokenizer`; `config` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn avg_train_generator(
    index: *const AvgIndex,
    config: *const AvgGeneratorTrainConfig,
    progress: AvgProgressFn,
    user_data: *mut c_void,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        let cfg = read_sized(config, "config")?.to_rust()?;
        index.train_generator(&cfg, host_callback(progress, user_data))?;
        Ok(())
    })
}
