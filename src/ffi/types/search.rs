//! The search options and a search's hits, as the header declares them.

use super::Growable;
use crate::{Error, Hit, Result, SearchMode, SearchOptions};
use std::ffi::c_void;
use std::mem::{offset_of, size_of};

/// How to answer queries. Options are documented on the Rust `SearchOptions`; what
/// the C struct adds or reads otherwise is documented here.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgSearchOptions {
    /// `sizeof(AvgSearchOptions)`; `avg_search_options_default` sets it.
    pub struct_size: usize,
    /// Most hits per query, at least 1: any number for the routes that rank images
    /// (`AVG_SEARCH_MODE_FUSED`, `_QUANTIZER`, `_DENSE`, and `_AUTO` when it takes one
    /// of them), at most `beam_size` for `_BEAM` and `_RERANK`; otherwise the call fails
    /// with `AVG_STATUS_INVALID_ARGUMENT`.
    pub k: usize,
    /// Beams kept at each step (1 to 256); recall grows with it up to about 20-40.
    pub beam_size: usize,
    /// Read only from hosts whose header ends before `mode` (`struct_size`): with
    /// `candidates` they name the route there (see `mode`).
    pub rerank: bool,
    /// As `rerank`.
    pub fused: bool,
    /// Weight of the dense similarity in the fused score (finite, at least 0).
    pub dense_weight: f32,
    /// One vector of `dim` floats per query, contiguous, or NULL. Needed by every route
    /// but `AVG_SEARCH_MODE_BEAM` (and fused search with a `dense_weight` of 0) unless
    /// the index has an image encoder, which then computes them; a generator trained
    /// with a vector slot also reads them (without, its slot stays empty).
    pub query_vectors: *const f32,
    pub dim: usize,
    /// Fused searches: the fewest candidates (see the Rust `SearchOptions`).
    pub min_candidates: usize,
    /// As `rerank`: `AVG_CANDIDATES_GENERATOR` (0), `_QUANTIZER` or `_ALL`. For those
    /// hosts, `_ALL` is the dense scan, `_QUANTIZER` the quantiser's codes, and with
    /// `_GENERATOR`, `fused` is fused search, else `rerank` a reranked beam, else a plain
    /// beam.
    pub candidates: u64,
    /// Which route answers: `AVG_SEARCH_MODE_AUTO` (0, the default: the dense scan
    /// before training and up to `AVG_AUTO_DENSE_MAX_IMAGES` images, the quantiser's
    /// codes beyond, plain beam search without query vectors), `_BEAM`, `_RERANK`,
    /// `_FUSED`, `_QUANTIZER` or `_DENSE` (Rust `SearchMode`). Supersedes `rerank`,
    /// `fused` and `candidates`, which are then not read.
    pub mode: u64,
    /// Filtered search (Rust `Filter`): NULL, or the ids of the only images the search
    /// may return, `allow_count` of them (unknown ids are skipped; a non-NULL list with
    /// a count of 0 allows none: no hits, not an error).
    pub allow_ids: *const u64,
    pub allow_count: usize,
    /// NULL, or a predicate: the search may return the images whose id it accepts. It is
    /// called with `allow_user_data` once per indexed image, on the calling thread, before
    /// the search takes the index's lock. Set `allow_ids` or `allow_fn`, not both.
    pub allow_fn: AvgAllowFn,
    pub allow_user_data: *mut c_void,
}
growable!(AvgSearchOptions, allow_user_data: *mut c_void, first ends at min_candidates: usize);

/// A filtered search's predicate: true when image `id` may be returned.
pub type AvgAllowFn = Option<unsafe extern "C" fn(user_data: *mut c_void, id: u64) -> bool>;

/// `AvgSearchOptions.candidates` (headers before `mode`): the generator's codes.
pub const AVG_CANDIDATES_GENERATOR: u64 = 0;
/// `AvgSearchOptions.candidates` (headers before `mode`): the quantiser's codes.
pub const AVG_CANDIDATES_QUANTIZER: u64 = 1;
/// `AvgSearchOptions.candidates` (headers before `mode`): the exact dense scan.
pub const AVG_CANDIDATES_ALL: u64 = 2;

