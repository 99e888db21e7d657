//! One generator training step on the CPU beside the reference PyTorch implementation:
//! a t5-small-sized model (random weights), batch 32, captions of 24 tokens, M+1 = 5
//! output tokens, L_gen, AdamW with gradient clipping.
//!
//!     cargo bench --bench train_step [-- [--thread] [--loaded] [PYTHON]]
//!
//! With `--thread` libavg trains on a thread of its own, as a host that trains off its
//! main thread does (glibc then allocates from a thread arena). With `--loaded` two busy
//! threads compete for the cores while it trains (another program's work, as on a
//! desktop); `CANDLE_NUM_THREADS=1` in the environment keeps Candle's element-wise ops
//! on the training thread, so that nothing spins waiting for a descheduled worker.
//!
//! With PYTHON (an interpreter with torch and transformers, such as a venv made for the
//! measurement) the same step also runs in Hugging Face transformers'
//! T5ForConditionalGeneration (benches/train_step_reference.py), on the same threads.
//! The T5 tokenizer comes from `AVG_T5_TOKENIZER` or ../shared/data/t5-tokenizer.

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{GeneratorTrainConfig, Index, IndexConfig, NewCaption, NewImage, TokenizerTrainConfig};
use std::path::PathBuf;

const BATCH: usize = 32;
const STEPS: usize = 8;
const TEXT_TOKENS: usize = 24;

fn main() {
    let python = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let thread = std::env::args().any(|a| a == "--thread");
    let loaded = std::env::args().any(|a| a == "--loaded");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t5-small-random");
    common::write_t5_small(&model, &common::t5_tokenizer());

    let config = IndexConfig { dim: common::BENCH_DIM, codebook_size: 1024, voken_len: 4, ..Default::default() };
    let index = Index::open(dir.path().join("index"), Some(&config)).unwrap();
    let mut gen = common::TopicVectors::new();
    let n = (BATCH * STEPS) as u64;
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| gen.next()).collect();
    let images: Vec<NewImage> = vectors.iter().zip(0..).map(|(v, id)| NewImage { id, key: None, vector: v }).collect();
    index.add_images(&images).unwrap();
    for id in 0..n {
        // Longer than 24 tokens: truncation makes every caption exactly 24.
        let text = format!("photo {id} of a brown dog running along the wet sand of a wide beach at dusk while two children fly a red kite behind it");
        index.add_captions(id, &[NewCaption { text: &text, vector: Some(&gen.next()) }]).unwrap();
    }
    index.train_tokenizer(&TokenizerTrainConfig { epochs: 1, ..Default::default() }, |_| true).unwrap();

    let cfg = GeneratorTrainConfig {
        model_dir: model,
        epochs: 1,
        batch_size: BATCH,
        dis: false,
        max_text_tokens: TEXT_TOKENS,
        ..Default::default()
    };
    let train = || {
        if thread {
            std::thread::scope(|s| s.spawn(|| common::train_step_seconds(&index, &cfg)).join().unwrap())
        } else {
            common::train_step_seconds(&index, &cfg)
        }
    };
    let steps = if loaded { common::with_busy_threads(2, train) } else { train() };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let on = if thread { "a spawned thread" } else { "the main thread" };
    let load = if loaded { ", two busy threads competing" } else { "" };
    let candle = std::env::var("CANDLE_NUM_THREADS").map_or(String::new(), |n| format!(", CANDLE_NUM_THREADS={n}"));
    println!("t5-small size, batch {BATCH}, {TEXT_TOKENS} caption tokens, 5 voken tokens, {threads} threads, trained on {on}{load}{candle}");
    println!("libavg (Candle): {:.0} ms per step (median of {})", common::percentile(&steps, 0.5) * 1e3, steps.len());

    if let Some(python) = python {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/train_step_reference.py");
        let out = std::process::Command::new(python)
            .arg(script)
            .args([
                "--batch",
                &BATCH.to_string(),
                "--text-tokens",
                &TEXT_TOKENS.to_string(),
                "--vokens",
                "2048",
                "--threads",
                &threads.to_string(),
            ])
            .output()
            .expect("run the reference");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}
