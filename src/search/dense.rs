//! The exact dense scan: every indexed image scored by its similarity to the query
//! vector (the best dot product of its vector and its attached texts' vectors), on the
//! search kernels.

use super::Hit;
use crate::records::{dot, Records};
use std::cmp::Ordering;

/// Scores per kernel call (4 MB): 16,384 images for 64 queries, a million for one.
const SCORES: usize = 1 << 20;
/// Queries per kernel call: the kernel's tiles are made for a few rows.
const QUERIES: usize = 64;

/// The `k` best images for each query vector, best first (ties by id); with `allowed`
/// (sorted rows), among those rows only. A few allowed rows are gathered and scored
/// alone; many are scored in place with the rest skipped, as gathering them would cost
/// more than scoring every row.
pub(crate) fn top_k(records: &Records, queries: &[&[f32]], k: usize, allowed: Option<&[usize]>) -> Vec<Vec<Hit>> {
    let n = records.ids.len();
    let gathered = allowed.filter(|rows| rows.len() * GATHER_BELOW < n);
    let mask = allowed.filter(|_| gathered.is_none()).map(|rows| {
        let mut mask = vec![false; n];
        rows.iter().for_each(|&r| mask[r] = true);
        mask
    });
    let texts = records.has_text_vectors();
    let mut out = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(QUERIES) {
        let images = SCORES / chunk.len();
        let x: Vec<f32> = chunk.iter().flat_map(|q| q.iter().copied()).collect();
        let mut best: Vec<Vec<Hit>> = vec![Vec::new(); chunk.len()];
        match gathered {
            Some(rows) => {
                for block in rows.chunks(images) {
                    let scores = records.vectors.gathered_scores(&x, chunk.len(), block);
                    keep(records, texts, chunk, &mut best, block.iter().copied(), scores, k);
                }
            }
            None => {
                for start in (0..n).step_by(images) {
                    let rows = images.min(n - start);
                    let mut scores = records.vectors.scores(&x, chunk.len(), start..start + rows);
                    if let Some(mask) = &mask {
                        // A skipped row scores below every real one and is dropped.
                        for row_scores in scores.chunks_exact_mut(rows) {
                            let skipped = row_scores.iter_mut().zip(&mask[start..]).filter(|(_, &m)| !m);
                            skipped.for_each(|(s, _)| *s = f32::NEG_INFINITY);
                        }
                    }
                    keep(records, texts, chunk, &mut best, start..start + rows, scores, k);
                }
            }
        }
        best.iter_mut().for_each(|hits| hits.sort_by(better));
        out.extend(best);
    }
    out
}

/// Below one allowed row in this many, the allowed rows are gathered.
const GATHER_BELOW: usize = 4;

/// Adds a block's scores (`best.len()` queries x the block's `rows`) to each query's
/// best `k`: with attached text vectors (`texts`), a row scores the best of its vector's and its
/// texts' dot products. Rows scored minus infinity (skipped) are left out.
fn keep(
    records: &Records,
    texts: bool,
    queries: &[&[f32]],
    best: &mut [Vec<Hit>],
    rows: impl Iterator<Item = usize> + Clone,
    mut scores: Vec<f32>,
    k: usize,
) {
    let width = scores.len() / queries.len().max(1);
    if texts {
        for (query, row_scores) in queries.iter().zip(scores.chunks_exact_mut(width)) {
            for (row, score) in rows.clone().zip(row_scores.iter_mut()).filter(|(_, s)| s.is_finite()) {
                *score = records.text_vectors(row).map(|t| dot(t, query)).fold(*score, f32::max);
            }
        }
    }
    for (hits, row_scores) in best.iter_mut().zip(scores.chunks_exact(width)) {
        // A row below the k-th best so far cannot enter (a tie may: ties go by id), so
        // the candidates are cut back to k whenever they reach twice that.
        let mut bar =
            if hits.len() >= k { hits.iter().map(|h| h.score).fold(f32::INFINITY, f32::min) } else { f32::MIN };
        for (row, &score) in rows.clone().zip(row_scores) {
            if score >= bar && score.is_finite() {
                hits.push(Hit { id: records.ids[row], score });
                if hits.len() >= 2 * k {
                    bar = cut(hits, k);
                }
            }
        }
        if hits.len() > k {
            cut(hits, k);
        }
    }
}

/// Keeps the `k` best of `hits`; returns the k-th best score.
fn cut(hits: &mut Vec<Hit>, k: usize) -> f32 {
    hits.select_nth_unstable_by(k - 1, better);
    hits.truncate(k);
    hits[k - 1].score
}

fn better(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{NewCodes, NewImage};

    /// The scan matches a plain loop across block edges, with ties broken by id.
    #[test]
    fn finds_the_same_best_as_a_plain_loop() {
        let dim = 5;
        let mut records = Records::new(dim);
        let mut rng = crate::rng::Rng::new(3);
        let vectors: Vec<Vec<f32>> =
            (0..SCORES / QUERIES + 37).map(|_| (0..dim).map(|_| rng.normal()).collect()).collect();
        let images: Vec<NewImage> =
            vectors.iter().enumerate().map(|(i, v)| NewImage { id: 10 * i as u64, key: None, vector: v }).collect();
        records.add_images(&images, NewCodes::default()).unwrap();
        let queries: Vec<Vec<f32>> = (0..QUERIES + 3).map(|_| (0..dim).map(|_| rng.normal()).collect()).collect();
        let q: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        let found = top_k(&records, &q, 7, None);
        for (query, hits) in queries.iter().zip(&found) {
            let mut want: Vec<Hit> = images
                .iter()
                .map(|im| Hit { id: im.id, score: im.vector.iter().zip(query).map(|(a, b)| a * b).sum() })
                .collect();
            want.sort_by(better);
            let ids = |h: &[Hit]| h.iter().map(|h| h.id).collect::<Vec<_>>();
            assert_eq!(ids(hits), ids(&want[..7]));
            assert!(hits.iter().zip(&want).all(|(a, b)| (a.score - b.score).abs() < 1e-4));
        }
        // Two images with the same vector: the lower id first.
        let mut tie = Records::new(2);
        let v = [1.0, 2.0];
        let twins = [NewImage { id: 9, key: None, vector: &v }, NewImage { id: 4, key: None, vector: &v }];
        tie.add_images(&twins, NewCodes::default()).unwrap();
        assert_eq!(top_k(&tie, &[&[1.0, 0.0]], 2, None).concat().iter().map(|h| h.id).collect::<Vec<_>>(), [4, 9]);
    }
}
