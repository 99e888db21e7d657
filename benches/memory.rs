//! Memory of an open index per image, and what each vector storage (`VectorStorage`)
//! saves: 100,000 images by default (vectors of dimension 512, one caption each, vokens
//! N 1024 M 4) are added and saved; then the saved index is opened read-only as f32,
//! f16 and int8 in turn, in the same run, and each handle's resident memory, the peak
//! of its opening, the bytes its vectors take and its dense scan (one query at a time,
//! both cores) are measured, with the compressed scans' agreement with f32's top 10.
//!
//!     cargo bench --bench memory [-- IMAGES]

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{
    Hit, Index, IndexConfig, NewCaption, NewImage, SearchMode, SearchOptions, TokenizerTrainConfig, VectorStorage,
};
use std::time::Instant;

/// Resident set size and its peak since the last `reset_peak`, in bytes (Linux).
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = |key: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() * 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

const QUERIES: usize = 40;

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let config = IndexConfig { dim: common::BENCH_DIM, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let mut gen = common::TopicVectors::new();
    let before = rss().0;
    let index = Index::open(&path, Some(&config)).unwrap();
    let first = n.min(20_000);
    add(&index, &mut gen, 0, first);
    index.train_tokenizer(&TokenizerTrainConfig { epochs: 1, align: false, ..Default::default() }, |_| true).unwrap();
    let trained = rss().0;
    add(&index, &mut gen, first, n);
    let grown = rss().0;
    index.save().unwrap();
    drop(index);
    let vector_bytes = (common::BENCH_DIM * 4) as f64;
    println!(
        "{n} images, dimension {} ({vector_bytes} bytes of f32 vector each), one caption each, N 1024, M 4",
        common::BENCH_DIM
    );
    println!("while adding (tokenizer trained): {:.0} bytes per image", (grown - trained) / (n - first).max(1) as f64);
    println!("process: {:.1} MB before opening, {:.1} MB at the peak of adding", before / 1e6, grown / 1e6);

    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| gen.next()).collect();
    println!(
        "\n| vectors | resident MB | bytes per image | vectors MB | opening's peak MB | dense p50 ms | p99 ms \
         | p50 / f32 | top-1 as f32 | top-10 overlap with f32 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut exact: Vec<Vec<Hit>> = Vec::new();
    let mut f32_p50 = 0.0;
    for storage in [VectorStorage::F32, VectorStorage::F16, VectorStorage::Int8] {
        let closed = rss().0;
        reset_peak();
        let ro =
            Index::open_read_only(&path, Some(&IndexConfig { vector_storage: storage, ..config.clone() })).unwrap();
        let (open, peak) = rss();
        assert_eq!(ro.image_count() as u64, n);
        let (hits, mut ms) = dense_scans(&ro, &queries);
        ms.sort_by(f64::total_cmp);
        let p50 = common::percentile(&ms, 0.5);
        if storage == VectorStorage::F32 {
            (exact, f32_p50) = (hits.clone(), p50);
        }
        let top1 = hits.iter().zip(&exact).filter(|(a, b)| a[0].id == b[0].id).count();
        let overlap: usize =
            hits.iter().zip(&exact).map(|(a, b)| a.iter().filter(|h| b.iter().any(|e| e.id == h.id)).count()).sum();
        println!(
            "| {storage:?} | {:.1} | {:.0} | {:.1} | {:.1} | {p50:.1} | {:.1} | {:.2} | {top1}/{QUERIES} | {:.1}% |",
            (open - closed) / 1e6,
            (open - closed) / n as f64,
            ro.info().vector_bytes as f64 / 1e6,
            (peak - closed) / 1e6,
            common::percentile(&ms, 0.99),
            p50 / f32_p50,
            100.0 * overlap as f64 / (10 * QUERIES) as f64
        );
    }
}

/// Adds images `from..to`, 10,000 at a time, each with one caption.
fn add(index: &Index, gen: &mut common::TopicVectors, from: u64, to: u64) {
    for start in (from..to).step_by(10_000) {
        let end = (start + 10_000).min(to);
        let vectors: Vec<Vec<f32>> = (start..end).map(|_| gen.next()).collect();
        let images: Vec<NewImage> =
            vectors.iter().zip(start..).map(|(v, id)| NewImage { id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
        for id in start..end {
            let caption = format!("a photo of item {id} on a sunny day");
            index.add_captions(id, &[NewCaption { text: &caption, vector: None }]).unwrap();
        }
    }
}

/// Each query's top 10 by the dense scan, and its milliseconds (after one unmeasured scan).
fn dense_scans(index: &Index, queries: &[Vec<f32>]) -> (Vec<Vec<Hit>>, Vec<f64>) {
    let opts = SearchOptions { k: 10, mode: SearchMode::Dense, ..Default::default() };
    index.search("", &opts, Some(&queries[0])).unwrap();
    queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let hits = index.search("", &opts, Some(q)).unwrap();
            (hits, t.elapsed().as_secs_f64() * 1e3)
        })
        .unzip()
}
