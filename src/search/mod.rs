//! The query path: the prefix trie of indexed vokens, the constrained beam search, the
//! quantiser's codes and the dense scan.

pub(crate) mod beam;
pub(crate) mod dense;
pub(crate) mod quantized;
pub(crate) mod trie;

/// How to answer a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Most hits to return, 1 to `beam_size`.
    pub k: usize,
    /// Beams kept at every step; recall grows with it up to about 20-40.
    pub beam_size: usize,
    /// Re-order the beam's candidates by the dot product of `query_vector` with their
    /// image vectors (cost independent of the index size). Needs a query vector.
    pub rerank: bool,
    /// Generate only the M codes (not the disambiguator, which no query can predict)
    /// and return every image under the `beam_size` best code prefixes, scored by
    /// `code log-probability + dense_weight * (query vector . image vector)`. Needs a
    /// query vector when `dense_weight` is above 0; takes precedence over `rerank`.
    pub fused: bool,
    /// Weight of the dense similarity in the fused score (finite, at least 0).
    pub dense_weight: f32,
    /// Fused search: where the best code prefixes hold fewer images than this, the
    /// next-best prefixes of the last code level join them until they do (prefix
    /// backoff: thin leaves widen the candidates). 0: the `beam_size` best only.
    pub min_candidates: usize,
    /// Which images a query weighs: those under the generator's codes (the default),
    /// those under the quantiser's codes for the query vector, or all of them.
    pub candidates: Candidates,
    /// Fused search on the generator's codes: weight of the quantiser's prior, which
    /// adds to each code prefix's log-probability minus the squared distance of its
    /// codebook rows' sum from the query's latent (the quantiser's own score). 0: the
    /// generator alone; a large weight walks the trie as `Candidates::Quantizer` does.
    /// Needs a query vector and the tokenizer the generator was trained on (finite, at
    /// least 0).
    pub quantizer_weight: f32,
}

/// Which images a search weighs, and so what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Candidates {
    /// The generator writes codes from the query text (and its vector, where the
    /// generator was trained with a vector slot): plain beam search, or `fused`.
    #[default]
    Generator,
    /// The tokenizer quantises the query vector and keeps the `beam_size` prefixes
    /// nearest it, level by level; every image under them is scored as a fused search
    /// scores them, with minus the squared distance in place of the log-probability.
    /// Needs a query vector and a trained tokenizer, not a generator: a search can
    /// follow the tokenizer's training at once. `fused` is implied and `rerank` unused.
    /// Among 3,000 and 7,000 images its R@1 stayed 0.2 and 0.6 points under an exact
    /// dense scan's, where the generator's stayed 1.2 and 2.6 under (README, "Dense
    /// search or fused search?").
    Quantizer,
    /// Every indexed image, scored by the dot product of its vector with the query
    /// vector: the exact dense scan. Needs a query vector only (no training). Its time
    /// grows with the index (about 0.08 ms per thousand images on 2 cores); the other
    /// options are ignored but `k` (at most `beam_size`).
    All,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            k: 10,
            beam_size: 20,
            rerank: false,
            fused: false,
            dense_weight: DEFAULT_DENSE_WEIGHT,
            min_candidates: DEFAULT_MIN_CANDIDATES,
            candidates: Candidates::Generator,
            quantizer_weight: 0.0,
        }
    }
}

/// The fused score's default dense weight: with 400 candidates (the default then), the
/// best of 0, 40, 100 and 200 on the Flickr8k validation split (docs/benchmarks.md,
/// Indexing).
pub const DEFAULT_DENSE_WEIGHT: f32 = 100.0;

/// Fused search's default `min_candidates`. On the validation split among its 1,000
/// images, 400 beat no widening by 5.8 points of R@1. Among 3,000 (the training images
/// too), 1000 beat 400 by 1.3 points of R@1 and 3.0 of R@10 on the generator's codes
/// (0.2 and 2.0 on the quantiser's) for a fraction of a millisecond more
/// (docs/benchmarks.md, "Widening in a larger pool"). A fixed count, not a share of the
/// index, so that widening costs the same in any index.
pub const DEFAULT_MIN_CANDIDATES: usize = 1000;

impl SearchOptions {
    /// Whether the search reads the query vectors (the quantiser's codes, the dense
    /// scan, rerank, or a fused score with a dense term), so that a search without them
    /// cannot be answered.
    pub(crate) fn needs_query_vectors(&self) -> bool {
        if self.candidates != Candidates::Generator {
            true
        } else if self.fused {
            self.dense_weight > 0.0 || self.quantizer_weight > 0.0
        } else {
            self.rerank
        }
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        crate::limits::cap("beam size", self.beam_size, crate::limits::MAX_BEAM)?;
        for (name, w) in [("dense_weight", self.dense_weight), ("quantizer_weight", self.quantizer_weight)] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(crate::Error::InvalidArgument(format!("{name} {w} must be finite and at least 0")));
            }
        }
        if self.beam_size == 0 || self.k == 0 || self.k > self.beam_size {
            return Err(crate::Error::InvalidArgument(format!(
                "k ({}) must be 1 to beam_size ({}), and beam_size at least 1",
                self.k, self.beam_size
            )));
        }
        Ok(())
    }
}

/// One result: an indexed image and its score (the sum of its vokens' log-probabilities,
/// the fused score, or the dot product when reranked or scanned with `Candidates::All`).
/// Best first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
}
