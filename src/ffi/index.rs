//! C entry points for opening, saving and changing an index.

use super::types::{handle, read_sized, write_sized, AvgIndex, AvgIndexConfig};
use super::{c_out, c_slice, c_str, c_strs, guard, matrix_len, AvgError, AvgStatus};
use crate::{Error, Index, NewCaption, NewImage, Result};
use std::ffi::c_char;

/// Fills `config` with the library's defaults, those of the Rust API's
/// `IndexConfig::default()` (src/index/mod.rs), and no image encoder. `size` is `sizeof(AvgIndexConfig)` (it becomes `config->struct_size`).
/// Thread-safety: any thread.
///
/// # Safety
/// `config` is NULL or valid for `size` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn avg_index_config_default(
    config: *mut AvgIndexConfig,
    size: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { write_sized(config, size, AvgIndexConfig::default(), "config") })
}

/// Opens the index in directory `path`, creating it (and the directory) when it holds
/// none and `config` is non-NULL. For an existing index a non-NULL `config` must match
/// the stored dim, N and M (else `AVG_STATUS_CONFIG_MISMATCH`); NULL opens it as stored,
/// on the CPU, with the image encoder it recorded where that directory still holds the
/// same checkpoint (else without one, and a warning in the log). The directory is locked while the handle lives: a second open of it, in
/// this process or another, fails with `AVG_STATUS_LOCKED` after waiting up to 200 ms
/// for the lock (a process forked meanwhile holds it until it execs).
///
/// Ownership: on success `*out` receives a handle the caller frees with `avg_index_free`;
/// `path` and `config` are only borrowed during the call.
/// Thread-safety: any thread.
///
/// # Safety
/// Pointers are NULL or valid as described.
#[no_mangle]
pub unsafe extern "C" fn avg_index_open(
    path: *const c_char,
    config: *const AvgIndexConfig,
    out: *mut *mut AvgIndex,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { open_handle(path, config, out, false) })
}

/// `avg_index_open` and `avg_index_open_read_only`.
///
/// # Safety
/// As `avg_index_open`.
unsafe fn open_handle(
    path: *const c_char,
    config: *const AvgIndexConfig,
    out: *mut *mut AvgIndex,
    read_only: bool,
) -> Result<()> {
    // SAFETY: the caller's contract.
    let (out, path) = unsafe { (c_out(out, "out")?, c_str(path, "path")?) };
    let config = match config.is_null() {
        true => None,
        // SAFETY: a non-NULL config is a host's struct, as the caller vouches.
        false => Some(unsafe { read_sized(config, "config")?.to_rust()? }),
    };
    let inner =
        if read_only { Index::open_read_only(path, config.as_ref())? } else { Index::open(path, config.as_ref())? };
    *out = Box::into_raw(Box::new(AvgIndex { inner }));
    Ok(())
}

/// Opens an existing index for searching and reading only, under a shared lock: any
/// number of read-only handles, in this process or others, may hold a directory at
/// once, and no writing handle meanwhile (either side gets `AVG_STATUS_LOCKED`). Needs
/// read permission only. Adds, removals, trainings and saves on the handle fail with
/// `AVG_STATUS_WRONG_STATE`. `config` as for `avg_index_open` (it never creates one:
/// a directory with no index is `AVG_STATUS_INVALID_ARGUMENT`).
///
/// Ownership, thread-safety: as `avg_index_open`; free the handle with `avg_index_free`.
///
/// # Safety
/// Pointers are NULL or valid as described.
#[no_mangle]
pub unsafe extern "C" fn avg_index_open_read_only(
    path: *const c_char,
    config: *const AvgIndexConfig,
    out: *mut *mut AvgIndex,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { open_handle(path, config, out, true) })
}

/// Closes an index and releases its directory lock. Changes not saved with
/// `avg_index_save` are discarded. NULL is a no-op.
///
/// Ownership: takes `index`. Thread-safety: no other call on `index` may be running or
/// follow.
///
/// # Safety
/// `index` is NULL or a handle from `avg_index_open` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn avg_index_free(index: *mut AvgIndex) {
    if !index.is_null() {
        // Dropping cannot fail in a way a host could act on; a panic here must not unwind
        // into C, and leaking is the safe answer to one.
        // SAFETY: a handle from `avg_index_open`, freed once, as the caller vouches.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(unsafe { Box::from_raw(index) })));
    }
}

/// Makes every image and caption added so far durable. A crash or kill during the save
/// leaves the previous save readable. Thread-safety: any thread; adds and reads go on
/// during a save, and what they add goes into the next one.
///
/// # Safety
/// `index` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn avg_index_save(index: *const AvgIndex, err: *mut *mut AvgError) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { handle(index)?.save() })
}

