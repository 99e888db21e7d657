//! C entry points that read an index's records: counts, ids, keys, vectors, captions.

use super::types::{handle, write_sized, AvgIndex, AvgIndexInfo};
use super::{c_out, c_write, guard, write_c_str, AvgError, AvgStatus};
use crate::{Error, Result};
use std::ffi::c_char;

/// Writes the index's shape, counts and state to `*info` (dim, N, M; images, captions
/// and attached texts; which models are trained; whether an image encoder is open and
/// the handle read-only): one consistent read. `size` is `sizeof(AvgIndexInfo)` (it
/// becomes `info->struct_size`). Thread-safety: any thread.
///
/// # Safety
/// `index` is NULL or a live handle; `info` is NULL or writable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn avg_index_info(
    index: *const AvgIndex,
    info: *mut AvgIndexInfo,
    size: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        // The output is checked (and cleared) before the index is asked.
        write_sized(info, size, AvgIndexInfo::default(), "info")?;
        write_sized(info, size, (&handle(index)?.info()).into(), "info")
    })
}

/// Copies the image encoder directory the index records into `buf` (see the string
/// convention in the header's introduction): the one it was opened with, or the one
/// recorded before when opened without; "" when it records none. Thread-safety: any
/// thread.
///
/// # Safety
/// `buf` is NULL or writable for `cap` bytes; `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_encoder_dir(
    index: *const AvgIndex,
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { write_c_str(handle(index)?.image_encoder_dir().unwrap_or(""), buf, cap, len_out) })
}

/// Writes the number of images to `*count_out`. Thread-safety: any thread.
///
/// # Safety
/// `index` is NULL or a live handle; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_count(
    index: *const AvgIndex,
    count_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        *c_out(count_out, "count_out")? = handle(index)?.image_count();
        Ok(())
    })
}

/// Writes the number of captions of all images to `*count_out`. Thread-safety: any thread.
///
/// # Safety
/// As `avg_index_image_count`.
#[no_mangle]
pub unsafe extern "C" fn avg_index_caption_count(
    index: *const AvgIndex,
    count_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        *c_out(count_out, "count_out")? = handle(index)?.caption_count();
        Ok(())
    })
}

/// Copies up to `cap` image ids, in storage order, to `ids_out` and the total number of
/// images to `*count_out`; `AVG_STATUS_BUFFER_TOO_SMALL` when `cap` is smaller than that
/// (call with `cap` 0 to learn the size). Thread-safety: any thread.
///
/// # Safety
/// `ids_out` is NULL or writable for `cap` values; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_ids(
    index: *const AvgIndex,
    ids_out: *mut u64,
    cap: usize,
    count_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let count_out = c_out(count_out, "count_out")?;
        let ids = handle(index)?.image_ids();
        *count_out = ids.len();
        if cap < ids.len() {
            return Err(Error::BufferTooSmall { needed: ids.len(), got: cap });
        }
        c_write(ids_out, &ids, "ids_out")
    })
}

/// Copies the vector of image `image_id` into `out` (`dim` floats, the index dimension).
/// Thread-safety: any thread.
///
/// # Safety
/// `out` is NULL or writable for `dim` floats.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_vector(
    index: *const AvgIndex,
    image_id: u64,
    out: *mut f32,
    dim: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { copy_vector(&handle(index)?.image(image_id)?.vector, out, dim) })
}

/// Copies the external key of image `image_id` into `buf` (see the string convention
/// in the header's introduction); an image without a key reads as "".
/// Thread-safety: any thread.
///
/// # Safety
/// `buf` is NULL or writable for `cap` bytes; `len_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_key(
    index: *const AvgIndex,
    image_id: u64,
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let image = handle(index)?.image(image_id)?;
        write_c_str(image.key.as_deref().unwrap_or(""), buf, cap, len_out)
    })
}

/// Writes the number of captions of image `image_id` to `*count_out`.
/// Thread-safety: any thread.
///
/// # Safety
/// As `avg_index_image_count`.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_caption_count(
    index: *const AvgIndex,
    image_id: u64,
    count_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let count_out = c_out(count_out, "count_out")?;
        *count_out = handle(index)?.image(image_id)?.captions.len();
        Ok(())
    })
}

/// Copies the text of caption `i` of image `image_id` into `buf`, as
/// `avg_index_image_key` does. Thread-safety: any thread.
///
/// # Safety
/// As `avg_index_image_key`.
#[no_mangle]
pub unsafe extern "C" fn avg_index_caption_text(
    index: *const AvgIndex,
    image_id: u64,
    i: usize,
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { write_c_str(&caption(index, image_id, i)?.text, buf, cap, len_out) })
}

/// Copies the text vector of caption `i` of image `image_id` into `out` (`dim` floats)
/// and writes whether it has one to `*has_vector`; without one, `out` is left as is.
/// Thread-safety: any thread.
///
/// # Safety
/// `out` is NULL or writable for `dim` floats; `has_vector` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_caption_vector(
    index: *const AvgIndex,
    image_id: u64,
    i: usize,
    out: *mut f32,
    dim: usize,
    has_vector: *mut bool,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let has_vector = c_out(has_vector, "has_vector")?;
        let c = caption(index, image_id, i)?;
        *has_vector = c.vector.is_some();
        c.vector.as_deref().map_or(Ok(()), |v| copy_vector(v, out, dim))
    })
}

/// # Safety
/// `index` is NULL or a live handle.
unsafe fn caption(index: *const AvgIndex, image_id: u64, i: usize) -> Result<crate::Caption> {
    // SAFETY: the caller's contract.
    let mut captions = unsafe { handle(index) }?.image(image_id)?.captions;
    let n = captions.len();
    match i < n {
        true => Ok(captions.swap_remove(i)),
        false => Err(Error::InvalidArgument(format!("caption {i} of image {image_id}: it has {n}"))),
    }
}

unsafe fn copy_vector(v: &[f32], out: *mut f32, dim: usize) -> Result<()> {
    if dim != v.len() {
        return Err(Error::DimensionMismatch { expected: v.len(), got: dim });
    }
    // SAFETY: the caller's contract.
    unsafe { c_write(out, v, "out") }
}
