//! Filtered search: recall of the quantiser's route against the exact filtered dense
//! scan, and the time of each, with 0.1%, 1%, 10% and 50% of the images allowed, at
//! 100,000 images (and 1,000,000 with `-- 1000000`), beside the unfiltered searches.
//!
//!     cargo bench --bench filter [-- MAX_IMAGES]
//!
//! Vectors of dimension 512 as in the search bench (topic directions plus noise); the
//! tokenizer trains on the first 20,000 images and gives the rest their codes as they
//! are added. The allowed images are a pseudo-random share of the ids, the same for
//! every query; a query's time includes resolving the filter (its rows and, for the
//! quantiser's route, the trie prefixes of the allowed images).

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{Filter, Index, IndexConfig, SearchMode, SearchOptions, TokenizerTrainConfig};
use std::time::Instant;

const DIM: usize = common::BENCH_DIM;
const QUERIES: usize = 100;

/// The ids allowed at `share` (of 1,000,000 parts) among `n` images: a fixed hash of the id.
fn allowed(n: u64, share: u64) -> Vec<u64> {
    (0..n).filter(|id| id.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1_000_000 < share).collect()
}

/// Each query's hit ids and the p50 time in ms.
fn run(index: &Index, queries: &[Vec<f32>], opts: &SearchOptions) -> (Vec<Vec<u64>>, f64) {
    let mut ms = Vec::new();
    let mut found = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = index.search("", opts, Some(q)).unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        found.push(hits.iter().map(|h| h.id).collect());
    }
    ms.sort_by(f64::total_cmp);
    (found, common::percentile(&ms, 0.5))
}

/// The share of the exact top 10 found in the top 10, and of queries whose exact best
/// is among the 10 found, over all queries.
fn recall(found: &[Vec<u64>], exact: &[Vec<u64>]) -> (f64, f64) {
    let pairs = || found.iter().zip(exact);
    let hit: usize = pairs().map(|(f, e)| e.iter().filter(|id| f.contains(id)).count()).sum();
    let total: usize = exact.iter().map(Vec::len).sum();
    let best = pairs().filter(|(f, e)| e.first().is_some_and(|b| f.contains(b))).count();
    (100.0 * hit as f64 / total.max(1) as f64, 100.0 * best as f64 / exact.len() as f64)
}

fn main() {
    let max: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let config = IndexConfig { dim: DIM, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let index = Index::open(dir.path().join("index"), Some(&config)).unwrap();
    let mut gen = common::TopicVectors::new();
    gen.add_to(&index, 0, 20_000);
    let t = Instant::now();
    let tok = TokenizerTrainConfig { epochs: 2, hidden: 256, ..Default::default() };
    index.train_tokenizer(&tok, |_| true).unwrap();
    println!("tokenizer (20000 images, 2 epochs): {:.1} s", t.elapsed().as_secs_f64());
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| gen.next()).collect();
    let dense = SearchOptions { k: 10, mode: SearchMode::Dense, ..Default::default() };
    let quantizer = SearchOptions { k: 10, beam_size: 20, mode: SearchMode::Quantizer, ..Default::default() };
    println!(
        "| images | allowed | dense p50 ms | quantiser p50 ms | quantiser: exact top 10 found | exact best found |"
    );
    println!("|---|---|---|---|---|---|");
    for size in [100_000u64, 1_000_000].into_iter().filter(|&s| s <= max) {
        let have = index.image_count() as u64;
        gen.add_to(&index, have, size);
        let (exact, dense_ms) = run(&index, &queries, &dense);
        let (found, q_ms) = run(&index, &queries, &quantizer);
        let (r10, r1) = recall(&found, &exact);
        println!("| {size} | all | {dense_ms:.1} | {q_ms:.1} | {r10:.1} | {r1:.1} |");
        for (share, label) in [(1_000, "0.1%"), (10_000, "1%"), (100_000, "10%"), (500_000, "50%")] {
            let ids = allowed(size, share);
            let filter = Filter::Ids(&ids);
            let (exact, dense_ms) = run(&index, &queries, &SearchOptions { filter, ..dense });
            let (found, q_ms) = run(&index, &queries, &SearchOptions { filter, ..quantizer });
            assert!(found.iter().flatten().all(|id| ids.binary_search(id).is_ok()), "a hit outside the filter");
            let (r10, r1) = recall(&found, &exact);
            println!("| {size} | {label} ({} images) | {dense_ms:.1} | {q_ms:.1} | {r10:.1} | {r1:.1} |", ids.len());
        }
    }
}
