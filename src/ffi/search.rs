//! C entry points for queries.

use super::types::{handle, read_sized, write_sized, AvgHit, AvgIndex, AvgSearchOptions};
use super::{c_out, c_slice, c_slice_mut, c_str, c_strs, guard, matrix_len, AvgError, AvgStatus};
use crate::{Error, Filter, Hit, ImageSource, Result, SearchOptions};
use std::ffi::{c_char, c_void};
use std::mem::MaybeUninit;

/// Fills `options` with the library's defaults, those of the Rust API's
/// `SearchOptions::default()` (src/search/mod.rs; `AVG_SEARCH_MODE_AUTO`). `size` is
/// `sizeof(AvgSearchOptions)` (it becomes `options->struct_size`; an older header's size
/// gets that header's defaults: plain beam search).
/// Thread-safety: any thread.
///
/// # Safety
/// `options` is NULL or valid for `size` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn avg_search_options_default(
    options: *mut AvgSearchOptions,
    size: usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe { write_sized(options, size, AvgSearchOptions::default(), "options") })
}

/// The host's options (NULL: the defaults): as given, as the Rust options, and the
/// filter they name.
///
/// # Safety
/// `options` is NULL or a host's struct of the size it states, whose `allow_ids` holds
/// `allow_count` ids and whose `allow_fn` is NULL or safe to call with
/// `allow_user_data` for the call.
unsafe fn read_options(options: *const AvgSearchOptions) -> Result<HostOptions> {
    let raw = match options.is_null() {
        true => AvgSearchOptions::default(),
        // SAFETY: the caller's contract.
        false => unsafe { read_sized(options, "options")? },
    };
    let filter = match (raw.allow_ids.is_null(), raw.allow_fn) {
        (true, None) => HostFilter::All,
        // SAFETY: the caller's contract; a count of 0 reads nothing.
        (false, None) => HostFilter::Ids(unsafe { c_slice(raw.allow_ids, raw.allow_count, "options.allow_ids")? }),
        (true, Some(f)) => {
            let host = HostPredicate { f, user_data: raw.allow_user_data };
            HostFilter::Predicate(Box::new(move |id| host.accepts(id)))
        }
        (false, Some(_)) => return Err(Error::InvalidArgument("options: set allow_ids or allow_fn, not both".into())),
    };
    Ok(HostOptions { opts: raw.to_rust()?, raw, filter })
}

/// A host's filter, owned for the call.
enum HostFilter {
    All,
    Ids(&'static [u64]),
    Predicate(Box<dyn Fn(u64) -> bool + Sync>),
}

struct HostOptions {
    raw: AvgSearchOptions,
    opts: SearchOptions<'static>,
    filter: HostFilter,
}

impl HostOptions {
    fn get(&self) -> SearchOptions<'_> {
        let filter = match &self.filter {
            HostFilter::All => Filter::All,
            HostFilter::Ids(ids) => Filter::Ids(ids),
            HostFilter::Predicate(accepts) => Filter::Predicate(accepts.as_ref()),
        };
        SearchOptions { filter, ..self.opts }
    }
}

/// The host's predicate and its `user_data`.
struct HostPredicate {
    f: unsafe extern "C" fn(*mut c_void, u64) -> bool,
    user_data: *mut c_void,
}

// SAFETY: the predicate is called only during the search call, on its calling thread
// (`Filter::Predicate` runs before the search and never on a worker).
unsafe impl Sync for HostPredicate {}

impl HostPredicate {
    fn accepts(&self, id: u64) -> bool {
        // SAFETY: the host vouches for `f` with `user_data` during the call.
        unsafe { (self.f)(self.user_data, id) }
    }
}

/// Runs `queries` with the host's options and vectors; also gives the options' k.
///
/// # Safety
/// `index` is NULL or a live handle; `options` as for [`read_options`], its
/// `query_vectors` NULL or holding `queries.len() * dim` floats.
unsafe fn run(
    index: *const AvgIndex,
    queries: &[&str],
    options: *const AvgSearchOptions,
) -> Result<(Vec<Vec<Hit>>, usize)> {
    // SAFETY: the caller's contract.
    let (index, host) = unsafe { (handle(index)?, read_options(options)?) };
    let o = host.raw;
    // Given vectors always go in (a generator with a vector slot reads them too); NULL
    // leaves them to the index, which computes or refuses them.
    let vectors = if !o.query_vectors.is_null() {
        if o.dim != index.config().dim {
            return Err(Error::DimensionMismatch { expected: index.config().dim, got: o.dim });
        }
        // SAFETY: the caller's contract.
        let flat = unsafe { c_slice(o.query_vectors, matrix_len(queries.len(), o.dim)?, "options.query_vectors")? };
        Some(flat.chunks(o.dim.max(1)).collect::<Vec<_>>())
    } else {
        None
    };
    Ok((index.search_batch(queries, &host.get(), vectors.as_deref())?, o.k))
}

