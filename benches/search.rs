//! Query speed as the index grows (1k to 1M images), beam 20, with a t5-small-sized
//! generator (random weights: speed does not depend on them) searched through f32 and
//! through int8 weights (`SearchWeights`), beside fused searches (default widening and
//! dense weight) on the generator's codes (int8) and on the quantiser's
//! (`SearchMode::Quantizer`), and libavg's exact dense scan (`SearchMode::Dense`, both
//! cores), in the same run.
//!
//!     cargo bench --bench search [-- MAX_IMAGES]
//!
//! The tokenizer and generator train on 20,000 images; the smaller sizes remove images
//! from that index, and images past the first 20,000 get their vokens from the trained
//! tokenizer as they are added, as in a host. Their vectors (dimension 512) are
//! synthetic but structured like embeddings: one of 20,000 random topic directions plus
//! noise, normalised.

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{Index, IndexConfig, SearchMode, SearchOptions, SearchWeights};
use std::time::Instant;

const DIM: usize = common::BENCH_DIM;

fn main() {
    let max: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t5-small-random");
    let path = dir.path().join("index");

    let config = IndexConfig { dim: DIM, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let mut index = Index::open(&path, Some(&config)).unwrap();
    let mut gen = common::TopicVectors::new();
    gen.add_to(&index, 0, 20_000);
    common::train_for_search(&index, &model, &gen.next());

    let queries: Vec<String> = (0..40).map(|i| format!("a photo of a dog number {i} running on the beach")).collect();
    // Below 20,000 images: the trained index with images removed (their trie branches go
    // with them); above: new images get their vokens from the tokenizer as they are added.
    let mut rows = Vec::new();
    for size in [20_000u64, 10_000, 1_000, 100_000, 1_000_000].into_iter().filter(|&s| s <= max.max(20_000)) {
        let have = index.image_count() as u64;
        for id in (size..have).rev() {
            index.remove_image(id).unwrap();
        }
        if have < size {
            gen.add_to(&index, have, size);
        }
        eprintln!("measuring {size} images");
        // Each kind of search weights on a read-only handle of the same saved index.
        index.save().unwrap();
        drop(index);
        let mut cells = Vec::new();
        for weights in [SearchWeights::F32, SearchWeights::Int8] {
            let ro =
                Index::open_read_only(&path, Some(&IndexConfig { search_weights: weights, ..config.clone() })).unwrap();
            cells.push(beam_latency(&ro, &queries));
            if weights == SearchWeights::Int8 {
                cells.push(vector_latency(
                    &ro,
                    &queries,
                    &mut gen,
                    SearchOptions { mode: SearchMode::Fused, ..beam_20() },
                ));
            }
        }
        index = Index::open(&path, Some(&config)).unwrap();
        for mode in [SearchMode::Quantizer, SearchMode::Dense] {
            cells.push(vector_latency(&index, &queries, &mut gen, SearchOptions { mode, ..beam_20() }));
        }
        rows.push((size, cells));
    }
    rows.sort_by_key(|r| r.0);
    let [one, all] = read_rates();
    println!("memory read rate: {one:.1} GB/s on one core, {all:.1} GB/s on all {} (summing 1 GiB)", cores());
    println!(
        "| images | f32 beam 20 p50 ms | p99 ms | queries/s | int8 beam 20 p50 ms | p99 ms | queries/s | int8 / f32 p50 \
         | int8 fused p50 ms | p99 ms | queries/s | quantiser's codes, fused, p50 ms | p99 ms | queries/s \
         | dense p50 ms | p99 ms | queries/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (size, cells) in rows {
        let [f32, int8, fused, quantizer, dense] = std::array::from_fn(|i| cells[i].cells());
        println!("| {size} | {f32} | {int8} | {:.2} | {fused} | {quantizer} | {dense} |", cells[1].p50 / cells[0].p50);
    }
}

/// Latencies in ms, sorted.
struct Latency {
    p50: f64,
    p99: f64,
    per_second: f64,
}

impl Latency {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        Latency { p50: common::percentile(&ms, 0.5), p99: common::percentile(&ms, 0.99), per_second: 1e3 / mean }
    }

    fn cells(&self) -> String {
        format!("{:.1} | {:.1} | {:.1}", self.p50, self.p99, self.per_second)
    }
}

/// k 10, beam 20, with the other options at their defaults.
fn beam_20() -> SearchOptions<'static> {
    SearchOptions { k: 10, beam_size: 20, mode: SearchMode::Beam, ..Default::default() }
}

/// Beam-20 search, k 10, one query at a time.
fn beam_latency(index: &Index, queries: &[String]) -> Latency {
    let n = index.image_count();
    let opts = beam_20();
    index.search(&queries[0], &opts, None).unwrap();
    let mut lat = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = index.search(q, &opts, None).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(hits.iter().all(|h| (h.id as usize) < n));
    }
    Latency::of(lat)
}

/// A search that reads a query vector (fused, the quantiser's codes or the dense scan),
/// one query at a time, each text with a vector of its own.
fn vector_latency(index: &Index, queries: &[String], gen: &mut common::TopicVectors, opts: SearchOptions) -> Latency {
    let mut lat = Vec::new();
    for text in queries {
        let q = gen.next();
        let t = Instant::now();
        let hits = index.search(text, &opts, Some(&q)).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(hits.len(), 10);
    }
    Latency::of(lat)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// GB/s of streaming reads, one core and all cores: the best of three sums of a 1 GiB
/// buffer (eight lanes, so that the sum vectorises), the ceiling for a step that only
/// reads its weights.
fn read_rates() -> [f64; 2] {
    let data = vec![1f32; 1 << 28];
    let sum = |part: &[f32]| {
        let mut lanes = [0f32; 8];
        for c in part.chunks_exact(8) {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l += v;
            }
        }
        lanes.iter().sum::<f32>()
    };
    let rate = |threads: usize| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let total: f32 = std::thread::scope(|s| {
                    let parts: Vec<_> = data.chunks(data.len() / threads).map(|p| s.spawn(move || sum(p))).collect();
                    parts.into_iter().map(|h| h.join().unwrap()).sum()
                });
                assert!(total > 0.0);
                (data.len() * 4) as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .fold(0f64, f64::max)
    };
    [rate(1), rate(cores())]
}
