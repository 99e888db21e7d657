//! The CUDA path against the CPU path on the same seed. Built only with the `cuda`
//! feature and ignored unless asked for, since it needs a CUDA device:
//!
//!     cargo test --release --features cuda --test gpu -- --ignored
//!
//! (`scripts/gpu-check.sh` runs it.) Parameters start from the same seeded values on
//! both devices and see the same batches, so losses agree up to float rounding, which
//! differs between cuBLAS and the CPU's gemm and grows over training.
#![cfg(feature = "cuda")]

mod common;

use avg::{Index, IndexConfig, SearchMode, SearchOptions, TokenizerTrainConfig};
use common::{
    assert_same_hits, caption_text, caption_words, small_config, tiny_generator_config, write_tiny_bert, Synthetic,
};
use std::path::Path;

const CUDA: &str = "cuda:0";

fn config(device: &str) -> IndexConfig {
    IndexConfig { device: device.into(), ..small_config(16) }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn relative_gap(a: f32, b: f32) -> f32 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-6)
}

fn tokenizer_config() -> TokenizerTrainConfig {
    TokenizerTrainConfig { epochs: 10, batch_size: 64, hidden: 64, ..Default::default() }
}

/// Trains the tokenizer on `device`; returns the loss of every step and every image's vokens.
fn train_tokenizer_on(device: &str, data: &Synthetic, dir: &Path) -> (Vec<f32>, Vec<Vec<u32>>) {
    let index = Index::open(dir, Some(&config(device))).unwrap();
    data.fill_with_texts(&index);
    let mut losses = Vec::new();
    index
        .train_tokenizer(&tokenizer_config(), |p| {
            losses.push(p.loss);
            true
        })
        .unwrap();
    let vokens = data.images.iter().map(|(id, _)| index.vokens(*id).unwrap()).collect();
    (losses, vokens)
}

#[test]
#[ignore = "needs a CUDA device"]
fn the_tokenizer_trains_on_cuda_as_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let data = Synthetic::new(16, 120, 12, 0.5, 21);
    let (cpu_loss, cpu_vokens) = train_tokenizer_on("cpu", &data, &dir.path().join("cpu"));
    let (gpu_loss, gpu_vokens) = train_tokenizer_on(CUDA, &data, &dir.path().join("cuda"));
    assert_eq!(cpu_loss.len(), gpu_loss.len());
    let gaps: Vec<f32> = cpu_loss.iter().zip(&gpu_loss).map(|(a, b)| relative_gap(*a, *b)).collect();
    let same = cpu_vokens.iter().zip(&gpu_vokens).filter(|(a, b)| a == b).count();
    eprintln!(
        "tokenizer loss cpu {:.5} -> {:.5}, cuda {:.5} -> {:.5}; first-step gap {:.2e}, largest gap {:.2e}; same vokens {same}/{}",
        cpu_loss[0],
        cpu_loss[cpu_loss.len() - 1],
        gpu_loss[0],
        gpu_loss[gpu_loss.len() - 1],
        gaps[0],
        gaps.iter().cloned().fold(0.0, f32::max),
        data.images.len()
    );
    assert!(gaps[0] < 1e-4, "first-step losses differ by {}", gaps[0]);
    assert!(gaps.iter().all(|g| *g < 5e-2), "losses drift apart: {gaps:?}");
    assert!(same * 100 >= data.images.len() * 95, "only {same} of {} images got the same vokens", data.images.len());
}

fn top1(index: &Index, queries: &[String]) -> Vec<Option<u64>> {
    let q: Vec<&str> = queries.iter().map(String::as_str).collect();
    let hits = index
        .search_batch(&q, &SearchOptions { k: 5, beam_size: 10, mode: SearchMode::Beam, ..Default::default() }, None)
        .unwrap();
    hits.iter().map(|h| h.first().map(|x| x.id)).collect()
}

