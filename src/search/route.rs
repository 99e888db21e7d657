//! A query's route, decided once from the options and the index's state; the query code
//! matches on it and nothing else re-derives it.

use super::{SearchMode, SearchOptions, AUTO_DENSE_MAX_IMAGES};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Route {
    /// The generator's beam: its hits and their code log-probabilities.
    Beam,
    /// The generator's beam, its hits re-ordered by the dot product.
    Rerank,
    /// Every image under the generator's best code prefixes (widened to `min_images`),
    /// scored by log-probability (with the quantiser's prior at `prior`) + `dense_weight`
    /// x dot product.
    Fused { dense_weight: f32, min_images: usize, prior: f32 },
    /// As `Fused`, the prefixes from the tokenizer's quantisation of the query vector.
    Quantizer { dense_weight: f32, min_images: usize },
    /// Every image by the dot product.
    Dense,
}

/// What an index can answer with now.
pub(crate) struct Available {
    /// Query vectors: given, or computed by the image encoder.
    pub vectors: bool,
    pub tokenizer: bool,
    pub generator: bool,
    pub images: usize,
    /// The search has a filter: the quantiser's route would first resolve every allowed
    /// image's prefixes, which costs more than scanning the allowed rows.
    pub filtered: bool,
}

impl Route {
    pub(crate) fn plan(opts: &SearchOptions, at: &Available) -> Result<Route> {
        opts.validate()?;
        // Ranked routes weigh at least k candidates, so that any k can be answered.
        let min_images = opts.min_candidates.max(opts.k);
        let dense_weight = opts.dense_weight;
        let route = match opts.mode {
            SearchMode::Auto if at.vectors && at.tokenizer && !at.filtered && at.images > AUTO_DENSE_MAX_IMAGES => {
                Route::Quantizer { dense_weight, min_images }
            }
            SearchMode::Auto if at.vectors => Route::Dense,
            SearchMode::Auto if at.generator => Route::Beam,
            SearchMode::Auto => return Err(missing_query_vectors()),
            SearchMode::Beam => Route::Beam,
            SearchMode::Rerank => Route::Rerank,
            SearchMode::Fused => Route::Fused { dense_weight, min_images, prior: opts.quantizer_weight },
            SearchMode::Quantizer => Route::Quantizer { dense_weight, min_images },
            SearchMode::Dense => Route::Dense,
        };
        if matches!(route, Route::Beam | Route::Rerank) && opts.k > opts.beam_size {
            return Err(Error::InvalidArgument(format!(
                "k ({}) must be at most beam_size ({}) for beam search, whose hits are the beam's",
                opts.k, opts.beam_size
            )));
        }
        if route.needs_vectors() && !at.vectors {
            return Err(missing_query_vectors());
        }
        Ok(route)
    }

    /// Whether the route reads the query vectors (a generator with a vector slot reads
    /// them on any route it runs).
    pub(crate) fn needs_vectors(&self) -> bool {
        match *self {
            Route::Beam => false,
            Route::Fused { dense_weight, prior, .. } => dense_weight > 0.0 || prior > 0.0,
            Route::Rerank | Route::Quantizer { .. } | Route::Dense => true,
        }
    }

    pub(crate) fn uses_generator(&self) -> bool {
        matches!(self, Route::Beam | Route::Rerank | Route::Fused { .. })
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::Beam => "beam",
            Route::Rerank => "reranked beam",
            Route::Fused { .. } => "fused",
            Route::Quantizer { .. } => "fused on the quantiser's codes",
            Route::Dense => "dense scan",
        }
    }
}

fn missing_query_vectors() -> Error {
    Error::InvalidArgument(
        "this search needs query vectors (the dense scan, the quantiser's codes, rerank, fused search with a \
         weight above 0, and the default mode before a generator is trained): give them, or open the index with \
         an image encoder"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(vectors: bool, tokenizer: bool, generator: bool, images: usize) -> Available {
        Available { vectors, tokenizer, generator, images, filtered: false }
    }

    #[test]
    fn auto_takes_the_best_route_the_state_allows() {
        let auto = SearchOptions::default();
        assert_eq!(Route::plan(&auto, &at(true, false, false, 10)).unwrap(), Route::Dense);
        assert_eq!(Route::plan(&auto, &at(true, true, true, AUTO_DENSE_MAX_IMAGES)).unwrap(), Route::Dense);
        let big = Route::plan(&auto, &at(true, true, true, AUTO_DENSE_MAX_IMAGES + 1)).unwrap();
        assert!(matches!(big, Route::Quantizer { .. }));
        let filtered = Available { filtered: true, ..at(true, true, true, AUTO_DENSE_MAX_IMAGES + 1) };
        assert_eq!(Route::plan(&auto, &filtered).unwrap(), Route::Dense);
        assert_eq!(Route::plan(&auto, &at(false, true, true, 10)).unwrap(), Route::Beam);
        assert!(matches!(Route::plan(&auto, &at(false, true, false, 10)), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn any_k_for_ranked_routes_and_at_most_the_beam_for_the_beam() {
        let big_k = |mode| SearchOptions { k: 5000, beam_size: 20, mode, ..Default::default() };
        let all = at(true, true, true, 10);
        assert_eq!(Route::plan(&big_k(SearchMode::Dense), &all).unwrap(), Route::Dense);
        let fused = Route::plan(&big_k(SearchMode::Fused), &all).unwrap();
        assert!(matches!(fused, Route::Fused { min_images: 5000, .. }), "{fused:?}");
        for mode in [SearchMode::Beam, SearchMode::Rerank] {
            assert!(
                matches!(Route::plan(&big_k(mode), &all), Err(Error::InvalidArgument(ref m)) if m.contains("beam"))
            );
        }
        let no_vectors = at(false, true, true, 10);
        for mode in [SearchMode::Rerank, SearchMode::Quantizer, SearchMode::Dense] {
            let opts = SearchOptions { mode, ..Default::default() };
            assert!(matches!(Route::plan(&opts, &no_vectors), Err(Error::InvalidArgument(_))), "{mode:?}");
        }
        let codes_only = SearchOptions { mode: SearchMode::Fused, dense_weight: 0.0, ..Default::default() };
        assert!(matches!(Route::plan(&codes_only, &no_vectors).unwrap(), Route::Fused { .. }));
    }
}
