//! The whole job of a host, on the embedded default and real captions: index photos,
//! train both stages, answer queries, print each query's hits with their text, recall
//! beside exact dense search, and the time of each phase.
//!
//! Data: the captions of 159 MS-COCO photos, shipped in `examples/data` (CC BY 4.0). No
//! image encoder can be installed here, so a text proxy stands in for the photos: a
//! photo's vector is its first caption embedded by all-MiniLM-L6-v2, and that caption is
//! also attached to the photo as its text (as a photo app attaches a title or tags).
//! Photos with even ids also bring three training captions; the odd ones bring none, as
//! most of a personal library. Every photo's fifth caption is held out as its query.
//!
//! usage: main_job --model MINILM_DIR [--index DIR] (`--help` says more)

use avg::{
    GeneratorTrainConfig, Hit, Index, IndexConfig, NewCaption, NewImage, SearchMode, SearchOptions, TextEncoder,
    TokenizerTrainConfig,
};
use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

#[derive(serde::Deserialize)]
struct Photo {
    file_name: String,
    captions: Vec<String>,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("main_job: {msg}");
    std::process::exit(1)
}

/// Runs `f`, printing how long it took under `phase`.
fn timed<T>(phase: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    println!("[{phase}: {:.1} s]", t.elapsed().as_secs_f64());
    out
}

/// The main job: index, train and search 159 MS-COCO photos by their captions.
#[derive(Parser)]
#[command(name = "main_job")]
struct Args {
    /// all-MiniLM-L6-v2 directory (scripts/main-job.sh fetches it)
    #[arg(long)]
    model: PathBuf,
    /// Where the index is made (emptied first)
    #[arg(long, default_value = "target/main-job-index")]
    index: PathBuf,
}

fn main() {
    let args = Args::parse();
    let started = Instant::now();
    let photos: Vec<Photo> =
        serde_json::from_str(include_str!("data/coco-captions.json")).expect("the shipped captions parse");
    println!(
        "{} MS-COCO photos (captions CC BY 4.0, examples/data): even ids with training captions, odd ids caption-free",
        photos.len()
    );
    let encoder = TextEncoder::load(&args.model, "cpu")
        .unwrap_or_else(|e| fail(format!("the sentence encoder in {}: {e}", args.model.display())));
    let texts: Vec<&str> = photos.iter().flat_map(|p| p.captions.iter().map(String::as_str)).collect();
    let vectors = timed("embed 795 captions", || encoder.embed(&texts)).unwrap_or_else(|e| fail(e));
    let vec_of = |photo: usize, k: usize| vectors[photo * 5 + k].as_slice();

    let _ = std::fs::remove_dir_all(&args.index);
    let config = IndexConfig { dim: encoder.dim(), codebook_size: 32, voken_len: 3, ..Default::default() };
    let index = Index::open(&args.index, Some(&config)).unwrap_or_else(|e| fail(e));
    timed("index", || add_photos(&index, &photos, &vec_of)).unwrap_or_else(|e| fail(e));
    println!("indexed {} photos, {} training captions", index.image_count(), index.caption_count());
    train(&index, &args.model).unwrap_or_else(|e| fail(e));

    // Held-out captions as queries, with their vectors: the fused search ranks the
    // images under the generated codes by code probability and dense similarity. It
    // widens to at least `min_candidates` (1,000) images, so with 159 photos it weighs
    // every photo: here the codes reorder the dense scan, they do not prune it.
    let queries: Vec<&str> = photos.iter().map(|p| p.captions[4].as_str()).collect();
    let query_vectors: Vec<&[f32]> = (0..photos.len()).map(|i| vec_of(i, 4)).collect();
    let opts = SearchOptions { k: 10, beam_size: 20, mode: SearchMode::Fused, ..Default::default() };
    let t = Instant::now();
    let hits =
        timed("search", || index.search_batch(&queries, &opts, Some(&query_vectors))).unwrap_or_else(|e| fail(e));
    let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
    for q in [0, 1, 2, 3] {
        println!("query {:?} (photo {q})", queries[q]);
        for hit in hits[q].iter().take(3) {
            let mark = if hit.id == q as u64 { "*" } else { " " };
            println!("  {mark} {:>3}  {:7.3}  {}", hit.id, hit.score, photos[hit.id as usize].captions[0]);
        }
    }
    print_recall(photos.len(), &hits, &vec_of);
    println!(
        "({qps:.1} queries/s, fused beam 20; the whole job took {:.0} s; the index is in {})",
        started.elapsed().as_secs_f64(),
        args.index.display()
    );
}

