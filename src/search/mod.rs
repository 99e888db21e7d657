//! The query path: the prefix trie of indexed vokens and the constrained beam search.

pub(crate) mod beam;
pub(crate) mod trie;

/// How to answer a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Most hits to return (at most `beam_size`).
    pub k: usize,
    /// Beams kept at every step; recall grows with it up to about 20-40.
    pub beam_size: usize,
    /// Re-order the beam's candidates by the dot product of `query_vector` with their
    /// image vectors (cost independent of the index size). Needs a query vector.
    pub rerank: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { k: 10, beam_size: 20, rerank: false }
    }
}

/// One result: an indexed image and its score (the sum of its vokens' log-probabilities,
/// or the dot product when reranked). Best first. Also the C struct `AvgHit`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
}
