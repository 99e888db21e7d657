//! Search under load: one query at a time on a quiet machine, then with two busy threads
//! competing for the cores (another program's work, as on a desktop or a shared
//! server), then the throughput of 1, 2 and 4 host threads searching one index at once.
//! Beam 20, k 10, a t5-small-sized generator, 2,000 images of dimension 512.
//!
//!     cargo bench --bench load [-- QUERIES]

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{Index, IndexConfig, NewImage, SearchMode, SearchOptions};
use std::time::Instant;

/// p50 and p99 in ms of `queries` answered one after the other.
fn latency(index: &Index, queries: &[String], opts: &SearchOptions) -> (f64, f64) {
    let mut ms: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            index.search(q, opts, None).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (common::percentile(&ms, 0.5), common::percentile(&ms, 0.99))
}

/// Queries per second with `threads` host threads sharing `queries`.
fn throughput(index: &Index, queries: &[String], opts: &SearchOptions, threads: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in queries.chunks(queries.len().div_ceil(threads)) {
            s.spawn(move || part.iter().for_each(|q| drop(index.search(q, opts, None).unwrap())));
        }
    });
    queries.len() as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n_queries: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let config = IndexConfig { dim: common::BENCH_DIM, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let index = Index::open(dir.path().join("index"), Some(&config)).unwrap();
    let mut gen = common::TopicVectors::new();
    let flat: Vec<f32> = (0..2_000).flat_map(|_| gen.next()).collect();
    let images: Vec<NewImage> = (0..2_000u64)
        .zip(flat.chunks(common::BENCH_DIM))
        .map(|(id, v)| NewImage { id, key: None, vector: v })
        .collect();
    index.add_images(&images).unwrap();
    common::train_for_search(&index, &dir.path().join("t5-small-random"), &gen.next());

    let queries: Vec<String> =
        (0..n_queries).map(|i| format!("a photo of a dog number {i} running on the beach")).collect();
    let opts = SearchOptions { k: 10, beam_size: 20, mode: SearchMode::Beam, ..Default::default() };
    index.search(&queries[0], &opts, None).unwrap();

    // Each setting quiet, then with two busy threads competing for the cores.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "| {cores} cores, beam 20 | quiet p50 ms | p99 ms | two busy threads p50 ms | p99 ms | p50 loaded / quiet |"
    );
    println!("|---|---|---|---|---|---|");
    for (threads, name) in [(0, "default (a thread per core)"), (1, "avg_set_threads(1)")] {
        avg::set_threads(threads);
        let quiet = latency(&index, &queries, &opts);
        let loaded = common::with_busy_threads(2, || latency(&index, &queries, &opts));
        let ratio = loaded.0 / quiet.0;
        println!("| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {ratio:.2} |", quiet.0, quiet.1, loaded.0, loaded.1);
    }
    avg::set_threads(0);
    println!();
    println!("| host threads searching at once | queries/s |");
    println!("|---|---|");
    for threads in [1, 2, 4] {
        let many: Vec<String> = queries.iter().cycle().take(queries.len() * 2).cloned().collect();
        println!("| {threads} | {:.1} |", throughput(&index, &many, &opts, threads));
    }
}
