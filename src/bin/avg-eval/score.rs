//! Recall of ranked lists, per-level code accuracy, the dense baseline, and one search
//! setting run over every query.

use crate::die;
use avg::{Index, SearchOptions};
use std::collections::HashMap;
use std::time::Instant;

pub(crate) struct Recall {
    pub r: [f64; 3],
    /// The target anywhere in the list (up to the beam size): candidate recall.
    pub candidates: f64,
    pub qps: f64,
}

pub(crate) fn recall(ranked: &[Vec<u64>], truth: &[u64], qps: f64) -> Recall {
    let mut r = [0f64; 3];
    let mut candidates = 0.0;
    for (hits, &t) in ranked.iter().zip(truth) {
        for (i, k) in [1, 5, 10].into_iter().enumerate() {
            r[i] += hits.iter().take(k).any(|&h| h == t) as u8 as f64;
        }
        candidates += hits.contains(&t) as u8 as f64;
    }
    let pct = |x: f64| 100.0 * x / truth.len() as f64;
    Recall { r: r.map(pct), candidates: pct(candidates), qps }
}

/// Per level l: the share of queries whose top hit has the target's first l+1 codes.
pub(crate) fn level_accuracy(index: &Index, ranked: &[Vec<u64>], truth: &[u64], m: usize) -> Vec<f64> {
    let mut right = vec![0usize; m];
    for (hits, &t) in ranked.iter().zip(truth) {
        let (Some(&top), Ok(want)) = (hits.first(), index.vokens(t)) else { continue };
        let got = index.vokens(top).unwrap_or_default();
        let same = got.iter().zip(&want).take(m).take_while(|(a, b)| a == b).count();
        for level in right.iter_mut().take(same) {
            *level += 1;
        }
    }
    right.into_iter().map(|n| 100.0 * n as f64 / truth.len() as f64).collect()
}

/// Queries (caption text, the image they belong to) and the pool they search.
pub(crate) struct Task<'a> {
    pub queries: Vec<(&'a String, u64)>,
    /// (id, vector) of every image a query may find: the dense baseline's candidates.
    pub pool: Vec<(u64, &'a [f32])>,
}

impl<'a> Task<'a> {
    /// Every caption but the first (the image's own text, its vector's source) of each
    /// image, as a query of it.
    pub(crate) fn new(images: &[(u64, &'a [String])], pool: Vec<(u64, &'a [f32])>) -> Self {
        let queries = images.iter().flat_map(|&(id, caps)| caps[1..].iter().map(move |c| (c, id))).collect();
        Task { queries, pool }
    }

    pub(crate) fn truth(&self) -> Vec<u64> {
        self.queries.iter().map(|(_, t)| *t).collect()
    }
}

/// Exact dot products of unit vectors (cosine) against every pooled vector.
pub(crate) fn dense_baseline(task: &Task, vec: &HashMap<String, Vec<f32>>) -> Recall {
    let t0 = Instant::now();
    let ranked: Vec<Vec<u64>> = task
        .queries
        .iter()
        .map(|(q, _)| {
            let qv = &vec[*q];
            let mut s: Vec<(f32, u64)> =
                task.pool.iter().map(|(id, v)| (v.iter().zip(qv).map(|(x, y)| x * y).sum(), *id)).collect();
            s.sort_by(|x, y| y.0.total_cmp(&x.0));
            s.into_iter().take(20).map(|(_, id)| id).collect()
        })
        .collect();
    recall(&ranked, &task.truth(), task.queries.len() as f64 / t0.elapsed().as_secs_f64())
}

/// Recall of one search setting; the generator's rows and the no-training reference.
pub(crate) fn run_search(
    index: &Index,
    task: &Task,
    vec: &HashMap<String, Vec<f32>>,
    name: &str,
    opts: &SearchOptions,
) -> (Recall, Vec<Vec<u64>>) {
    let t0 = Instant::now();
    let mut ranked = Vec::with_capacity(task.queries.len());
    for chunk in task.queries.chunks(32) {
        let q: Vec<&str> = chunk.iter().map(|(q, _)| q.as_str()).collect();
        let qv: Vec<&[f32]> = chunk.iter().map(|(q, _)| vec[*q].as_slice()).collect();
        let hits = if name.starts_with("tokenizer reference") {
            index.search_by_quantization(&qv, opts)
        } else {
            index.search_batch(&q, opts, Some(&qv))
        };
        let hits = hits.unwrap_or_else(|e| die(&e.to_string()));
        ranked.extend(hits.into_iter().map(|h| h.into_iter().map(|x| x.id).collect::<Vec<_>>()));
    }
    let r = recall(&ranked, &task.truth(), task.queries.len() as f64 / t0.elapsed().as_secs_f64());
    eprintln!("{name}: R@1 {:.1}, candidates {:.1}", r.r[0], r.candidates);
    (r, ranked)
}

pub(crate) fn fused(beam: usize, w: f32, min_candidates: usize) -> SearchOptions {
    SearchOptions { k: beam, beam_size: beam, fused: true, dense_weight: w, min_candidates, rerank: false }
}
