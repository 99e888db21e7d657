//! Recall of ranked lists, per-level code accuracy, the dense baseline, and one search
//! setting run over every query.

use crate::die;
use avg::{Index, SearchMode, SearchOptions};
use std::collections::HashMap;
use std::time::Instant;

const KS: [usize; 3] = [1, 5, 10];

pub(crate) struct Recall {
    pub r: [f64; 3],
    /// The target anywhere in the list (up to the beam size): candidate recall.
    pub candidates: f64,
    pub qps: f64,
    /// Per query: its target image, and whether the target is within the first 1, 5, 10.
    pub per_query: Vec<(u64, [bool; 3])>,
}

pub(crate) fn recall(ranked: &[Vec<u64>], truth: &[u64], qps: f64) -> Recall {
    let per_query: Vec<(u64, [bool; 3])> =
        ranked.iter().zip(truth).map(|(hits, &t)| (t, KS.map(|k| hits.iter().take(k).any(|&h| h == t)))).collect();
    let candidates = ranked.iter().zip(truth).filter(|(hits, t)| hits.contains(t)).count();
    let pct = |x: usize| 100.0 * x as f64 / truth.len() as f64;
    let r = [0, 1, 2].map(|i| pct(per_query.iter().filter(|(_, h)| h[i]).count()));
    Recall { r, candidates: pct(candidates), qps, per_query }
}

/// R@1, R@5 and R@10 of one row minus a baseline's on the same queries, in points, each
/// with a 95% interval.
pub(crate) struct Delta {
    pub d: [f64; 3],
    pub lo: [f64; 3],
    pub hi: [f64; 3],
}

