//! C entry points for opening, saving and changing an index.

use super::types::{handle, host_callback, read_sized, write_sized, AvgIndex, AvgIndexConfig, AvgProgressFn};
use super::{c_out, c_slice, c_str, c_strs, guard, matrix_len, AvgError, AvgStatus};
use crate::{Error, ImageSource, Index, NewCaption, NewImage, NewPhoto, Result};
use std::ffi::{c_char, c_void};

/// Fills `config` with the defaults: dim 512, N 1024, M 4, device "cpu", no image encoder.
/// `size` is `sizeof(AvgIndexConfig)` (it becomes `config->struct_size`).
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
    guard(err, || write_sized(config, size, AvgIndexConfig::default(), "config"))
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
    guard(err, || open_handle(path, config, out, false))
}

/// `avg_index_open` and `avg_index_open_read_only`.
unsafe fn open_handle(
    path: *const c_char,
    config: *const AvgIndexConfig,
    out: *mut *mut AvgIndex,
    read_only: bool,
) -> Result<()> {
    let out = c_out(out, "out")?;
    let path = c_str(path, "path")?;
    let config = match config.is_null() {
        true => None,
        false => Some(read_sized(config, "config")?.to_rust()?),
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
    guard(err, || open_handle(path, config, out, true))
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
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(Box::from_raw(index))));
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
    guard(err, || handle(index)?.save())
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
    guard(err, || {
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
    guard(err, || {
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
    guard(err, || {
        let index = handle(index)?;
        crate::limits::check_batch(count)?;
        let texts = c_strs(c_slice(texts, count, "texts")?, "texts")?;
        index.attach_texts(image_id, &texts)
    })
}

/// Adds `count` photos from files, embedded by the index's image encoder (JPEG, PNG or
/// WebP; EXIF orientation applied): photo `ids[i]` from the file `paths[i]`, with the
/// optional external key `keys[i]` (`keys` may be NULL, and so may any entry).
/// A path must name a regular file (a link to one is followed) of at most
/// `AVG_MAX_PHOTO_FILE_BYTES` (1 GiB), decoded to at most 16384 pixels a side. Anything
/// else is refused without reading it, so that walking a home directory never blocks or
/// fills memory: a named pipe, device (`/dev/zero`), socket or directory is
/// `AVG_STATUS_INVALID_ARGUMENT`, a larger file (a sparse one too) `AVG_STATUS_LIMIT`.
/// Memory: photos are decoded one per core at a time, and the largest accepted (16384
/// pixels square) takes about 1.5 GB while decoded, so the peak is about that times the
/// cores (`avg_set_threads` does not bound it); ordinary photos take tens of MB each.
/// Each photo succeeds or fails alone: `statuses[i]` receives its status (a file that is
/// missing is `AVG_STATUS_IO`, one that cannot be decoded `AVG_STATUS_INVALID_IMAGE`, a
/// taken id `AVG_STATUS_DUPLICATE_ID`), and when `item_errors` is non-NULL,
/// `item_errors[i]` receives NULL or an error object naming the file, which the caller
/// frees with `avg_error_free`. `*added_out` receives the number added.
/// `progress` (may be NULL) is called after every batch of 32 photos with stage
/// `AVG_STAGE_IMAGES`; returning false stops: the photos not reached get
/// `AVG_STATUS_CANCELLED` and the call returns `AVG_STATUS_CANCELLED`. Otherwise the call
/// returns `AVG_STATUS_OK` even when some photos failed (should the model fail, the
/// photos of that batch and after get `AVG_STATUS_MODEL`); it fails as a whole, with
/// `statuses` untouched and nothing added, for bad arguments or without an image
/// encoder (`AVG_STATUS_WRONG_STATE`).
///
/// Ownership: everything is borrowed for the call; `user_data` is passed back untouched.
/// Thread-safety: any thread; searches and other adds go on meanwhile.
///
/// # Safety
/// `ids` and `paths` hold `count` values, `keys` is NULL or holds `count` pointers (each
/// NULL or a string); `statuses` is writable for `count` values, `item_errors` NULL or
/// writable for `count` pointers; `added_out` is NULL or writable; `progress` is NULL or
/// safe to call with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn avg_index_add_image_files(
    index: *const AvgIndex,
    ids: *const u64,
    keys: *const *const c_char,
    paths: *const *const c_char,
    count: usize,
    statuses: *mut AvgStatus,
    item_errors: *mut *mut AvgError,
    added_out: *mut usize,
    progress: AvgProgressFn,
    user_data: *mut c_void,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let paths = c_slice(paths, count, "paths")?;
        let sources = c_strs(paths, "paths")?.into_iter().map(|p| ImageSource::File(std::path::Path::new(p))).collect();
        add_photos(index, ids, keys, sources, statuses, item_errors, added_out, host_callback(progress, user_data))
    })
}