/// `AvgSearchOptions.mode`: the best route the index's state allows (Rust
/// `SearchMode::Auto`).
pub const AVG_SEARCH_MODE_AUTO: u64 = 0;
/// `AvgSearchOptions.mode`: plain beam search from the query text.
pub const AVG_SEARCH_MODE_BEAM: u64 = 1;
/// `AvgSearchOptions.mode`: the beam's hits re-ordered by the dot product.
pub const AVG_SEARCH_MODE_RERANK: u64 = 2;
/// `AvgSearchOptions.mode`: fused search on the generator's codes.
pub const AVG_SEARCH_MODE_FUSED: u64 = 3;
/// `AvgSearchOptions.mode`: fused search on the quantiser's codes (no generator needed).
pub const AVG_SEARCH_MODE_QUANTIZER: u64 = 4;
/// `AvgSearchOptions.mode`: the exact dense scan (no training needed).
pub const AVG_SEARCH_MODE_DENSE: u64 = 5;

impl Default for AvgSearchOptions {
    fn default() -> Self {
        let d = SearchOptions::default();
        AvgSearchOptions {
            struct_size: size_of::<Self>(),
            k: d.k,
            beam_size: d.beam_size,
            rerank: false,
            fused: false,
            dense_weight: d.dense_weight,
            query_vectors: std::ptr::null(),
            dim: 0,
            min_candidates: d.min_candidates,
            candidates: AVG_CANDIDATES_GENERATOR,
            mode: AVG_SEARCH_MODE_AUTO,
            allow_ids: std::ptr::null(),
            allow_count: 0,
            allow_fn: None,
            allow_user_data: std::ptr::null_mut(),
        }
    }
}

impl AvgSearchOptions {
    pub(crate) fn to_rust(self) -> Result<SearchOptions<'static>> {
        let mode = if self.struct_size > offset_of!(Self, mode) {
            match self.mode {
                AVG_SEARCH_MODE_AUTO => SearchMode::Auto,
                AVG_SEARCH_MODE_BEAM => SearchMode::Beam,
                AVG_SEARCH_MODE_RERANK => SearchMode::Rerank,
                AVG_SEARCH_MODE_FUSED => SearchMode::Fused,
                AVG_SEARCH_MODE_QUANTIZER => SearchMode::Quantizer,
                AVG_SEARCH_MODE_DENSE => SearchMode::Dense,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "options.mode {other}: expected 0 (auto), 1 (beam), 2 (rerank), 3 (fused), 4 (quantizer) \
                         or 5 (dense)"
                    )))
                }
            }
        } else {
            // A header from before `mode`: its fields name the route, as they did there.
            match self.candidates {
                AVG_CANDIDATES_ALL => SearchMode::Dense,
                AVG_CANDIDATES_QUANTIZER => SearchMode::Quantizer,
                AVG_CANDIDATES_GENERATOR if self.fused => SearchMode::Fused,
                AVG_CANDIDATES_GENERATOR if self.rerank => SearchMode::Rerank,
                AVG_CANDIDATES_GENERATOR => SearchMode::Beam,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "options.candidates {other}: expected 0 (generator), 1 (quantizer) or 2 (all)"
                    )))
                }
            }
        };
        Ok(SearchOptions {
            k: self.k,
            beam_size: self.beam_size,
            mode,
            dense_weight: self.dense_weight,
            min_candidates: self.min_candidates,
            ..SearchOptions::default()
        })
    }
}

/// One search result: an indexed image and its score, best first. Filled into arrays,
/// so its layout never changes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvgHit {
    pub id: u64,
    /// The sum of its vokens' log-probabilities, the fused score, or the dot product
    /// when reranked or scanned (`AVG_CANDIDATES_ALL`).
    pub score: f32,
}

impl From<&Hit> for AvgHit {
    fn from(h: &Hit) -> Self {
        AvgHit { id: h.id, score: h.score }
    }
}
