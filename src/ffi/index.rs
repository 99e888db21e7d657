//! C entry points for opening an index and for its records.

use super::{c_out, c_slice, c_str, guard, matrix_len, write_c_str, AvgError, AvgStatus};
use crate::{Error, Index, IndexConfig, NewCaption, NewImage, Result};
use std::ffi::c_char;

/// An open index. Created by `avg_index_open`, freed by `avg_index_free`.
/// Safe to share between threads: every call on it may run concurrently with any other,
/// except `avg_index_free`, which must be the last call.
pub struct AvgIndex {
    pub(crate) inner: Index,
}

/// The shape of a new index and the device to compute on.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgIndexConfig {
    /// Length of every image and caption vector (1 to 16384).
    pub dim: usize,
    /// N, the codebook size (1 to 65536).
    pub codebook_size: usize,
    /// M, vokens per image (1 to 32).
    pub voken_len: usize,
    /// "cpu" (also when NULL), "cuda" or "cuda:N".
    pub device: *const c_char,
}

impl AvgIndexConfig {
    unsafe fn to_rust(&self) -> Result<IndexConfig> {
        let device = if self.device.is_null() { "cpu" } else { c_str(self.device, "config.device")? };
        Ok(IndexConfig {
            dim: self.dim,
            codebook_size: self.codebook_size,
            voken_len: self.voken_len,
            device: device.to_owned(),
        })
    }
}

/// Fills `config` with the defaults: dim 512, N 1024, M 4, device "cpu".
/// Thread-safety: any thread.
///
/// # Safety
/// `config` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn avg_index_config_default(config: *mut AvgIndexConfig, err: *mut *mut AvgError) -> AvgStatus {
    guard(err, || {
        let d = IndexConfig::default();
        *c_out(config, "config")? = AvgIndexConfig {
            dim: d.dim,
            codebook_size: d.codebook_size,
            voken_len: d.voken_len,
            device: c"cpu".as_ptr(),
        };
        Ok(())
    })
}

pub(crate) unsafe fn handle<'a>(ptr: *const AvgIndex) -> Result<&'a Index> {
    ptr.as_ref().map(|i| &i.inner).ok_or(Error::NullPointer("index"))
}

/// Opens the index in directory `path`, creating it (and the directory) when it holds
/// none and `config` is non-NULL. For an existing index a non-NULL `config` must match
/// the stored dim, N and M (else `AVG_STATUS_CONFIG_MISMATCH`); NULL opens it as stored,
/// on the CPU. The directory is locked while the handle lives: a second open of it, in
/// this process or another, fails with `AVG_STATUS_LOCKED`.
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
    guard(err, || {
        let out = c_out(out, "out")?;
        let path = c_str(path, "path")?;
        let config = config.as_ref().map(|c| c.to_rust()).transpose()?;
        let inner = Index::open(path, config.as_ref())?;
        *out = Box::into_raw(Box::new(AvgIndex { inner }));
        Ok(())
    })
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
        let keys = if keys.is_null() { None } else { Some(c_slice(keys, count, "keys")?) };
        let mut images = Vec::with_capacity(count);
        for (i, &id) in ids.iter().enumerate() {
            let key = match keys.map(|k| k[i]) {
                Some(p) if !p.is_null() => Some(c_str(p, "keys[i]")?),
                _ => None,
            };
            images.push(NewImage { id, key, vector: &vectors[i * dim..(i + 1) * dim] });
        }
        index.add_images(&images)
    })
}

/// Appends `count` captions to image `image_id`: the text `texts[i]` and, when `vectors`
/// is non-NULL, its text vector at `vectors + i * dim` (`dim` must then equal the index
/// dimension; it is ignored when `vectors` is NULL). All or none.
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
                Ok(NewCaption { text: c_str(t, "texts[i]")?, vector: vectors.map(|v| &v[i * dim..(i + 1) * dim]) })
            })
            .collect::<Result<Vec<_>>>()?;
        index.add_captions(image_id, &captions)
    })
}

/// Removes an image and its captions (`AVG_STATUS_UNKNOWN_ID` when absent).
/// Thread-safety: any thread.
///
/// # Safety
/// `index` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn avg_index_remove_image(index: *const AvgIndex, image_id: u64, err: *mut *mut AvgError) -> AvgStatus {
    guard(err, || handle(index)?.remove_image(image_id))
}

/// Writes the number of images to `*count_out`. Thread-safety: any thread.
///
/// # Safety
/// `index` is NULL or a live handle; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_image_count(index: *const AvgIndex, count_out: *mut usize, err: *mut *mut AvgError) -> AvgStatus {
    guard(err, || {
        *c_out(count_out, "count_out")? = handle(index)?.image_count();
        Ok(())
    })
}

/// Writes the number of captions of all images to `*count_out`. Thread-safety: any thread.
///
/// # Safety
/// As `avg_index_image_count`.
#[no_mangle]
pub unsafe extern "C" fn avg_index_caption_count(index: *const AvgIndex, count_out: *mut usize, err: *mut *mut AvgError) -> AvgStatus {
    guard(err, || {
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
    guard(err, || {
        let count_out = c_out(count_out, "count_out")?;
        let ids = handle(index)?.image_ids();
        *count_out = ids.len();
        if cap < ids.len() {
            return Err(Error::BufferTooSmall { needed: ids.len(), got: cap });
        }
        if !ids.is_empty() {
            std::slice::from_raw_parts_mut(c_out(ids_out, "ids_out")?, ids.len()).copy_from_slice(&ids);
        }
        Ok(())
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
    guard(err, || {
        let index = handle(index)?;
        index.with_records(|r| {
            let v = r.vector(r.row(image_id)?);
            copy_vector(v, out, dim)
        })
    })
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
    guard(err, || {
        handle(index)?.with_records(|r| {
            let key = r.keys[r.row(image_id)?].as_deref().unwrap_or("");
            write_c_str(key, buf, cap, len_out)
        })
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
    guard(err, || {
        let count_out = c_out(count_out, "count_out")?;
        *count_out = handle(index)?.with_records(|r| r.row(image_id).map(|row| r.captions[row].len()))?;
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
    guard(err, || {
        handle(index)?.with_records(|r| write_c_str(&caption(r, image_id, i)?.text, buf, cap, len_out))
    })
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
    guard(err, || {
        let has_vector = c_out(has_vector, "has_vector")?;
        handle(index)?.with_records(|r| {
            let c = caption(r, image_id, i)?;
            *has_vector = c.vector.is_some();
            c.vector.as_deref().map_or(Ok(()), |v| copy_vector(v, out, dim))
        })
    })
}

fn caption(r: &crate::records::Records, image_id: u64, i: usize) -> Result<&crate::Caption> {
    let captions = &r.captions[r.row(image_id)?];
    captions.get(i).ok_or_else(|| {
        Error::InvalidArgument(format!("caption {i} of image {image_id}: it has {}", captions.len()))
    })
}

unsafe fn copy_vector(v: &[f32], out: *mut f32, dim: usize) -> Result<()> {
    if dim != v.len() {
        return Err(Error::DimensionMismatch { expected: v.len(), got: dim });
    }
    let out = c_out(out, "out")?;
    std::slice::from_raw_parts_mut(out, dim).copy_from_slice(v);
    Ok(())
}
