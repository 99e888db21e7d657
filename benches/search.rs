//! Query speed on one handle as the index grows (1k to 1M images), beam 20,
//! with a t5-small-sized generator (random weights: speed does not depend on them),
//! beside an exact dense baseline (blocked matmul over all image vectors, both cores)
//! on the same run.
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

use avg::{Index, IndexConfig, NewImage, SearchOptions};
use candle_core::{Device, Tensor};
use std::time::Instant;

const DIM: usize = common::BENCH_DIM;

fn add_images(index: &Index, gen: &mut common::TopicVectors, from: u64, to: u64, vectors: &mut Vec<f32>) {
    for start in (from..to).step_by(10_000) {
        let end = (start + 10_000).min(to);
        let flat: Vec<f32> = (start..end).flat_map(|_| gen.next()).collect();
        let images: Vec<NewImage> =
            (start..end).zip(flat.chunks(DIM)).map(|(id, v)| NewImage { id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
        vectors.extend_from_slice(&flat);
    }
}

/// Exact top-10 by dot product for one query, in blocks of 16k rows (gemm on both cores).
fn dense_top10(x: &[Tensor], q: &Tensor) -> Vec<(f32, usize)> {
    let mut best: Vec<(f32, usize)> = Vec::new();
    let mut base = 0;
    for block in x {
        let scores = block.matmul(q).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        best.extend(scores.iter().enumerate().map(|(i, &s)| (s, base + i)));
        let nth = 10.min(best.len() - 1);
        best.select_nth_unstable_by(nth, |a, b| b.0.total_cmp(&a.0));
        best.truncate(10);
        base += scores.len();
    }
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    best
}

fn main() {
    let max: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t5-small-random");

    let config = IndexConfig { dim: DIM, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let index = Index::open(dir.path().join("index"), Some(&config)).unwrap();
    let mut gen = common::TopicVectors::new();
    let mut vectors = Vec::new();
    add_images(&index, &mut gen, 0, 20_000, &mut vectors);
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
        vectors.truncate(size.min(have) as usize * DIM);
        if have < size {
            add_images(&index, &mut gen, have, size, &mut vectors);
        }
        eprintln!("measuring {size} images");
        rows.push((size, measure(&index, &queries, &vectors, &mut gen)));
    }
    rows.sort_by_key(|r| r.0);
    println!("| images | libavg beam 20 p50 ms | p99 ms | queries/s | dense p50 ms | dense queries/s |");
    println!("|---|---|---|---|---|---|");
    for (_, row) in rows {
        println!("{row}");
    }
}

/// One table row: beam-20 search over the index beside the dense baseline over `vectors`.
fn measure(index: &Index, queries: &[String], vectors: &[f32], gen: &mut common::TopicVectors) -> String {
    let n = index.image_count();
    let opts = SearchOptions { k: 10, beam_size: 20, rerank: false, ..Default::default() };
    index.search(&queries[0], &opts, None).unwrap();
    let mut lat = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = index.search(q, &opts, None).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(hits.iter().all(|h| (h.id as usize) < n));
    }
    lat.sort_by(f64::total_cmp);
    let x: Vec<Tensor> = vectors
        .chunks(16_384 * DIM)
        .map(|c| Tensor::from_slice(c, (c.len() / DIM, DIM), &Device::Cpu).unwrap())
        .collect();
    let mut dlat = Vec::new();
    for _ in 0..10 {
        let q = Tensor::from_vec(gen.next(), (DIM, 1), &Device::Cpu).unwrap();
        let t = Instant::now();
        dense_top10(&x, &q);
        dlat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    dlat.sort_by(f64::total_cmp);
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    let dmean = dlat.iter().sum::<f64>() / dlat.len() as f64;
    format!(
        "| {n} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        common::percentile(&lat, 0.5),
        common::percentile(&lat, 0.99),
        1e3 / mean,
        common::percentile(&dlat, 0.5),
        1e3 / dmean
    )
}