#[test]
#[ignore = "needs a CUDA device"]
fn the_generator_trains_and_searches_on_cuda_as_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (n, topics) = (60, 6);
    let data = Synthetic::new(16, n, topics, 0.5, 21);
    let model = dir.path().join("bert");
    write_tiny_bert(&model, &caption_words(n, topics), 5);
    // One tokenizer, trained on the CPU, so that both generators learn the same vokens.
    let cpu_dir = dir.path().join("cpu");
    {
        let index = Index::open(&cpu_dir, Some(&config("cpu"))).unwrap();
        data.fill_with_texts(&index);
        index.train_tokenizer(&tokenizer_config(), |_| true).unwrap();
    }
    let gpu_dir = dir.path().join("cuda");
    copy_dir(&cpu_dir, &gpu_dir);
    let cfg = tiny_generator_config(&model);
    let queries: Vec<String> = data.images.iter().map(|(id, _)| caption_text(data.topic(*id), *id, 0)).collect();
    let run = |path: &Path, device: &str| {
        let index = Index::open(path, Some(&config(device))).unwrap();
        let mut losses = Vec::new();
        let report = index
            .train_generator(&cfg, |p| {
                losses.push((p.loss_gen, p.loss_dis));
                true
            })
            .unwrap();
        let found = top1(&index, &queries);
        (losses, report, found)
    };
    let (cpu_loss, cpu_report, cpu_top1) = run(&cpu_dir, "cpu");

    // Inference alone: the CPU-trained model, opened on the GPU, answers as on the CPU.
    let moved = dir.path().join("moved");
    copy_dir(&cpu_dir, &moved);
    let cpu = Index::open(&cpu_dir, None).unwrap();
    let gpu = Index::open(&moved, Some(&config(CUDA))).unwrap();
    let opts = SearchOptions { k: 10, beam_size: 20, mode: SearchMode::Beam, ..Default::default() };
    assert_eq!(top1(&cpu, &queries), top1(&gpu, &queries), "the same model's top-1 differs between the devices");
    for q in queries.iter().take(10) {
        assert_same_hits(&cpu.search(q, &opts, None).unwrap(), &gpu.search(q, &opts, None).unwrap());
    }

    // Training: the same run on the GPU.
    let (gpu_loss, gpu_report, gpu_top1) = run(&gpu_dir, CUDA);
    let right = |found: &[Option<u64>]| found.iter().zip(&data.images).filter(|(f, (id, _))| **f == Some(*id)).count();
    let agree = cpu_top1.iter().zip(&gpu_top1).filter(|(a, b)| a == b).count();
    eprintln!(
        "generator first step L_gen cpu {:.5} cuda {:.5}, L_dis cpu {:.5} cuda {:.5}; last epoch L_gen cpu {:.4} cuda {:.4}, L_dis cpu {:.4} cuda {:.4}; top-1 right cpu {} cuda {}, same top-1 {agree}/{}",
        cpu_loss[0].0, gpu_loss[0].0, cpu_loss[0].1, gpu_loss[0].1,
        cpu_report.loss_gen, gpu_report.loss_gen, cpu_report.loss_dis, gpu_report.loss_dis,
        right(&cpu_top1), right(&gpu_top1), queries.len()
    );
    assert!(relative_gap(cpu_loss[0].0, gpu_loss[0].0) < 1e-3, "first-step L_gen differs");
    assert!(relative_gap(cpu_loss[0].1, gpu_loss[0].1) < 1e-3, "first-step L_dis differs");
    assert!((cpu_report.loss_gen - gpu_report.loss_gen).abs() < 0.1 + 0.2 * cpu_report.loss_gen, "final L_gen differs");
    // Eighty epochs of rounding differences leave two slightly different models: they
    // find as many right images and mostly the same ones (the same model gives the same
    // hits on both devices, checked above).
    assert!(right(&cpu_top1).abs_diff(right(&gpu_top1)) <= 3, "top-1 accuracy differs");
    assert!(agree * 10 >= queries.len() * 8, "top-1 agrees on {agree} of {} queries", queries.len());
}
