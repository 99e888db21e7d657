//! Memory of an open index per image: resident set growth while 100,000 images
//! (vectors of dimension 512, one caption each, vokens N 1024 M 4) are added, and after
//! the index is saved and reopened in a fresh handle.
//!
//!     cargo bench --bench memory [-- IMAGES]

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{Index, IndexConfig, NewCaption, NewImage, TokenizerTrainConfig};

/// Resident set size in bytes (Linux).
fn rss() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0
}

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let config = IndexConfig { dim: common::BENCH_DIM, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let mut gen = common::TopicVectors::new();
    let add = |index: &Index, gen: &mut common::TopicVectors, from: u64, to: u64| {
        for start in (from..to).step_by(10_000) {
            let end = (start + 10_000).min(to);
            let vectors: Vec<Vec<f32>> = (start..end).map(|_| gen.next()).collect();
            let images: Vec<NewImage> =
                vectors.iter().zip(start..).map(|(v, id)| NewImage { id, key: None, vector: v }).collect();
            index.add_images(&images).unwrap();
            for id in start..end {
                index
                    .add_captions(
                        id,
                        &[NewCaption { text: &format!("a photo of item {id} on a sunny day"), vector: None }],
                    )
                    .unwrap();
            }
        }
    };
    let before = rss();
    let index = Index::open(dir.path().join("index"), Some(&config)).unwrap();
    let first = n.min(20_000);
    add(&index, &mut gen, 0, first);
    index.train_tokenizer(&TokenizerTrainConfig { epochs: 1, align: false, ..Default::default() }, |_| true).unwrap();
    let trained = rss();
    add(&index, &mut gen, first, n);
    let grown = rss();
    index.save().unwrap();
    drop(index);
    let closed = rss();
    let index = Index::open(dir.path().join("index"), None).unwrap();
    let reopened = rss();
    assert_eq!(index.image_count() as u64, n);
    let vector_bytes = (common::BENCH_DIM * 4) as f64;
    println!(
        "{n} images, dimension {} ({vector_bytes} bytes of vector each), one caption each, N 1024, M 4",
        common::BENCH_DIM
    );
    println!("while adding (tokenizer trained): {:.0} bytes per image", (grown - trained) / (n - first).max(1) as f64);
    println!(
        "reopened from disk: {:.0} bytes per image ({:.1} MB for the handle)",
        (reopened - closed) / n as f64,
        (reopened - closed) / 1e6
    );
    println!("process: {:.1} MB before opening, {:.1} MB at the peak of adding", before / 1e6, grown / 1e6);
}