/// Answers one text query: writes up to `cap` hits (image id and score, best first) to
/// `out` and their number to `*n_out`. Returns only ids that are in the index. `options`
/// NULL means the defaults. `AVG_STATUS_WRONG_STATE` where the route needs a model not
/// trained yet (the generator for `_BEAM`, `_RERANK` and `_FUSED`, the tokenizer for
/// `_QUANTIZER`; `_DENSE` and `_AUTO` with query vectors need no training), and
/// `AVG_STATUS_INVALID_ARGUMENT` where it needs query vectors and none are given or
/// computed.
///
/// Ownership: everything is borrowed for the call. Thread-safety: any number of threads
/// may search one index at once, also while others add images or train.
///
/// # Safety
/// `query` is a NUL-terminated string; `out` is NULL or writable for `cap` hits;
/// `n_out` is NULL or writable; `options` is NULL or valid, its `allow_ids` NULL or
/// holding `allow_count` ids, its `allow_fn` NULL or safe to call with
/// `allow_user_data` during the call.
#[no_mangle]
pub unsafe extern "C" fn avg_search(
    index: *const AvgIndex,
    query: *const c_char,
    options: *const AvgSearchOptions,
    out: *mut AvgHit,
    cap: usize,
    n_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let query = c_str(query, "query")?;
        answer_one(out, cap, n_out, || Ok(run(index, &[query], options)?.0.remove(0)))
    })
}

/// Checks a one-query call's outputs (before the search runs, not after it found
/// something), runs `search` and writes up to `cap` of its hits.
unsafe fn answer_one(
    out: *mut AvgHit,
    cap: usize,
    n_out: *mut usize,
    search: impl FnOnce() -> Result<Vec<Hit>>,
) -> Result<()> {
    // SAFETY: the caller's contract.
    let (n_out, out) = unsafe { (c_out(n_out, "n_out")?, c_slice_mut(out, cap, "out")?) };
    let hits = search()?;
    let n = hits.len().min(cap);
    write_hits(&mut out[..n], &hits[..n]);
    *n_out = n;
    Ok(())
}

/// "More like this photo": the images nearest indexed image `image_id` (its stored vector
/// as the query vector, no text), the image itself left out; up to `cap` hits to `out`,
/// their number to `*n_out`. `options` as for `avg_search` (NULL: the defaults), but
/// `query_vectors` is not read and `AVG_SEARCH_MODE_BEAM` (which reads no vector) is
/// `AVG_STATUS_INVALID_ARGUMENT`. An id not indexed is `AVG_STATUS_UNKNOWN_ID`.
///
/// Ownership and thread-safety as `avg_search`.
///
/// # Safety
/// `index` is NULL or a live handle; `options` NULL or valid; `out` NULL or writable
/// for `cap` hits; `n_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_search_by_image(
    index: *const AvgIndex,
    image_id: u64,
    options: *const AvgSearchOptions,
    out: *mut AvgHit,
    cap: usize,
    n_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        let host = read_options(options)?;
        answer_one(out, cap, n_out, || index.search_by_image(image_id, &host.get()))
    })
}

/// The images nearest a photo file, embedded by the index's image encoder
/// (`AVG_STATUS_WRONG_STATE` without one), as `avg_search_by_image`. The path is read as
/// `avg_index_add_image_files` reads one: a regular file of at most
/// `AVG_MAX_PHOTO_FILE_BYTES`; a photo that cannot be read or decoded is the call's error.
///
/// Ownership and thread-safety as `avg_search`.
///
/// # Safety
/// As `avg_search_by_image`; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn avg_search_by_photo_file(
    index: *const AvgIndex,
    path: *const c_char,
    options: *const AvgSearchOptions,
    out: *mut AvgHit,
    cap: usize,
    n_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        let path = std::path::Path::new(c_str(path, "path")?);
        let host = read_options(options)?;
        answer_one(out, cap, n_out, || index.search_by_photo(ImageSource::File(path), &host.get()))
    })
}

/// As `avg_search_by_photo_file`, for a photo's encoded bytes (`len` bytes at `data`).
///
/// Ownership and thread-safety as `avg_search`.
///
/// # Safety
/// As `avg_search_by_image`; `data` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn avg_search_by_photo_bytes(
    index: *const AvgIndex,
    data: *const u8,
    len: usize,
    options: *const AvgSearchOptions,
    out: *mut AvgHit,
    cap: usize,
    n_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let index = handle(index)?;
        let bytes = c_slice(data, len, "data")?;
        let host = read_options(options)?;
        answer_one(out, cap, n_out, || index.search_by_photo(ImageSource::Bytes(bytes), &host.get()))
    })
}

/// Answers `count` queries in one pass: query i's hits go to `out + i * options->k`
/// (so `out` holds `count * k` hits) and their number to `counts_out[i]`.
///
/// Ownership and thread-safety as `avg_search`.
///
/// # Safety
/// `queries` holds `count` NUL-terminated strings; `out` is writable for `count * k`
/// hits; `counts_out` for `count` values.
#[no_mangle]
pub unsafe extern "C" fn avg_search_batch(
    index: *const AvgIndex,
    queries: *const *const c_char,
    count: usize,
    options: *const AvgSearchOptions,
    out: *mut AvgHit,
    counts_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        crate::limits::check_batch(count)?;
        let texts = c_strs(c_slice(queries, count, "queries")?, "queries")?;
        if count == 0 {
            return Ok(());
        }
        let counts = c_slice_mut(counts_out, count, "counts_out")?;
        if out.is_null() {
            return Err(Error::NullPointer("out".into()));
        }
        let (hits, k) = run(index, &texts, options)?;
        let out = c_slice_mut(out, matrix_len(count, k)?, "out")?;
        for (i, h) in hits.iter().enumerate() {
            write_hits(&mut out[i * k..][..h.len()], h);
            counts[i].write(h.len());
        }
        Ok(())
    })
}

fn write_hits(out: &mut [MaybeUninit<AvgHit>], hits: &[Hit]) {
    for (o, h) in out.iter_mut().zip(hits) {
        o.write(h.into());
    }
}
