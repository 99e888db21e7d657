//! Tokenizer training at Flickr30K's size: 30,000 vectors of dimension 512 (two caption
//! vectors each), N = 1024, M = 4. Prints time per epoch and codebook usage.
//!
//!     cargo bench --bench tokenizer [-- EPOCHS]

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{Index, IndexConfig, TokenizerTrainConfig};
use std::time::Instant;

fn main() {
    let epochs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let data = common::Synthetic::new(512, 30_000, 3_000, 1.0, 11);
    let dir = tempfile::tempdir().unwrap();
    let config = IndexConfig { dim: 512, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let index = Index::open(dir.path(), Some(&config)).unwrap();
    data.fill(&index);
    let cfg = TokenizerTrainConfig { epochs, ..Default::default() };
    println!(
        "tokenizer bench: 30000 x 512, N=1024, M=4, batch {}, {} epochs, {} threads",
        cfg.batch_size,
        epochs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let start = Instant::now();
    let mut epoch_start: Option<Instant> = None;
    let mut last_epoch = usize::MAX;
    let report = index
        .train_tokenizer(&cfg, |p| {
            if p.epoch != last_epoch {
                if let Some(t) = epoch_start {
                    println!("epoch {} : {:.2} s", last_epoch, t.elapsed().as_secs_f64());
                } else {
                    println!("k-means init + first step: {:.2} s", start.elapsed().as_secs_f64());
                }
                epoch_start = Some(Instant::now());
                last_epoch = p.epoch;
            }
            true
        })
        .unwrap();
    if let Some(t) = epoch_start {
        println!("epoch {} : {:.2} s (includes encoding all images and saving)", last_epoch, t.elapsed().as_secs_f64());
    }
    let s = &report.stats;
    println!(
        "total {:.1} s, {} steps; last-epoch losses recon {:.4} commit {:.4} align {:.4}",
        start.elapsed().as_secs_f64(),
        report.steps,
        report.loss_recon,
        report.loss_commit,
        report.loss_align
    );
    println!(
        "codebook usage per level: {:?}",
        s.usage_per_level.iter().map(|u| format!("{:.1}%", u * 100.0)).collect::<Vec<_>>()
    );
    println!("images colliding on M codes: {} (largest group {})", s.collided_images, s.largest_collision_group);
}
