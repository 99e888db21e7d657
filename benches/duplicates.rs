//! Near-duplicates at 100,000 images: the time of `Index::near_duplicates` and its recall
//! against the exhaustive answer (every image's nearest neighbours by the exact dense
//! scan, which compares every pair).
//!
//!     cargo bench --bench duplicates [-- IMAGES]
//!
//! Vectors of dimension 512 as in the search bench (topic directions plus noise: two
//! images of one topic are far below the thresholds); every 50th image gets a copy moved
//! by a little noise (a re-saved or slightly edited photo) and every 500th a second one.

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{Index, IndexConfig, NewImage, SearchMode, SearchOptions};
use std::collections::HashMap;
use std::time::Instant;

const DIM: usize = common::BENCH_DIM;

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// The exhaustive answer's pairs: each image's neighbours at `threshold` or above.
fn exhaustive_pairs(index: &Index, vectors: &[(u64, Vec<f32>)], threshold: f32) -> Vec<(u64, u64)> {
    let opts = SearchOptions { k: 8, mode: SearchMode::Dense, ..Default::default() };
    let mut pairs = Vec::new();
    for chunk in vectors.chunks(4096) {
        let texts = vec![""; chunk.len()];
        let q: Vec<&[f32]> = chunk.iter().map(|(_, v)| v.as_slice()).collect();
        for ((id, _), hits) in chunk.iter().zip(index.search_batch(&texts, &opts, Some(&q)).unwrap()) {
            // Eight neighbours cover every planted group; the last must fall below.
            assert!(hits.last().is_none_or(|h| h.score < threshold), "image {id}: more than 7 neighbours above");
            pairs.extend(hits.iter().filter(|h| h.id > *id && h.score >= threshold).map(|h| (*id, h.id)));
        }
    }
    pairs
}

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path().join("index"), Some(&IndexConfig { dim: DIM, ..Default::default() })).unwrap();
    let mut gen = common::TopicVectors::new();
    let mut rng = common::Lcg(9);
    let mut vectors: Vec<(u64, Vec<f32>)> = (0..n).map(|id| (id, gen.next())).collect();
    for i in (0..n as usize).step_by(50) {
        let copies = if i % 500 == 0 { 2 } else { 1 };
        for _ in 0..copies {
            let amplitude = 0.01 + 0.01 * (rng.next() + 1.0);
            let moved = unit(vectors[i].1.iter().map(|x| x + amplitude * rng.next()).collect());
            vectors.push((vectors.len() as u64, moved));
        }
    }
    for chunk in vectors.chunks(10_000) {
        let images: Vec<NewImage> = chunk.iter().map(|(id, v)| NewImage { id: *id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
    }
    println!("{} images, {} of them planted copies", vectors.len(), vectors.len() as u64 - n);
    println!("| threshold | groups found | time s | exhaustive pairs | found in one group | recall % |");
    println!("|---|---|---|---|---|---|");
    let t = Instant::now();
    let all = exhaustive_pairs(&index, &vectors, 0.9);
    let exhaustive_s = t.elapsed().as_secs_f64();
    for threshold in [0.9f32, 0.95] {
        let t = Instant::now();
        let groups = index.near_duplicates(threshold).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let group_of: HashMap<u64, usize> =
            groups.iter().enumerate().flat_map(|(g, ids)| ids.iter().map(move |&id| (id, g))).collect();
        let pairs: Vec<&(u64, u64)> = all.iter().filter(|(a, b)| dot(&vectors, *a, *b) >= threshold).collect();
        let found = pairs.iter().filter(|(a, b)| group_of.get(a).is_some_and(|g| group_of.get(b) == Some(g))).count();
        let recall = 100.0 * found as f64 / pairs.len().max(1) as f64;
        println!("| {threshold} | {} | {secs:.2} | {} | {found} | {recall:.2} |", groups.len(), pairs.len());
    }
    println!("(the exhaustive answer, by the exact dense scan of every image: {exhaustive_s:.0} s)");
}

fn dot(vectors: &[(u64, Vec<f32>)], a: u64, b: u64) -> f32 {
    vectors[a as usize].1.iter().zip(&vectors[b as usize].1).map(|(x, y)| x * y).sum()
}
