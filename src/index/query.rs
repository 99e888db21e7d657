//! Answering queries by their route (`search::route`): beam search, rerank, fused search
//! (the generator's codes or the quantiser's), the dense scan.

use super::{not_tokenized, Index, State};
use crate::generator::{beam, Generator};
use crate::quantizer::Prior;
use crate::quantizer::Quantizer;
use crate::records::{check_vector, Records};
use crate::search::quantized;
use crate::search::route::{Available, Route};
use crate::search::{dense, Hit, SearchMode, SearchOptions};
use crate::vokens::trie::{Allowed, Prefix, View};
use crate::vokens::Vokens;
use crate::{limits, Error, ImageSource, Result};
use candle_core::Tensor;
use std::sync::Arc;

impl Index {
    /// Answers a text query by the route `opts.mode` names (`Auto`: the best the
    /// index's state allows), best first. `query_vector` (the query's text vector, of the
    /// index dimension) is needed by every route but `Beam`, unless the index has an
    /// image encoder, which computes it. Safe to call from many threads, also while
    /// images are added.
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
        limits::check_batch(queries.len())?;
        for q in queries {
            limits::check_text("query", q)?;
        }
        // A predicate is host code: it runs before the lock is taken.
        let allowed = opts.filter.allowed(|| self.image_ids());
        let available = {
            let st = self.state.read();
            Available {
                vectors: query_vectors.is_some() || self.clip.is_some(),
                tokenizer: st.tokenizer.is_some(),
                generator: st.generator.is_some(),
                images: st.records.len(),
                filtered: allowed.is_some(),
            }
        };
        let route = Route::plan(opts, &available)?;
        let request = Request { queries, route, opts, allowed: allowed.as_deref() };
        let hits = self.answer(&request, query_vectors)?;
        crate::log::emit(crate::log::Level::Debug, || {
            format!(
                "{} queries, {}, beam {}: {:.1} ms",
                queries.len(),
                route.name(),
                opts.beam_size,
                started.elapsed().as_secs_f64() * 1e3
            )
        });
        Ok(hits)
    }

    /// The images nearest indexed image `id` (its stored vector as the query vector, no
    /// text), best first, the image itself left out: "more like this photo". Every mode
    /// but `Beam`, which reads no vector; `opts.k` hits when the index has them.
    pub fn search_by_image(&self, id: u64, opts: &SearchOptions) -> Result<Vec<Hit>> {
        reads_vector(opts)?;
        let vector = self.with_records(|r| r.row(id).and_then(|row| r.original(row)))?;
        self.nearest(&vector, Some(id), opts)
    }

    /// The images nearest a photo (a file or its bytes, embedded by the index's image
    /// encoder, which it needs), best first, as [`Index::search_by_image`]. A photo
    /// that cannot be read or decoded is its error.
    pub fn search_by_photo(&self, photo: ImageSource, opts: &SearchOptions) -> Result<Vec<Hit>> {
        reads_vector(opts)?;
        let vector = self.encoder()?.embed_images(&[photo])?.remove(0)?;
        self.nearest(&vector, None, opts)
    }

    /// Groups of near-duplicate images: images linked by pairs whose vectors have a dot
    /// product of at least `min_similarity` (in (0, 1]; the cosine for unit vectors),
    /// each group at least two ids, ascending, the groups by their first id. Not every
    /// pair is compared: random-hyperplane hashing picks the candidates, so that a pair
    /// exactly at the threshold is found with probability 0.99 (more similar ones more
    /// surely; below a threshold of about 0.89 less so). Repeatable: the same records
    /// give the same groups. Searches go on meanwhile; adds wait for it.
    pub fn near_duplicates(&self, min_similarity: f32) -> Result<Vec<Vec<u64>>> {
        if !(min_similarity > 0.0 && min_similarity <= 1.0) {
            return Err(Error::InvalidArgument(format!("min_similarity {min_similarity} must be in (0, 1]")));
        }
        Ok(crate::duplicates::groups(&self.state.read().records, min_similarity, NEAR_DUPLICATES_SEED))
    }

    /// A search by an image vector, leaving out `except`.
    fn nearest(&self, vector: &[f32], except: Option<u64>, opts: &SearchOptions) -> Result<Vec<Hit>> {
        // One more hit (and beam), in case the query image is among them.
        let extra = usize::from(except.is_some());
        let wider = SearchOptions { k: opts.k + extra, beam_size: opts.beam_size + extra, ..*opts };
        let mut hits = self.search("", &wider, Some(vector))?;
        hits.retain(|h| Some(h.id) != except);
        hits.truncate(opts.k);
        Ok(hits)
    }

    fn answer(&self, request: &Request, query_vectors: Option<&[&[f32]]>) -> Result<Vec<Vec<Hit>>> {
        let Request { queries, route, opts, allowed } = *request;
        let generator = if route.uses_generator() { Some(self.current_generator()?) } else { None };
        // Query vectors: the host's, else the image encoder's text tower's when the
        // route or the generator reads them.
        let reads_vectors = route.needs_vectors() || generator.as_ref().is_some_and(|g| g.reads_vectors());
        let computed = match (reads_vectors, query_vectors, &self.clip) {
            (true, None, Some(clip)) if !queries.is_empty() => Some(clip.embed_texts(queries)?),
            _ => None,
        };
        let computed: Option<Vec<&[f32]>> = computed.as_ref().map(|c| c.iter().map(Vec::as_slice).collect());
        let query_vectors = query_vectors.or(computed.as_deref());
        if let Some(vs) = query_vectors {
            if vs.len() != queries.len() {
                let (q, v) = (queries.len(), vs.len());
                return Err(Error::InvalidArgument(format!("{q} queries but {v} query vectors")));
            }
            for v in vs {
                check_vector(self.config.dim, v, || "query vector".into())?;
            }
        }
        // Past the checks above, a route that needs vectors has them (or no queries).
        let vectors = query_vectors.unwrap_or_default();
        match (generator, route) {
            (Some(g), _) => self.by_generator(g, request, query_vectors),
            (None, Route::Quantizer { dense_weight, min_images }) => {
                let ranking = Ranking { dense_weight, k: opts.k };
                self.by_quantization(vectors, opts.beam_size, min_images, ranking, allowed)
            }
            (None, _) => {
                let records = &self.state.read().records;
                let rows = allowed.map(|ids| allowed_rows(records, ids));
                Ok(dense::top_k(records, vectors, opts.k, rows.as_deref()))
            }
        }
    }

    fn current_generator(&self) -> Result<Arc<Generator>> {
        self.generator_model().ok_or_else(|| {
            Error::WrongState("the generator has not been trained yet (call train_generator first)".into())
        })
    }

    /// The routes through the generator `g`: its beam over the indexed vokens (`Beam`,
    /// `Rerank`) or its best code prefixes (`Fused`).
    fn by_generator(
        &self,
        mut g: Arc<Generator>,
        request: &Request,
        query_vectors: Option<&[&[f32]]>,
    ) -> Result<Vec<Vec<Hit>>> {
        let Request { queries, route, opts, allowed } = *request;
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
                    g = self.current_generator()?;
                }
            }
        };
        let vokens = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        let allowed = allowed.map(|ids| allow(&st.records, vokens, ids));
        let view = View::new(vokens.trie(), allowed.as_ref());
        let vectors = query_vectors.filter(|_| route.needs_vectors()).unwrap_or_default();
        if let Route::Fused { dense_weight, min_images, prior } = route {
            let prior = match prior > 0.0 {
                true => Some(self.prior(&st, vectors, prior)?),
                false => None,
            };
            let prefixes = beam::search_codes(&g, view, &enc, opts.beam_size, min_images, prior.as_ref())?;
            return Ok(fused_hits(&st.records, view, prefixes, Ranking { dense_weight, k: opts.k }, vectors));
        }
        let found = beam::search(&g, view, &enc, opts.beam_size)?;
        let hits = |(q, f): (usize, Vec<beam::Found>)| {
            let mut hits: Vec<Hit> = f.iter().map(|x| Hit { id: x.id, score: x.score }).collect();
            if route == Route::Rerank {
                hits.iter_mut().for_each(|h| h.score = similarity(&st.records, h.id, vectors[q]));
                hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            }
            hits.truncate(opts.k);
            hits
        };
        Ok(found.into_iter().enumerate().map(hits).collect())
    }

    /// `SearchMode::Quantizer`: the tokenizer's own quantisation of each query vector
    /// walks the trie of indexed codes, keeping the `beam` prefixes nearest the query
    /// (widened to `min_images`); the hits are every image under them, scored as a fused
    /// search scores them with minus the squared distance in place of the generator's
    /// log-probability.
    fn by_quantization(
        &self,
        query_vectors: &[&[f32]],
        beam: usize,
        min_images: usize,
        ranking: Ranking,
        allowed: Option<&[u64]>,
    ) -> Result<Vec<Vec<Hit>>> {
        let q = self.tokenizer_model().ok_or_else(not_tokenized)?;
        if query_vectors.is_empty() {
            return Ok(Vec::new());
        }
        let latents = self.latents(&q, query_vectors)?;
        let books = q.host_codebooks()?;
        let st = self.state.read();
        let vokens = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        let allowed = allowed.map(|ids| allow(&st.records, vokens, ids));
        let view = View::new(vokens.trie(), allowed.as_ref());
        // A filter thins every prefix: the beam widens by as much (up to the most a beam
        // may keep), so that its prefixes hold about as many images as without it.
        let share = allowed.as_ref().map_or(1.0, |a| a.len() as f64 / st.records.len().max(1) as f64);
        let beam = ((beam as f64 / share.max(1e-9)).ceil() as usize).min(limits::MAX_BEAM.max(beam));
        let prefixes = latents.iter().map(|z| quantized::nearest_prefixes(view, books, z, beam, min_images)).collect();
        Ok(fused_hits(&st.records, view, prefixes, ranking, query_vectors))
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

/// The hyperplanes of `near_duplicates`: fixed, so that its answer is repeatable.
const NEAR_DUPLICATES_SEED: u64 = 0x6e64_7570;

/// A search by image reads the query vector: every mode but `Beam`.
fn reads_vector(opts: &SearchOptions) -> Result<()> {
    match opts.mode {
        SearchMode::Beam => {
            Err(Error::InvalidArgument("a search by image needs a mode that reads the query vector, not Beam".into()))
        }
        _ => Ok(()),
    }
}

/// One call's queries, its route and options, and the ids its filter allows.
#[derive(Clone, Copy)]
struct Request<'a> {
    queries: &'a [&'a str],
    route: Route,
    opts: &'a SearchOptions<'a>,
    allowed: Option<&'a [u64]>,
}

