//! The query path: the routes a query takes (dense scan, the quantiser's codes, the
//! generator's constrained beam in `generator::beam`) and their options.

pub(crate) mod dense;
mod filter;
pub(crate) mod quantized;
pub(crate) mod route;

pub use filter::Filter;

/// How to answer a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions<'a> {
    /// Most hits to return, at least 1. The routes that rank images (`Fused`,
    /// `Quantizer`, `Dense`) take any k and weigh at least k candidates; `Beam` and
    /// `Rerank` return the beam's own hits, so there k is at most `beam_size`.
    pub k: usize,
    /// Beams kept at every step; recall grows with it up to about 20-40.
    pub beam_size: usize,
    /// Which route answers (see [`SearchMode`]); `Auto` by default.
    pub mode: SearchMode,
    /// `Fused` and `Quantizer`: weight of the dense similarity in the score (finite, at
    /// least 0).
    pub dense_weight: f32,
    /// `Fused` and `Quantizer`: where the best code prefixes hold fewer images than
    /// this (or than k), the next-best prefixes of the last code level join them until
    /// they do (prefix backoff: thin leaves widen the candidates). 0: the `beam_size`
    /// best only.
    pub min_candidates: usize,
    /// `Fused`: weight of the quantiser's prior, which adds to each code prefix's
    /// log-probability minus the squared distance of its codebook rows' sum from the
    /// query's latent (the quantiser's own score). 0: the generator alone; a large
    /// weight walks the trie as `Quantizer` does (finite, at least 0).
    pub quantizer_weight: f32,
    /// Which images may be returned (every one by default); see [`Filter`].
    pub filter: Filter<'a>,
}

/// Which route answers a query. Every route but `Beam` reads a query vector: given, or
/// computed by the index's image encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// The best route the index's state allows: with a query vector, the exact dense
    /// scan up to [`AUTO_DENSE_MAX_IMAGES`] images (and before any training), the
    /// quantiser's codes beyond once the tokenizer is trained (a filtered search scans its
    /// allowed images at any size: docs/results.md, "Filtered search"); without one, plain beam
    /// search once the generator is trained. On captions the encoder never saw
    /// (nocaps), no generator route beat the dense scan (docs/benchmarks.md).
    #[default]
    Auto,
    /// The generator writes codes from the query text alone (the paper's method); the
    /// hits are the beam's, scored by the sum of their code log-probabilities.
    Beam,
    /// `Beam`, its hits re-ordered by the dot product of the query vector with theirs.
    Rerank,
    /// The generator writes the M codes only; every image under the `beam_size` best
    /// code prefixes is scored `log-probability + dense_weight x (query . image)`.
    Fused,
    /// As `Fused`, with the tokenizer's quantisation of the query vector in place of the
    /// generator (minus the squared distance in place of the log-probability): needs a
    /// trained tokenizer, no generator.
    Quantizer,
    /// The exact dense scan: every image scored by the dot product of its vector with
    /// the query vector. Needs no training; its time grows with the index
    /// (docs/results.md, "Query speed").
    Dense,
}

/// `SearchMode::Auto` scans every vector up to this many images, and takes the
/// quantiser's codes beyond, whose time hardly grows (docs/results.md, "Query speed").
pub const AUTO_DENSE_MAX_IMAGES: usize = 50_000;

impl Default for SearchOptions<'_> {
    fn default() -> Self {
        SearchOptions {
            k: 10,
            beam_size: 20,
            mode: SearchMode::Auto,
            dense_weight: DEFAULT_DENSE_WEIGHT,
            min_candidates: DEFAULT_MIN_CANDIDATES,
            quantizer_weight: 0.0,
            filter: Filter::All,
        }
    }
}

/// The fused score's default dense weight, chosen on a validation split
/// (docs/benchmarks.md, "Indexing").
pub const DEFAULT_DENSE_WEIGHT: f32 = 100.0;

/// Fused search's default `min_candidates`, chosen on a validation split
/// (docs/benchmarks.md, "Widening in a larger pool"). A fixed count, not a share of the
/// index, so that widening costs the same in any index.
pub const DEFAULT_MIN_CANDIDATES: usize = 1000;

impl SearchOptions<'_> {
    pub(crate) fn validate(&self) -> crate::Result<()> {
        crate::limits::cap("beam size", self.beam_size, crate::limits::MAX_BEAM)?;
        // No index holds more hits than this; a larger k would only size buffers.
        crate::limits::cap("k", self.k, crate::limits::MAX_IMAGES)?;
        for (name, w) in [("dense_weight", self.dense_weight), ("quantizer_weight", self.quantizer_weight)] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(crate::Error::InvalidArgument(format!("{name} {w} must be finite and at least 0")));
            }
        }
        if self.beam_size == 0 || self.k == 0 {
            return Err(crate::Error::InvalidArgument(format!(
                "k ({}) and beam_size ({}) must be at least 1",
                self.k, self.beam_size
            )));
        }
        Ok(())
    }
}

/// One result: an indexed image and its score (the sum of its vokens' log-probabilities,
/// the fused score, or the dot product when reranked or scanned densely). Best first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
}
