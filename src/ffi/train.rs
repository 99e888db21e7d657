//! C entry points for training and for the vokens training produces.

use super::index::handle;
use super::{c_out, c_str, guard, AvgError, AvgStatus};
use crate::{limits, Error, GeneratorTrainConfig, Progress, TokenizerTrainConfig};
use std::ffi::{c_char, c_void};

/// Called after every training step (or batch of photos added) with the host's
/// `user_data`; return false to stop cleanly. Runs on the thread that called the training function.
pub type AvgProgressFn = Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const Progress) -> bool>;

/// The host's progress callback (NULL: never stop) as the Rust API takes it.
pub(crate) unsafe fn host_callback(progress: AvgProgressFn, user_data: *mut c_void) -> impl FnMut(&Progress) -> bool {
    // SAFETY: the caller of the training entry point vouches for `progress` and `user_data`.
    move |p| progress.is_none_or(|f| unsafe { f(user_data, p) })
}

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
/// Memory: on glibc, while any training runs, malloc keeps freed memory in the process
/// for reuse (its mmap, trim and top-pad settings change process-wide); when the last
/// training ends they are set to glibc's own ceilings and defaults and the heap is
/// trimmed, giving the memory back.
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
        index.train_tokenizer(&cfg, host_callback(progress, user_data))?;
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

/// How to train the generator; start from `avg_generator_train_config_default` and set
/// `model_dir`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgGeneratorTrainConfig {
    /// A Hugging Face checkpoint directory (config.json, tokenizer.json,
    /// model.safetensors): a T5, or a BERT-family encoder in front of a voken decoder.
    pub model_dir: *const c_char,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip; 0 turns it off.
    pub max_grad_norm: f64,
    pub gen_weight: f32,
    /// The discriminative loss on (true) or off (the ablation).
    pub dis: bool,
    pub dis_weight: f32,
    /// Beam size of the discriminative loss's candidates.
    pub beam_size: usize,
    /// Share of each batch (0 to 1] that also gets the discriminative loss.
    pub dis_fraction: f32,
    pub dis_temperature: f32,
    /// Code embeddings start from the tokenizer's codebook (true) or at random.
    pub init_from_codebook: bool,
    /// Voken decoder size for a BERT backbone.
    pub decoder_layers: usize,
    pub decoder_d_model: usize,
    pub max_text_tokens: usize,
    pub seed: u64,
    /// Also learn the texts attached to images (`avg_index_attach_texts`) as
    /// pseudo-queries of them (true), or captions alone.
    pub index_texts: bool,
    /// Give the generator a vector memory slot (true): captions enter with their text
    /// vectors, queries with theirs (`AvgSearchOptions.query_vectors`, or the image
    /// encoder's), and images with no text at all are learned from their own vectors.
    pub index_vectors: bool,
    /// An indexing pass: the current generator goes on learning the images added since
    /// it trained, replaying as many pairs of images it learned before, for `epochs`;
    /// installed when the pass ends (a cancelled pass leaves the previous generator
    /// serving). `AVG_STATUS_WRONG_STATE` without a trained generator; nothing new to
    /// learn is OK and trains nothing. `model_dir` may then be NULL.
    pub incremental: bool,
}

/// Fills `config` with the defaults (10 epochs, batch 64, lr 1e-3, weight decay 0.01,
/// clip 1, L_dis on the whole batch with beam 5 and temperature 0.5, codebook init, a 2-layer 256-wide
/// decoder, 32 text tokens, seed 42, attached texts learned, vector slot on) and
/// `model_dir` NULL, which must be set.
/// Thread-safety: any thread.
///
/// # Safety
/// `config` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn avg_generator_train_config_default(
    config: *mut AvgGeneratorTrainConfig,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let d = GeneratorTrainConfig::default();
        *c_out(config, "config")? = AvgGeneratorTrainConfig {
            model_dir: std::ptr::null(),
            epochs: d.epochs,
            batch_size: d.batch_size,
            learning_rate: d.learning_rate,
            weight_decay: d.weight_decay,
            max_grad_norm: d.max_grad_norm,
            gen_weight: d.gen_weight,
            dis: d.dis,
            dis_weight: d.dis_weight,
            beam_size: d.beam_size,
            dis_fraction: d.dis_fraction,
            dis_temperature: d.dis_temperature,
            init_from_codebook: d.init_from_codebook,
            decoder_layers: d.decoder_layers,
            decoder_d_model: d.decoder_d_model,
            max_text_tokens: d.max_text_tokens,
            seed: d.seed,
            index_texts: d.index_texts,
            index_vectors: d.index_vectors,
            incremental: d.incremental,
        };
        Ok(())
    })
}

/// Trains the generator on every caption and attached text in the index, each paired
/// with its image's vokens
/// (the tokenizer must be trained: else `AVG_STATUS_WRONG_STATE`). After each epoch the
/// model so far answers searches and is saved in the index directory; reopening needs
/// neither retraining nor `model_dir`. When `progress` (may be NULL) returns false the
/// call returns `AVG_STATUS_CANCELLED` and the last completed epoch's model stays (or the
/// previous generator, if no epoch completed).
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
    index: *const super::AvgIndex,
    config: *const AvgGeneratorTrainConfig,
    progress: AvgProgressFn,
    user_data: *mut c_void,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let index = handle(index)?;
        let c = config.as_ref().ok_or(Error::NullPointer("config"))?;
        let cfg = GeneratorTrainConfig {
            model_dir: match c.incremental && c.model_dir.is_null() {
                true => Default::default(),
                false => c_str(c.model_dir, "config.model_dir")?.into(),
            },
            epochs: c.epochs,
            batch_size: c.batch_size,
            learning_rate: c.learning_rate,
            weight_decay: c.weight_decay,
            max_grad_norm: c.max_grad_norm,
            gen_weight: c.gen_weight,
            dis: c.dis,
            dis_weight: c.dis_weight,
            beam_size: c.beam_size,
            dis_fraction: c.dis_fraction,
            dis_temperature: c.dis_temperature,
            init_from_codebook: c.init_from_codebook,
            decoder_layers: c.decoder_layers,
            decoder_d_model: c.decoder_d_model,
            max_text_tokens: c.max_text_tokens,
            seed: c.seed,
            index_texts: c.index_texts,
            index_vectors: c.index_vectors,
            incremental: c.incremental,
        };
        index.train_generator(&cfg, host_callback(progress, user_data))?;
        Ok(())
    })
}
