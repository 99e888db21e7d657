//! Answering queries: beam search, fused search (the generator's codes or the
//! quantiser's), rerank, the dense scan.

use super::{not_tokenized, Index, State};
use crate::quantizer::Quantizer;
use crate::records::{check_vector, Records};
use crate::search::quantized::{self, Prior};
use crate::search::{beam, dense, trie::Prefix, Candidates, Hit, SearchOptions};
use crate::vokens::Vokens;
use crate::{limits, Error, Result};
use candle_core::Tensor;
use std::sync::Arc;

impl Index {
    /// Answers a text query: beam search over the vokens of the indexed images, best
    /// first. `query_vector` (the query's text vector, of the index dimension) is needed
    /// only for `rerank`, and not even then with an image encoder, which computes it. Safe to call from many threads, also while images are added.
    pub fn search(&self, query: &str, opts: &SearchOptions, query_vector: Option<&[f32]>) -> Result<Vec<Hit>> {
        let vectors = query_vector.map(|v| vec![v]);
        Ok(self.search_batch(&[query], opts, vectors.as_deref())?.remove(0))
    }

    /// `search` for many queries at once (one encoder and decoder pass per step for all).
    pub fn search_batch(
        &self,
        queries: &[&str],
        opts: &SearchOptions,
        query_vectors: Option<&[&[f32]]>,
    ) -> Result<Vec<Vec<Hit>>> {
        let started = std::time::Instant::now();
        let hits = self.answer(queries, opts, query_vectors)?;
        crate::log::emit(crate::log::Level::Debug, || {
            let kind = if opts.candidates == Candidates::All {
                "dense scan"
            } else if opts.candidates == Candidates::Quantizer {
                "fused, quantiser's codes"
            } else if opts.fused {
                "fused"
            } else if opts.rerank {
                "reranked"
            } else {
                "beam"
            };
            format!(
                "{} queries, {kind}, beam {}: {:.1} ms",
                queries.len(),
                opts.beam_size,
                started.elapsed().as_secs_f64() * 1e3
            )
        });
        Ok(hits)
    }

    fn answer(
        &self,
        queries: &[&str],
        opts: &SearchOptions,
        query_vectors: Option<&[&[f32]]>,
    ) -> Result<Vec<Vec<Hit>>> {
        opts.validate()?;
        limits::check_batch(queries.len())?;
        for q in queries {
            limits::check_text("query", q)?;
        }
        let needs_vectors = opts.needs_query_vectors();
        // An argument error comes before any state error: nothing can supply the vectors.
        if needs_vectors && query_vectors.is_none() && self.clip.is_none() {
            return Err(missing_query_vectors());
        }
        let current = || {
            self.generator_model().ok_or_else(|| {
                Error::WrongState("the generator has not been trained yet (call train_generator first)".into())
            })
        };
        let generator = match opts.candidates {
            Candidates::Generator => Some(current()?),
            Candidates::Quantizer | Candidates::All => None,
        };
        // Query vectors: the host's, else the image encoder's text tower's when the
        // search or the generator reads them.
        let reads_vectors = needs_vectors || generator.as_ref().is_some_and(|g| g.reads_vectors());
        let computed = match (reads_vectors, query_vectors, &self.clip) {
            (true, None, Some(clip)) if !queries.is_empty() => Some(clip.embed_texts(queries)?),
            _ => None,
        };
        let computed: Option<Vec<&[f32]>> = computed.as_ref().map(|c| c.iter().map(Vec::as_slice).collect());
        let query_vectors = query_vectors.or(computed.as_deref());
        if let Some(vs) = query_vectors {
            if vs.len() != queries.len() {
                return Err(Error::InvalidArgument(format!(
                    "{} queries but {} query vectors",
                    queries.len(),
                    vs.len()
                )));
            }
            for v in vs {
                check_vector(self.config.dim, v, || "query vector".into())?;
            }
        }
        // Past the checks above, a search that needs vectors has them (or no queries).
        let Some(mut g) = generator else {
            let vectors = query_vectors.unwrap_or_default();
            return match opts.candidates {
                Candidates::All => Ok(dense::top_k(&self.state.read().records, vectors, opts.k)),
                _ => self.by_quantization(vectors, opts),
            };
        };
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let slots: Vec<Option<&[f32]>> = match query_vectors {
            Some(vs) => vs.iter().map(|v| Some(*v)).collect(),
            None => vec![None; queries.len()],
        };
        // Encode outside the lock; search under it with the same generator (a training
        // may have swapped in another meanwhile: then encode again).
        let (st, enc) = loop {
            let enc = g.encode(queries, &slots)?;
            let st = self.state.read();
            match &st.generator {
                Some(now) if Arc::ptr_eq(&now.model, &g) => break (st, enc),
                _ => {
                    drop(st);
                    g = current()?;
                }
            }
        };
        let vokens = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        let vectors = query_vectors.filter(|_| needs_vectors);
        if opts.fused {
            let prior = match query_vectors.filter(|_| opts.quantizer_weight > 0.0) {
                Some(vs) => Some(self.prior(&st, vs, opts.quantizer_weight)?),
                None => None,
            };
            let prefixes =
                beam::search_codes(&g, vokens.trie(), &enc, opts.beam_size, opts.min_candidates, prior.as_ref())?;
            return Ok(fused_hits(&st.records, vokens, prefixes, opts, vectors));
        }
        let found = beam::search(&g, vokens.trie(), &enc, opts.beam_size)?;
        Ok(found
            .into_iter()
            .enumerate()
            .map(|(q, f)| {
                let mut hits: Vec<Hit> = f.iter().map(|x| Hit { id: x.id, score: x.score }).collect();
                if let Some(vs) = vectors {
                    hits.iter_mut().for_each(|h| h.score = similarity(&st.records, h.id, vs[q]));
                    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
                }
                hits.truncate(opts.k);
                hits
            })
            .collect())
    }