/// Adds `count` images: `ids[i]`, the `dim` floats at `vectors + i * dim`, and the
/// optional external key `keys[i]` (`keys` itself may be NULL, and so may any entry).
/// All or none: a duplicate id, a wrong `dim`, a NaN or infinity, or bad UTF-8 rejects
/// the whole batch. Pointers may be NULL when `count` is 0.
///
/// Ownership: everything is copied; nothing is kept. Thread-safety: any thread.
///
/// # Safety
/// `ids` holds `count` values, `vectors` `count * dim`, `keys` (when non-NULL) `count`
/// pointers, each NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn avg_index_add_images(
    index: *const AvgIndex,
    ids: *const u64,
    keys: *const *const c_char,
    vectors: *const f32,
    count: usize,
    dim: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        crate::limits::check_batch(count)?;
        let expected = index.config().dim;
        if dim != expected {
            return Err(Error::DimensionMismatch { expected, got: dim });
        }
        let ids = c_slice(ids, count, "ids")?;
        let vectors = c_slice(vectors, matrix_len(count, dim)?, "vectors")?;
        let keys = optional_keys(keys, count)?;
        let images: Vec<NewImage> = ids
            .iter()
            .zip(keys)
            .enumerate()
            .map(|(i, (&id, key))| NewImage { id, key, vector: &vectors[i * dim..(i + 1) * dim] })
            .collect();
        index.add_images(&images)
    })
}

/// Appends `count` captions to image `image_id`: the text `texts[i]` and, when `vectors`
/// is non-NULL, its text vector at `vectors + i * dim` (`dim` must then equal the index
/// dimension; it is ignored when `vectors` is NULL). With `vectors` NULL and an image
/// encoder configured, the text vectors are computed by its text tower. All or none.
///
/// Ownership: everything is copied. Thread-safety: any thread.
///
/// # Safety
/// `texts` holds `count` NUL-terminated strings; `vectors` is NULL or holds `count * dim` floats.
#[no_mangle]
pub unsafe extern "C" fn avg_index_add_captions(
    index: *const AvgIndex,
    image_id: u64,
    texts: *const *const c_char,
    vectors: *const f32,
    count: usize,
    dim: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        crate::limits::check_batch(count)?;
        let texts = c_slice(texts, count, "texts")?;
        let vectors = if vectors.is_null() {
            None
        } else {
            let expected = index.config().dim;
            if dim != expected {
                return Err(Error::DimensionMismatch { expected, got: dim });
            }
            Some(c_slice(vectors, matrix_len(count, dim)?, "vectors")?)
        };
        let captions = texts
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                Ok(NewCaption {
                    text: c_str(t, format!("texts[{i}]"))?,
                    vector: vectors.map(|v| &v[i * dim..(i + 1) * dim]),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        index.add_captions(image_id, &captions)
    })
}

/// Attaches `count` texts to image `image_id` for indexing: words that describe it
/// (tags, an album or file name, its own caption). `avg_train_generator` teaches the
/// generator to write the image's vokens from each, so that photos without training
/// captions are found by text. With the index's image encoder, each text also gets a
/// text vector, and the dense scan (and every route weighing the dot product) scores
/// the image by the best of its vector's and its texts' similarities to the query: a
/// photo titled "beach" is found by "beach". Not training captions: they never train
/// the tokenizer. All or none; an empty text is `AVG_STATUS_INVALID_ARGUMENT`.
///
/// Ownership: everything is copied. Thread-safety: any thread.
///
/// # Safety
/// `texts` holds `count` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn avg_index_attach_texts(
    index: *const AvgIndex,
    image_id: u64,
    texts: *const *const c_char,
    count: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        crate::limits::check_batch(count)?;
        let texts = c_strs(c_slice(texts, count, "texts")?, "texts")?;
        index.attach_texts(image_id, &texts)
    })
}

/// Removes an image and its captions (`AVG_STATUS_UNKNOWN_ID` when absent).
/// Thread-safety: any thread.
///
/// # Safety
/// `index` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn avg_index_remove_image(
    index: *const AvgIndex,
    image_id: u64,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { handle(index)?.remove_image(image_id) })
}

/// `count` optional keys from a NULL-able array of NULL-able strings.
///
/// # Safety
/// `keys` is NULL or holds `count` pointers, each NULL or a NUL-terminated string.
pub(super) unsafe fn optional_keys<'a>(keys: *const *const c_char, count: usize) -> Result<Vec<Option<&'a str>>> {
    if keys.is_null() {
        return Ok(vec![None; count]);
    }
    // SAFETY: the caller's contract.
    let keys = unsafe { c_slice(keys, count, "keys") }?;
    keys.iter()
        .enumerate()
        // SAFETY: the caller's contract, for each key.
        .map(|(i, &p)| if p.is_null() { Ok(None) } else { unsafe { c_str(p, format!("keys[{i}]")) }.map(Some) })
        .collect()
}
