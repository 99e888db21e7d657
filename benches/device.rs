//! Training and search speed on one device, to compare the CPU with a GPU:
//!
//!     cargo bench --bench device -- cpu
//!     cargo bench --features cuda --bench device -- cuda:0
//!
//! 1. Tokenizer: 20,000 image vectors of dimension 512, N 1024, M 4: seconds per epoch.
//! 2. Generator: a t5-small-sized checkpoint (60M parameters, random weights), batch 64:
//!    seconds per training step, L_gen alone and L_gen + L_dis (beam 5).
//! 3. Search with that generator over the 20,000 images: one query at a time at beam 1,
//!    5 and 20 (p50, p99, queries/s) and 40 queries in one batch at beam 20 (queries/s).
//!
//! The T5 tokenizer is read from `AVG_T5_TOKENIZER`, else from
//! ../shared/data/t5-tokenizer/tokenizer.json beside the checkout.

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{
    GeneratorTrainConfig, Index, IndexConfig, NewCaption, NewImage, SearchMode, SearchOptions, TokenizerTrainConfig,
};
use std::time::Instant;

const IMAGES: u64 = 20_000;
const BATCH: usize = 64;
const STEPS: usize = 6;

fn main() {
    let device = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_else(|| "cpu".into());
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t5-small-random");
    common::write_t5_small(&model, &common::t5_tokenizer());

    let config = IndexConfig {
        dim: common::BENCH_DIM,
        codebook_size: 1024,
        voken_len: 4,
        device: device.clone(),
        ..Default::default()
    };
    let index = Index::open(dir.path().join("index"), Some(&config)).unwrap();
    let mut gen = common::TopicVectors::new();
    let vectors: Vec<Vec<f32>> = (0..IMAGES).map(|_| gen.next()).collect();
    let images: Vec<NewImage> = vectors.iter().zip(0..).map(|(v, id)| NewImage { id, key: None, vector: v }).collect();
    index.add_images(&images).unwrap();
    let texts: Vec<String> =
        (0..BATCH * STEPS).map(|i| format!("a photo of a dog number {i} running on the beach at dusk")).collect();
    for (id, text) in texts.iter().enumerate() {
        index.add_captions(id as u64, &[NewCaption { text, vector: Some(&gen.next()) }]).unwrap();
    }
    println!("device {device}; {IMAGES} images of dimension {}, N 1024, M 4", common::BENCH_DIM);

    let epochs = 2;
    let t = Instant::now();
    index.train_tokenizer(&TokenizerTrainConfig { epochs, ..Default::default() }, |_| true).unwrap();
    println!(
        "tokenizer: {:.2} s per epoch ({epochs} epochs, k-means and encoding included)",
        t.elapsed().as_secs_f64() / epochs as f64
    );

    for dis in [false, true] {
        let cfg = GeneratorTrainConfig {
            model_dir: model.clone(),
            epochs: 1,
            batch_size: BATCH,
            dis,
            beam_size: 5,
            // Captions only: with the vector slot on, each of the 19,616 caption-free
            // images would add a pair learned from its vector (307 steps, not 6).
            index_vectors: false,
            ..Default::default()
        };
        let s = common::percentile(&common::train_step_seconds(&index, &cfg), 0.5);
        let what = if dis { "L_gen + L_dis (beam 5)" } else { "L_gen" };
        println!(
            "generator training step, t5-small size, batch {BATCH}, {what}: {:.3} s ({:.0} captions/s)",
            s,
            BATCH as f64 / s
        );
    }

    let queries: Vec<String> = (0..40).map(|i| format!("a photo of a dog number {i} running on the beach")).collect();
    for beam_size in [1, 5, 20] {
        let opts = SearchOptions { k: beam_size.min(10), beam_size, mode: SearchMode::Beam, ..Default::default() };
        index.search(&queries[0], &opts, None).unwrap();
        let mut lat: Vec<f64> = queries
            .iter()
            .map(|q| {
                let t = Instant::now();
                index.search(q, &opts, None).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        let mean = lat.iter().sum::<f64>() / lat.len() as f64;
        println!(
            "search beam {beam_size}, one query at a time: p50 {:.1} ms, p99 {:.1} ms, {:.1} queries/s",
            common::percentile(&lat, 0.5),
            common::percentile(&lat, 0.99),
            1e3 / mean
        );
    }
    let opts = SearchOptions { k: 10, beam_size: 20, mode: SearchMode::Beam, ..Default::default() };
    let q: Vec<&str> = queries.iter().map(String::as_str).collect();
    let t = Instant::now();
    index.search_batch(&q, &opts, None).unwrap();
    println!(
        "search beam 20, {} queries in one batch: {:.1} queries/s",
        q.len(),
        q.len() as f64 / t.elapsed().as_secs_f64()
    );
}