/// `row` against `base` (the same queries in the same order), by a paired bootstrap
/// that resamples target images, not queries: the captions of one image are queries of
/// one target, and their hits go together. `None` where the queries differ.
pub(crate) fn paired_delta(row: &Recall, base: &Recall) -> Option<Delta> {
    use rand::{Rng, SeedableRng};
    let same = row.per_query.len() == base.per_query.len()
        && row.per_query.iter().zip(&base.per_query).all(|(a, b)| a.0 == b.0);
    if !same || row.per_query.is_empty() {
        return None;
    }
    // Per image: the summed hit differences at 1, 5, 10 and its number of queries.
    let mut by_image: HashMap<u64, ([i64; 3], i64)> = HashMap::new();
    for ((t, a), (_, b)) in row.per_query.iter().zip(&base.per_query) {
        let e = by_image.entry(*t).or_default();
        (0..3).for_each(|i| e.0[i] += a[i] as i64 - b[i] as i64);
        e.1 += 1;
    }
    let mut images: Vec<([i64; 3], i64)> = by_image.into_values().collect();
    images.sort_unstable();
    let points = |diff: [i64; 3], n: i64| diff.map(|x| 100.0 * x as f64 / n as f64);
    let total = images.iter().fold(([0; 3], 0), |acc, (d, n)| ([0, 1, 2].map(|i| acc.0[i] + d[i]), acc.1 + n));
    const RESAMPLES: usize = 2000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let mut draws: Vec<[f64; 3]> = (0..RESAMPLES)
        .map(|_| {
            let (mut diff, mut n) = ([0i64; 3], 0i64);
            for _ in 0..images.len() {
                let (d, k) = images[rng.random_range(0..images.len())];
                (0..3).for_each(|i| diff[i] += d[i]);
                n += k;
            }
            points(diff, n)
        })
        .collect();
    let (mut lo, mut hi) = ([0.0; 3], [0.0; 3]);
    for i in 0..3 {
        draws.sort_by(|a, b| a[i].total_cmp(&b[i]));
        lo[i] = draws[RESAMPLES * 25 / 1000][i];
        hi[i] = draws[RESAMPLES * 975 / 1000 - 1][i];
    }
    Some(Delta { d: points(total.0, total.1), lo, hi })
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
    /// The captions `queries` of each image (never its first, the image's own text and
    /// its vector's source, nor one attached to it), each a query of that image.
    pub(crate) fn new(
        images: &[(u64, &'a [String])],
        pool: Vec<(u64, &'a [f32])>,
        queries: std::ops::Range<usize>,
    ) -> Self {
        let queries = images
            .iter()
            .flat_map(|&(id, caps)| {
                caps[queries.start.min(caps.len())..queries.end.min(caps.len())].iter().map(move |c| (c, id))
            })
            .collect();
        Task { queries, pool }
    }

    pub(crate) fn truth(&self) -> Vec<u64> {
        self.queries.iter().map(|(_, t)| *t).collect()
    }
}

/// Exact dot products of unit vectors (cosine) against every pooled vector.
pub(crate) fn dense_baseline(task: &Task, vec: &HashMap<String, Vec<f32>>) -> Recall {
    dense_with_words(task, vec, &HashMap::new())
}

/// The dense scan given an image's own words: an image scores the best of its vector's
/// and its attached texts' (`words`, by image id) similarities to the query.
pub(crate) fn dense_with_words(
    task: &Task,
    vec: &HashMap<String, Vec<f32>>,
    words: &HashMap<u64, Vec<&[f32]>>,
) -> Recall {
    let dot = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    let t0 = Instant::now();
    let ranked: Vec<Vec<u64>> = task
        .queries
        .iter()
        .map(|(q, _)| {
            let qv = &vec[*q];
            let mut s: Vec<(f32, u64)> = task
                .pool
                .iter()
                .map(|(id, v)| {
                    let own = words.get(id).into_iter().flatten().map(|w| dot(w, qv));
                    (own.fold(dot(v, qv), f32::max), *id)
                })
                .collect();
            s.sort_by(|x, y| y.0.total_cmp(&x.0));
            s.into_iter().take(20).map(|(_, id)| id).collect()
        })
        .collect();
    recall(&ranked, &task.truth(), task.queries.len() as f64 / t0.elapsed().as_secs_f64())
}

/// Recall of one search setting.
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
        let hits = index.search_batch(&q, opts, Some(&qv)).unwrap_or_else(|e| die(&e.to_string()));
        ranked.extend(hits.into_iter().map(|h| h.into_iter().map(|x| x.id).collect::<Vec<_>>()));
    }
    let r = recall(&ranked, &task.truth(), task.queries.len() as f64 / t0.elapsed().as_secs_f64());
    eprintln!("{name}: R@1 {:.1}, candidates {:.1}", r.r[0], r.candidates);
    (r, ranked)
}

pub(crate) fn fused(beam: usize, w: f32, min_candidates: usize) -> SearchOptions<'static> {
    SearchOptions {
        k: beam,
        beam_size: beam,
        mode: SearchMode::Fused,
        dense_weight: w,
        min_candidates,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_delta_is_zero_for_the_same_hits_and_bounds_a_real_difference() {
        // 100 images with 4 queries each; the baseline finds the first 50 images at 1.
        let truth: Vec<u64> = (0..400).map(|q| q / 4).collect();
        let base: Vec<Vec<u64>> = truth.iter().map(|&t| vec![if t < 50 { t } else { 999 }]).collect();
        let base = recall(&base, &truth, 1.0);
        let same = paired_delta(&base, &base).unwrap();
        assert_eq!((same.d, same.lo, same.hi), ([0.0; 3], [0.0; 3], [0.0; 3]));
        // This row also finds images 50..70: +20 points, an interval around it, above 0.
        let better: Vec<Vec<u64>> = truth.iter().map(|&t| vec![if t < 70 { t } else { 999 }]).collect();
        let d = paired_delta(&recall(&better, &truth, 1.0), &base).unwrap();
        assert!((d.d[0] - 20.0).abs() < 1e-9, "{:?}", d.d);
        assert!(d.lo[0] > 5.0 && d.lo[0] < 20.0 && d.hi[0] > 20.0 && d.hi[0] < 35.0, "{:?} {:?}", d.lo, d.hi);
        // Other queries: no comparison.
        let other = recall(&[vec![1]], &[1], 1.0);
        assert!(paired_delta(&other, &base).is_none());
    }
}