/// How a fused search ranks the images under its prefixes.
#[derive(Clone, Copy)]
struct Ranking {
    dense_weight: f32,
    k: usize,
}

/// The rows of the allowed images (unknown ids skipped, repeats once), in row order.
fn allowed_rows(records: &Records, ids: &[u64]) -> Vec<usize> {
    let mut rows: Vec<usize> = ids.iter().filter_map(|&id| records.row(id).ok()).collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The trie prefixes a filtered search may walk: those of the allowed images.
fn allow(records: &Records, vokens: &Vokens, ids: &[u64]) -> Allowed {
    let rows = allowed_rows(records, ids);
    let ids: Vec<u64> = rows.iter().map(|&r| records.ids[r]).collect();
    vokens.trie().allow(&ids, rows.iter().map(|&r| vokens.row(r)))
}

/// Every image under each query's code prefixes, scored `prefix score + dense_weight *
/// (query vector . image vector)` (no vectors: the prefix score alone), best `k` first.
fn fused_hits(
    records: &Records,
    view: View,
    prefixes: Vec<Vec<Prefix>>,
    Ranking { dense_weight, k }: Ranking,
    vectors: &[&[f32]],
) -> Vec<Vec<Hit>> {
    prefixes
        .into_iter()
        .enumerate()
        .map(|(q, prefixes)| {
            let mut hits: Vec<Hit> = prefixes
                .into_iter()
                .flat_map(|p| view.images_under(p).into_iter().map(move |id| Hit { id, score: p.score }))
                .collect();
            if let Some(v) = vectors.get(q).filter(|_| dense_weight > 0.0) {
                hits.iter_mut().for_each(|h| h.score += dense_weight * similarity(records, h.id, v));
            }
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            hits.truncate(k);
            hits
        })
        .collect()
}

/// An indexed image's similarity to `v` (`Records::similarity`; 0 for an id no longer there).
fn similarity(records: &Records, id: u64, v: &[f32]) -> f32 {
    records.row(id).map_or(0.0, |row| records.similarity(row, v))
}