    /// `Candidates::Quantizer`: the tokenizer's own quantisation of each query vector
    /// walks the trie of indexed codes, keeping the `beam_size` prefixes nearest the
    /// query; the hits are every image under them, scored as a fused search scores them
    /// with minus the squared distance in place of the generator's log-probability.
    fn by_quantization(&self, query_vectors: &[&[f32]], opts: &SearchOptions) -> Result<Vec<Vec<Hit>>> {
        let q = self.tokenizer_model().ok_or_else(not_tokenized)?;
        if query_vectors.is_empty() {
            return Ok(Vec::new());
        }
        let latents = self.latents(&q, query_vectors)?;
        let books = q.host_codebooks()?;
        let st = self.state.read();
        let vokens = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        let prefixes = latents
            .iter()
            .map(|z| quantized::nearest_prefixes(vokens.trie(), books, z, opts.beam_size, opts.min_candidates))
            .collect();
        let vectors = (opts.dense_weight > 0.0).then_some(query_vectors);
        Ok(fused_hits(&st.records, vokens, prefixes, opts, vectors))
    }

    /// The tokenizer's latents of the query vectors.
    fn latents(&self, q: &Quantizer, query_vectors: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let flat: Vec<f32> = query_vectors.iter().flat_map(|v| v.iter().copied()).collect();
        let x = Tensor::from_vec(flat, (query_vectors.len(), self.config.dim), &self.device)?;
        Ok(q.encode_latent(&x)?.detach().to_vec2::<f32>()?)
    }

    /// The quantiser's prior on the generator's codes, from the tokenizer whose codes the
    /// trie holds (the serving one: a retrained tokenizer waits for its generator).
    fn prior<'a>(&self, st: &'a State, query_vectors: &[&[f32]], weight: f32) -> Result<Prior<'a>> {
        let q = &st.tokenizer.as_ref().ok_or_else(not_tokenized)?.model;
        Ok(Prior { books: q.host_codebooks()?, latents: self.latents(q, query_vectors)?, weight })
    }
}

/// Every image under each query's code prefixes, scored `prefix score + dense_weight *
/// (query vector . image vector)`, best `k` first.
fn fused_hits(
    records: &Records,
    vokens: &Vokens,
    prefixes: Vec<Vec<Prefix>>,
    opts: &SearchOptions,
    vectors: Option<&[&[f32]]>,
) -> Vec<Vec<Hit>> {
    prefixes
        .into_iter()
        .enumerate()
        .map(|(q, prefixes)| {
            let mut hits: Vec<Hit> = prefixes
                .into_iter()
                .flat_map(|p| vokens.trie().images_under(p).into_iter().map(move |id| Hit { id, score: p.score }))
                .collect();
            if let Some(vs) = vectors {
                hits.iter_mut().for_each(|h| h.score += opts.dense_weight * similarity(records, h.id, vs[q]));
            }
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            hits.truncate(opts.k);
            hits
        })
        .collect()
}

fn missing_query_vectors() -> Error {
    Error::InvalidArgument(
        "the dense scan, the quantiser's codes, rerank and fused search with a dense weight need query \
         vectors: given, or computed by the index's image encoder"
            .into(),
    )
}

/// The dot product of an indexed image's vector with `v` (0 for an id no longer there).
fn similarity(records: &Records, id: u64, v: &[f32]) -> f32 {
    records.row(id).map_or(0.0, |row| records.vector(row).iter().zip(v).map(|(a, b)| a * b).sum())
}
