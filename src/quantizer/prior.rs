//! The quantiser as a prior on the generator's codes.

use super::{Codebooks, Residual};

/// The quantiser's view of each query as a prior on the generator's codes: a beam's
/// score is its code log-probability plus `weight` × minus the squared distance of its
/// codes' partial sum from the query's latent (the quantiser route's own score). A large
/// weight walks the trie as the quantiser does; 0 is the generator alone.
pub(crate) struct Prior<'a> {
    pub books: &'a Codebooks,
    /// Each query's latent (the tokenizer's encoder applied to its vector).
    pub latents: Vec<Vec<f32>>,
    pub weight: f32,
}

impl Prior<'_> {
    /// The residual of query `q` before any code.
    pub(crate) fn start(&self, q: usize) -> Residual {
        Residual::new(self.latents[q].clone())
    }

    /// The prior's part of the score after `code` at `level`.
    pub(crate) fn score(&self, level: usize, at: &Residual, code: u32) -> f32 {
        -self.weight * self.books.distance(level, at, code)
    }

    /// The residual after `code` at `level`.
    pub(crate) fn follow(&self, level: usize, at: &Residual, code: u32) -> Residual {
        self.books.follow(level, at, code)
    }
}
