//! C entry points that add photos through the index's image encoder.

use super::index::optional_keys;
use super::types::{handle, host_callback, read_sized, AvgIndex, AvgPhotoBatch, AvgProgressFn};
use super::{c_slice, c_slice_mut, c_strs, guard, AvgError, AvgStatus};
use crate::{Error, ImageSource, NewPhoto, Result};
use std::ffi::{c_char, c_void};

/// Adds the photos of `batch`, from files or from encoded bytes, embedded by the index's
/// image encoder (JPEG, PNG or WebP; EXIF orientation applied): photo `ids[i]` from
/// `paths[i]` (or `lens[i]` bytes at `data[i]`), with the optional external key
/// `keys[i]`. `batch->added` receives the number added. Everything else is as
/// `avg_index_add_image_files` says (limits, per-photo statuses and errors, progress and
/// stopping, memory); setting both `paths` and `data` is `AVG_STATUS_INVALID_ARGUMENT`.
///
/// Ownership: everything is borrowed for the call; `user_data` is passed back untouched.
/// Thread-safety: any thread; searches and other adds go on meanwhile.
///
/// # Safety
/// `batch` is NULL or a struct of the size its `struct_size` states, whose arrays hold
/// `count` values as its field docs say, with `statuses` (and `item_errors` when
/// non-NULL) writable and `progress` NULL or safe to call with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn avg_index_add_photos(
    index: *const AvgIndex,
    batch: *mut AvgPhotoBatch,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let b = read_sized(batch, "batch")?;
        let (added, cancelled) = add_photos(index, &b)?;
        (*batch).added = added;
        match cancelled {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
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
    let batch =
        AvgPhotoBatch { count, ids, keys, paths, statuses, item_errors, progress, user_data, ..Default::default() };
    // SAFETY: the caller's contract, the same as the batch call's.
    unsafe { add_batch(index, batch, added_out, err) }
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
    let batch = AvgPhotoBatch {
        count,
        ids,
        keys,
        data,
        lens,
        statuses,
        item_errors,
        progress,
        user_data,
        ..Default::default()
    };
    // SAFETY: the caller's contract, the same as the batch call's.
    unsafe { add_batch(index, batch, added_out, err) }
}

/// The argument-list calls as one batch, `added` copied out where the batch ran.
///
/// # Safety
/// As `avg_index_add_photos`; `added_out` is NULL or writable.
unsafe fn add_batch(
    index: *const AvgIndex,
    mut batch: AvgPhotoBatch,
    added_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller's contract.
    let (status, added_out) = unsafe { (avg_index_add_photos(index, &mut batch, err), added_out.as_mut()) };
    if let (AvgStatus::Ok | AvgStatus::Cancelled, Some(out)) = (status, added_out) {
        *out = batch.added;
    }
    status
}

/// The photos' sources: files or bytes, whichever the batch sets.
///
/// # Safety
/// As `avg_index_add_photos`.
unsafe fn sources<'a>(b: &AvgPhotoBatch) -> Result<Vec<ImageSource<'a>>> {
    // SAFETY: the caller's contract: the arrays set hold `count` values.
    match (b.paths.is_null(), b.data.is_null()) {
        (false, false) => Err(Error::InvalidArgument("batch: set paths or data, not both".into())),
        (true, true) if b.count > 0 => Err(Error::NullPointer("paths (or data)".into())),
        (true, true) => Ok(Vec::new()),
        (false, true) => {
            let paths = unsafe { c_strs(c_slice(b.paths, b.count, "paths")?, "paths")? };
            Ok(paths.into_iter().map(|p| ImageSource::File(std::path::Path::new(p))).collect())
        }
        (true, false) => {
            let (data, lens) = unsafe { (c_slice(b.data, b.count, "data")?, c_slice(b.lens, b.count, "lens")?) };
            let bytes = data.iter().zip(lens).enumerate();
            bytes.map(|(i, (&d, &n))| unsafe { c_slice(d, n, format!("data[{i}]")) }.map(ImageSource::Bytes)).collect()
        }
    }
}

/// Adds a batch's photos and writes each one's outcome: the number added, and whether
/// the progress callback stopped the call.
///
/// # Safety
/// As `avg_index_add_photos`.
unsafe fn add_photos(index: *const AvgIndex, b: &AvgPhotoBatch) -> Result<(usize, bool)> {
    let count = b.count;
    crate::limits::check_batch(count)?;
    // SAFETY: the caller's contract: a live handle, and arrays of `count` values.
    let (index, sources, ids, keys) =
        unsafe { (handle(index)?, sources(b)?, c_slice(b.ids, count, "ids")?, optional_keys(b.keys, count)?) };
    // SAFETY: as above; `statuses` and a non-NULL `item_errors` are writable.
    let statuses = unsafe { c_slice_mut(b.statuses, count, "statuses")? };
    let mut item_errors = match b.item_errors.is_null() {
        true => None,
        false => Some(unsafe { c_slice_mut(b.item_errors, count, "item_errors")? }),
    };
    let photos: Vec<NewPhoto> = (0..count).map(|i| NewPhoto { id: ids[i], key: keys[i], source: sources[i] }).collect();
    // SAFETY: `progress` is NULL or safe to call with `user_data`, as the caller vouches.
    let progress = unsafe { host_callback(b.progress, b.user_data) };
    let results = index.add_photos(&photos, progress)?;
    let mut added = 0;
    let mut cancelled = false;
    for (i, r) in results.into_iter().enumerate() {
        statuses[i].write(r.as_ref().map_or_else(AvgStatus::from, |_| AvgStatus::Ok));
        added += r.is_ok() as usize;
        cancelled |= matches!(r, Err(Error::Cancelled));
        if let Some(errors) = item_errors.as_deref_mut() {
            errors[i].write(match r {
                Ok(()) => std::ptr::null_mut(),
                Err(Error::InvalidImage(m)) if !b.data.is_null() => {
                    AvgError::new_raw(&Error::InvalidImage(format!("data[{i}]: {m}")))
                }
                Err(e) => AvgError::new_raw(&e),
            });
        }
    }
    Ok((added, cancelled))
}
