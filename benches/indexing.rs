//! Indexing a photo library: PHOTOS photos, each with its vector and one attached text
//! and no training captions (a personal library), learned by the tokenizer and the
//! generator with the default settings (MiniLM backbone, generator epochs as given).
//! Prints the seconds of each stage, per generator epoch, and the total.
//!
//!     cargo bench --bench indexing -- [PHOTOS (10000)] [GENERATOR_EPOCHS (3)]
//!
//! Needs the sentence encoder (`AVG_MINILM_DIR`, default `models/all-MiniLM-L6-v2`, as
//! `scripts/main-job.sh` installs it) and the Flickr8k captions in `../shared/data`
//! (`AVG_DATA_DIR`): the k-th caption of every image stands in for a photo, its sentence
//! vector as the photo's vector and its text as the photo's text; after the first
//! captions of all 8,092 images come the second ones, and so on. Embedding the texts
//! is not counted: with a CLIP encoder it happens as photos are added
//! (`cargo bench --bench clip` measures that).

use avg::{GeneratorTrainConfig, Index, IndexConfig, NewImage, TextEncoder, TokenizerTrainConfig};
use std::path::PathBuf;
use std::time::Instant;

/// Flickr8k captions, the k-th of every image before the (k+1)-th of any.
fn captions(data: &std::path::Path, n: usize) -> Vec<String> {
    let path = data.join("flickr8k/Flickr8k.token.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows: Vec<(usize, &str, &str)> = text
        .lines()
        .filter_map(|l| {
            let (key, caption) = l.split_once('\t')?;
            let (image, k) = key.split_once('#')?;
            Some((k.parse().ok()?, image, caption.trim()))
        })
        .collect();
    rows.sort();
    rows.into_iter().take(n).map(|(_, _, c)| c.to_owned()).collect()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench").map(|a| a.parse::<usize>().ok());
    let photos = args.next().flatten().unwrap_or(10_000);
    let gen_epochs = args.next().flatten().unwrap_or(3);
    let env_path = |var: &str, default: &str| PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.into()));
    let model = env_path("AVG_MINILM_DIR", "models/all-MiniLM-L6-v2");
    let texts = captions(&env_path("AVG_DATA_DIR", "../shared/data"), photos);
    let encoder = TextEncoder::load(&model, "cpu").unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let t0 = Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = encoder.embed(&refs).unwrap();
    println!("{} photos; embedding their texts (not counted): {:.1} s", texts.len(), t0.elapsed().as_secs_f64());

    let dir = tempfile::tempdir().unwrap();
    let config = IndexConfig { dim: encoder.dim(), codebook_size: 1024, voken_len: 4, ..Default::default() };
    let index = Index::open(dir.path(), Some(&config)).unwrap();
    let t0 = Instant::now();
    for (id, (text, vector)) in (0..).zip(texts.iter().zip(&vectors)) {
        index.add_images(&[NewImage { id, key: None, vector }]).unwrap();
        index.attach_texts(id, &[text]).unwrap();
    }
    let add = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let tok = index.train_tokenizer(&TokenizerTrainConfig::default(), |_| true).unwrap();
    let tok_secs = t0.elapsed().as_secs_f64();
    let cfg = GeneratorTrainConfig { model_dir: model, epochs: gen_epochs, ..Default::default() };
    let t0 = Instant::now();
    let mut epoch_ends = Vec::new();
    let gen = index
        .train_generator(&cfg, |p| {
            if p.step + 1 == p.steps_per_epoch {
                epoch_ends.push(t0.elapsed().as_secs_f64());
            }
            true
        })
        .unwrap();
    let gen_secs = t0.elapsed().as_secs_f64();
    let per_epoch: Vec<String> =
        epoch_ends.iter().scan(0.0, |last, &t| Some(format!("{:.1}", t - std::mem::replace(last, t)))).collect();
    println!("add + attach: {add:.1} s");
    println!(
        "tokenizer ({} epochs, N 1024, M 4): {tok_secs:.1} s; {} photos share their M codes",
        TokenizerTrainConfig::default().epochs,
        tok.stats.collided_images
    );
    println!(
        "generator ({gen_epochs} epochs, {} steps, L_gen {:.3}): {gen_secs:.1} s; per epoch {} s",
        gen.steps,
        gen.loss_gen,
        per_epoch.join(", ")
    );
    let per = gen_secs / gen_epochs as f64;
    let default_epochs = GeneratorTrainConfig::default().epochs;
    println!(
        "indexing {} photos: {:.1} s ({:.1} min); with the default {default_epochs} generator epochs about {:.1} min",
        texts.len(),
        tok_secs + gen_secs,
        (tok_secs + gen_secs) / 60.0,
        (tok_secs + per * default_epochs as f64) / 60.0
    );
}