/// Each photo with its first caption as vector and attached text; the even ones also
/// with captions 1-3 to train on.
fn add_photos<'a>(index: &Index, photos: &[Photo], vec_of: &impl Fn(usize, usize) -> &'a [f32]) -> avg::Result<()> {
    for (i, p) in photos.iter().enumerate() {
        let id = i as u64;
        index.add_images(&[NewImage { id, key: Some(&p.file_name), vector: vec_of(i, 0) }])?;
        index.attach_texts(id, &[&p.captions[0]])?;
        if i % 2 == 0 {
            let train: Vec<NewCaption> =
                (1..4).map(|k| NewCaption { text: &p.captions[k], vector: Some(vec_of(i, k)) }).collect();
            index.add_captions(id, &train)?;
        }
    }
    Ok(())
}

/// Both stages, the generator on the sentence encoder in `model`.
fn train(index: &Index, model: &std::path::Path) -> avg::Result<()> {
    let tok_cfg = TokenizerTrainConfig { epochs: 30, batch_size: 64, ..Default::default() };
    let tok = timed("train tokenizer", || index.train_tokenizer(&tok_cfg, |_| true))?;
    println!(
        "tokenizer: level usage {:?}, {} photos share codes",
        tok.stats.usage_per_level, tok.stats.collided_images
    );
    let cfg = GeneratorTrainConfig {
        model_dir: model.to_path_buf(),
        epochs: 30,
        batch_size: 32,
        learning_rate: 2e-3,
        decoder_d_model: 128,
        ..Default::default()
    };
    let gen = timed("train generator", || {
        index.train_generator(&cfg, |p| {
            if p.step + 1 == p.steps_per_epoch && (p.epoch + 1) % 10 == 0 {
                let (e, n) = (p.epoch + 1, p.epochs);
                println!("  generator epoch {e}/{n}: L_gen {:.3} L_dis {:.3}", p.loss_gen, p.loss_dis);
            }
            true
        })
    })?;
    println!("generator: L_gen {:.3}", gen.loss_gen);
    Ok(())
}

/// Recall of libavg's hits beside exact dense search over the same texts: a photo
/// scores the best cosine of its own vector and its training captions' vectors (photos
/// with even ids) with the held-out caption's vector.
fn print_recall<'a>(n: usize, hits: &[Vec<Hit>], vec_of: &impl Fn(usize, usize) -> &'a [f32]) {
    let rank_of = |q: usize| hits[q].iter().position(|h| h.id == q as u64).unwrap_or(usize::MAX);
    let known = |j: usize| if j.is_multiple_of(2) { 0..4 } else { 0..1 };
    let dense_score = |j: usize, q: usize| known(j).map(|k| dot(vec_of(j, k), vec_of(q, 4))).fold(f32::MIN, f32::max);
    let dense_rank = |q: usize| (0..n).filter(|&j| dense_score(j, q) > dense_score(q, q)).count();
    let recall = |rank: &dyn Fn(usize) -> usize, parity: Option<usize>| {
        let qs: Vec<usize> = (0..n).filter(|q| parity.is_none_or(|p| q % 2 == p)).collect();
        let at = |k: usize| 100.0 * qs.iter().filter(|&&q| rank(q) < k).count() as f64 / qs.len() as f64;
        format!("R@1 {:5.1}  R@5 {:5.1}  R@10 {:5.1}", at(1), at(5), at(10))
    };
    for (group, parity) in [("all photos", None), ("with captions", Some(0)), ("caption-free", Some(1))] {
        println!("{group:>14}: libavg {}   dense {}", recall(&rank_of, parity), recall(&dense_rank, parity));
    }
}