/// Adds `count` photos from encoded bytes (`lens[i]` bytes at `data[i]`), otherwise as
/// `avg_index_add_image_files`; an item's error names its position.
///
/// # Safety
/// As `avg_index_add_image_files`, with `data` and `lens` holding `count` values and
/// each `data[i]` readable for `lens[i]` bytes.
#[no_mangle]
pub unsafe extern "C" fn avg_index_add_image_bytes(
    index: *const AvgIndex,
    ids: *const u64,
    keys: *const *const c_char,
    data: *const *const u8,
    lens: *const usize,
    count: usize,
    statuses: *mut AvgStatus,
    item_errors: *mut *mut AvgError,
    added_out: *mut usize,
    progress: AvgProgressFn,
    user_data: *mut c_void,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let data = c_slice(data, count, "data")?;
        let lens = c_slice(lens, count, "lens")?;
        let sources = data
            .iter()
            .zip(lens)
            .enumerate()
            .map(|(i, (&d, &n))| c_slice(d, n, format!("data[{i}]")).map(ImageSource::Bytes))
            .collect::<Result<_>>()?;
        add_photos(index, ids, keys, sources, statuses, item_errors, added_out, host_callback(progress, user_data))
    })
}

/// The shared body of the two photo adds, after their sources are read.
#[allow(clippy::too_many_arguments)]
unsafe fn add_photos(
    index: *const AvgIndex,
    ids: *const u64,
    keys: *const *const c_char,
    sources: Vec<ImageSource>,
    statuses: *mut AvgStatus,
    item_errors: *mut *mut AvgError,
    added_out: *mut usize,
    progress: impl FnMut(&crate::Progress) -> bool,
) -> Result<()> {
    let index = handle(index)?;
    let count = sources.len();
    crate::limits::check_batch(count)?;
    let ids = c_slice(ids, count, "ids")?;
    let keys = optional_keys(keys, count)?;
    if count > 0 && statuses.is_null() {
        return Err(Error::NullPointer("statuses".into()));
    }
    let photos: Vec<NewPhoto> = (0..count).map(|i| NewPhoto { id: ids[i], key: keys[i], source: sources[i] }).collect();
    let results = index.add_photos(&photos, progress)?;
    let mut added = 0;
    let mut cancelled = false;
    for (i, r) in results.into_iter().enumerate() {
        *statuses.add(i) = r.as_ref().map_or_else(AvgStatus::from, |_| AvgStatus::Ok);
        added += r.is_ok() as usize;
        cancelled |= matches!(r, Err(Error::Cancelled));
        if !item_errors.is_null() {
            *item_errors.add(i) = match r {
                Ok(()) => std::ptr::null_mut(),
                Err(Error::InvalidImage(m)) if matches!(sources[i], ImageSource::Bytes(_)) => {
                    AvgError::new_raw(&Error::InvalidImage(format!("data[{i}]: {m}")))
                }
                Err(e) => AvgError::new_raw(&e),
            };
        }
    }
    if let Some(out) = added_out.as_mut() {
        *out = added;
    }
    if cancelled {
        return Err(Error::Cancelled);
    }
    Ok(())
}

/// `count` optional keys from a NULL-able array of NULL-able strings.
unsafe fn optional_keys<'a>(keys: *const *const c_char, count: usize) -> Result<Vec<Option<&'a str>>> {
    if keys.is_null() {
        return Ok(vec![None; count]);
    }
    c_slice(keys, count, "keys")?
        .iter()
        .enumerate()
        .map(|(i, &p)| if p.is_null() { Ok(None) } else { c_str(p, format!("keys[{i}]")).map(Some) })
        .collect()
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
    guard(err, || handle(index)?.remove_image(image_id))
}
