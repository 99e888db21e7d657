//! C entry points for queries.

use super::index::handle;
use super::{c_out, c_slice, c_str, guard, matrix_len, AvgError, AvgIndex, AvgStatus};
use crate::{Error, Hit, Result, SearchOptions};
use std::ffi::c_char;

/// How to answer queries.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgSearchOptions {
    /// Most hits per query, 1 to `beam_size` (a search finds at most `beam_size`);
    /// outside that range the call fails with `AVG_STATUS_INVALID_ARGUMENT`.
    pub k: usize,
    /// Beams kept at each step (1 to 256); recall grows with it up to about 20-40.
    pub beam_size: usize,
    /// Re-order the beam's candidates by the dot product of the query vector with their
    /// image vectors. Needs `query_vectors`, unless the index has an image encoder,
    /// which then computes them.
    pub rerank: bool,
    /// One vector of `dim` floats per query, contiguous, or NULL. Needed by `rerank`, and
    /// by `fused` with a `dense_weight` above 0, unless the index has an image encoder,
    /// which then computes them; a generator trained with a vector slot also reads them
    /// (without, its slot stays empty).
    pub query_vectors: *const f32,
    pub dim: usize,
    /// Generate the M codes only and return every image under the `beam_size` best code
    /// prefixes, scored by code log-probability + `dense_weight` x (query vector . image
    /// vector). Finds images whose disambiguator the generator never learned (photos
    /// added later, without captions). Takes precedence over `rerank`.
    pub fused: bool,
    /// Weight of the dense similarity in the fused score (finite, at least 0).
    pub dense_weight: f32,
    /// Fused search: where the best code prefixes hold fewer images than this, the
    /// prefixes the beam dropped join them, best first, until they do (prefix backoff:
    /// thin leaves widen the candidates). 0: the `beam_size` best prefixes only.
    pub min_candidates: usize,
}

impl Default for AvgSearchOptions {
    fn default() -> Self {
        let d = SearchOptions::default();
        AvgSearchOptions {
            k: d.k,
            beam_size: d.beam_size,
            rerank: d.rerank,
            query_vectors: std::ptr::null(),
            dim: 0,
            fused: d.fused,
            dense_weight: d.dense_weight,
            min_candidates: d.min_candidates,
        }
    }
}

/// Fills `options` with the defaults: k 10, beam 20, no rerank, not fused, and for fused
/// searches `AVG_DEFAULT_DENSE_WEIGHT` and `AVG_DEFAULT_MIN_CANDIDATES`.
/// Thread-safety: any thread.
///
/// # Safety
/// `options` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn avg_search_options_default(
    options: *mut AvgSearchOptions,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        *c_out(options, "options")? = AvgSearchOptions::default();
        Ok(())
    })
}

unsafe fn run(
    index: *const AvgIndex,
    queries: &[&str],
    options: *const AvgSearchOptions,
) -> Result<(Vec<Vec<Hit>>, usize)> {
    let index = handle(index)?;
    let o = options.as_ref().copied().unwrap_or_default();
    let opts = SearchOptions {
        k: o.k,
        beam_size: o.beam_size,
        rerank: o.rerank,
        fused: o.fused,
        dense_weight: o.dense_weight,
        min_candidates: o.min_candidates,
    };
    // Given vectors always go in (a generator with a vector slot reads them too); NULL
    // leaves them to the index, which computes or refuses them.
    let vectors = if !o.query_vectors.is_null() {
        if o.dim != index.config().dim {
            return Err(Error::DimensionMismatch { expected: index.config().dim, got: o.dim });
        }
        let flat = c_slice(o.query_vectors, matrix_len(queries.len(), o.dim)?, "options.query_vectors")?;
        Some(flat.chunks(o.dim.max(1)).collect::<Vec<_>>())
    } else {
        None
    };
    Ok((index.search_batch(queries, &opts, vectors.as_deref())?, o.k))
}

/// Answers one text query: writes up to `cap` hits (image id and score, best first) to
/// `out` and their number to `*n_out`. Returns only ids that are in the index. `options`
/// NULL means the defaults. `AVG_STATUS_WRONG_STATE` before the generator is trained.
///
/// Ownership: everything is borrowed for the call. Thread-safety: any number of threads
/// may search one index at once, also while others add images or train.
///
/// # Safety
/// `query` is a NUL-terminated string; `out` is NULL or writable for `cap` hits;
/// `n_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_search(
    index: *const AvgIndex,
    query: *const c_char,
    options: *const AvgSearchOptions,
    out: *mut Hit,
    cap: usize,
    n_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        let n_out = c_out(n_out, "n_out")?;
        let query = c_str(query, "query")?;
        // Outputs are checked before the search runs, not after it found something.
        let out: *mut Hit = if cap > 0 { c_out(out, "out")? } else { out };
        let (mut hits, _) = run(index, &[query], options)?;
        let hits = hits.remove(0);
        let n = hits.len().min(cap);
        if n > 0 {
            std::slice::from_raw_parts_mut(out, n).copy_from_slice(&hits[..n]);
        }
        *n_out = n;
        Ok(())
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
    out: *mut Hit,
    counts_out: *mut usize,
    err: *mut *mut AvgError,
) -> AvgStatus {
    guard(err, || {
        crate::limits::check_batch(count)?;
        let texts =
            c_slice(queries, count, "queries")?.iter().map(|&q| c_str(q, "queries[i]")).collect::<Result<Vec<_>>>()?;
        if count == 0 {
            return Ok(());
        }
        let counts = std::slice::from_raw_parts_mut(c_out(counts_out, "counts_out")?, count);
        let out: *mut Hit = c_out(out, "out")?;
        let (hits, k) = run(index, &texts, options)?;
        let out = std::slice::from_raw_parts_mut(out, matrix_len(count, k)?);
        for (i, h) in hits.iter().enumerate() {
            out[i * k..][..h.len()].copy_from_slice(h);
            counts[i] = h.len();
        }
        Ok(())
    })
}
