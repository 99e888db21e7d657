//! avg-eval: retrieval quality and speed of libavg on a real-text proxy, beside an exact
//! dense baseline, through the public API only.
//!
//! The proxy (no image weights can be installed here): each image's FIRST caption
//! stands in for the image; its sentence vector (all-MiniLM-L6-v2) is the image vector
//! v_i and is never a query. The other captions are the queries (test images) or the
//! training captions with their vectors v_t (training images).
//!
//! The encoder, all-MiniLM-L6-v2, was trained on COCO and Flickr30K caption pairs (and
//! Flickr8k's are inside Flickr30K): on the Flickr sets the dense baseline has seen its
//! test pairs. nocaps (`--test-set nocaps`, `nocaps-val`) is in none of its training
//! sets: there the dense scan is zero-shot, the fair arena. `--train-on flickr8k` with a
//! nocaps test set is the transfer setting (the generator never sees a nocaps caption).
//!
//! Split of Flickr8k: image names sorted, shuffled by a SplitMix64 Fisher-Yates with
//! `--seed` (2024); the first 6,000 train, the next 1,000 validate, the last 1,000 test.
//! nocaps likewise by image id: 1,500 train, 1,000 validate, 1,000 test; its queries are
//! captions 4 to 10 of each image on every track (captions 2 and 3 are the `words`
//! track's attached texts), so that tracks compare.
//! `--test-set flickr8k-val` evaluates on the validation images (choose settings there,
//! such as the fused score's dense weight, never on test); `--test-set flickr30k` tests
//! on the 1,000 Flickr30K test images and trains on Flickr8k images that are not among
//! them (Flickr30K holds Flickr8k's photos with the same captions: 285 of its test
//! images are Flickr8k's, 216 of them among the first 6,000 of the shuffle).
//!
//! Every row is also given against the dense baseline of the same queries: the
//! difference of R@1, R@5 and R@10 with a 95% interval from a paired bootstrap over the
//! test images (`minus_dense` in the JSON).
//!
//! Tracks (`--track`), what the generator learns of a test image: `indexed`, its first
//! caption (the text its vector was made from, never a query), attached as indexing
//! text; `caption-free`, its vector alone (a photo with no text); `words`, two of its
//! captions attached as its own texts (tags, a description), with the `dense + words`
//! baseline beside it (an image scores the best of its vector's and its texts' cosines);
//! `unseen`, nothing (the
//! test images are added after training, their codes from the trained tokenizer).
//!
//! `--incremental N` withholds the first N test images from training, adds them after
//! it, and runs an indexing pass (`--pass-epochs`): recall of the old and the new test
//! images before and after it, searched among every indexed image (training images
//! included), with the first `--dense-weights` value.
//!
//! `--reuse` searches the index a previous run of the same label saved (its training
//! is skipped; the split must be the same): search settings can be compared in
//! minutes rather than retrained. `--fused-only` leaves out the rows of plain beam
//! search and rerank.
//!
//! `avg-eval --help` lists every option with its default.

use avg::{
    GeneratorTrainConfig, Index, IndexConfig, NewCaption, NewImage, Progress, SearchMode, SearchOptions, SearchWeights,
    TextEncoder, TokenizerTrainConfig, VectorStorage,
};
use clap::Parser;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

mod args;
mod data;
mod report;
mod score;

use args::{own_texts, split, train_on, Args, Images, WORDS};
use data::embed_all;
use report::{DENSE, DENSE_WORDS};
use score::{dense_baseline, dense_with_words, fused, level_accuracy, run_search, Recall, Task};

fn die(msg: &str) -> ! {
    eprintln!("avg-eval: {msg}");
    std::process::exit(2)
}

/// Test images get ids from here on, training images count from 0.
const TEST_BASE: u64 = 1 << 32;

/// What every phase of a run reads: the options, the index, every caption's vector, and
/// the split.
struct Eval<'a> {
    a: &'a Args,
    index: &'a Index,
    vec: &'a HashMap<String, Vec<f32>>,
    train: &'a Images,
    /// (id, captions) of each test image.
    test_ids: Vec<(u64, &'a [String])>,
    /// Which captions of a test image are its queries.
    queries: Range<usize>,
    /// The first `held` test images enter after training (the unseen track, or an
    /// incremental run's new images).
    held: usize,
}

fn main() {
    let a = Args::parse();
    std::fs::create_dir_all(&a.out).unwrap_or_else(|e| die(&format!("{}: {e}", a.out.display())));
    let started = Instant::now();
    let (train, test) = split(&a);
    eprintln!(
        "{} training images, {} test images ({}, track {}, seed {})",
        train.len(),
        test.len(),
        a.test_set,
        a.track,
        a.seed
    );
    let encoder = TextEncoder::load(&a.model, "cpu").unwrap_or_else(|e| die(&e.to_string()));
    let all: Vec<&String> = train.iter().chain(&test).flat_map(|(_, c)| c.iter()).collect();
    let vec = embed_all(&encoder, &all, &a.out.join("embeddings-cache.safetensors"));

    let dir = a.out.join(format!("index-{}", a.label));
    if !a.reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let search_weights = if a.search_weights == "f32" { SearchWeights::F32 } else { SearchWeights::Int8 };
    let vector_storage = match a.vector_storage.as_str() {
        "f16" => VectorStorage::F16,
        "int8" => VectorStorage::Int8,
        _ => VectorStorage::F32,
    };
    let config = IndexConfig {
        dim: encoder.dim(),
        codebook_size: a.n,
        voken_len: a.m,
        search_weights,
        vector_storage,
        ..Default::default()
    };
    let index = Index::open(&dir, Some(&config)).unwrap_or_else(|e| die(&e.to_string()));
    let test_ids = test.iter().enumerate().map(|(j, (_, c))| (TEST_BASE + j as u64, c.as_slice())).collect();
    // Queries: the captions after the image's own text and its attached words.
    let first = if a.test_set.starts_with("nocaps") || a.track == "words" { 1 + WORDS } else { 1 };
    let queries = first..first.saturating_add(a.queries_per_image);
    let held = match (a.track.as_str(), a.incremental) {
        ("unseen", _) => test.len(),
        (_, Some(n)) => n.min(test.len()),
        _ => 0,
    };
    let e = Eval { a: &a, index: &index, vec: &vec, train: &train, test_ids, queries, held };

    let gen = generator_config(&a);
    let mut progress = progress_printer();
    // (tokenizer seconds, generator seconds, what each training reported)
    let (tok_secs, gen_secs, trained) = match a.reuse {
        true => e.reused(&dir),
        false => e.train(&gen, &mut progress),
    };
    e.add_test(&e.test_ids[..e.held]);
    let mut extra = serde_json::Map::new();
    let rows = match a.incremental {
        Some(_) if a.track == "unseen" => die("--incremental needs the indexed or caption-free track"),
        Some(_) if a.reuse => die("--incremental trains; it cannot --reuse"),
        Some(_) => e.incremental_rows(&gen, &mut progress, &mut extra),
        None => e.route_rows(&mut extra),
    };

    // A reused index was trained by an earlier run, whose settings its JSON holds.
    let trained_as = match a.reuse {
        true => format!("models reused from {}", dir.display()),
        false => format!(
            "tokenizer {} epochs ({tok_secs:.0} s), generator {} epochs ({gen_secs:.0} s)",
            a.tok_epochs, a.gen_epochs
        ),
    };
    let setting = format!(
        "{}{} ({} test images, searched among {}, {} queries), track {}, seed {}, training seed {}, {} training images from {}, N={}, M={}, align={}, codebook init={}, L_dis={}, index texts={}, index vectors={}, balanced images={}, {}, search weights {}, vector storage {}, total {:.0} s",
        a.test_set, a.test_file.as_ref().map_or(String::new(), |f| format!(" from {}", f.display())), test.len(), if a.pool == "all" { "all indexed images" } else { "themselves" }, rows.first().map_or(0, |r| r.1.per_query.len()), a.track, a.seed, a.train_seed, train.len(), train_on(&a), a.n, a.m, a.align, a.init, a.dis, a.index_texts, a.index_vectors, a.balance_images, trained_as, a.search_weights, a.vector_storage, started.elapsed().as_secs_f64()
    );
    let head = serde_json::json!({
        "label": a.label, "setting": setting, "track": a.track, "seed": a.seed, "test_set": a.test_set, "pool": a.pool, "search_weights": a.search_weights, "vector_storage": a.vector_storage,
        "training": trained,
    });
    report::write(&a.out, &a.label, &setting, head, &rows, extra);
}

fn generator_config(a: &Args) -> GeneratorTrainConfig {
    GeneratorTrainConfig {
        model_dir: a.generator_model.clone().unwrap_or_else(|| a.model.clone()),
        epochs: a.gen_epochs,
        dis: a.dis,
        dis_fraction: a.dis_fraction,
        init_from_codebook: a.init,
        index_texts: a.index_texts,
        index_vectors: a.index_vectors,
        balance_images: a.balance_images,
        seed: a.train_seed,
        ..Default::default()
    }
}

/// Prints the generator's progress every 30 s and at the end of each epoch.
fn progress_printer() -> impl FnMut(&Progress) -> bool {
    let mut last = Instant::now();
    move |p: &Progress| {
        if last.elapsed().as_secs() >= 30 || p.step + 1 == p.steps_per_epoch {
            eprintln!(
                "generator epoch {}/{} step {}/{} L_gen {:.3} L_dis {:.3} {:.0} samples/s",
                p.epoch + 1,
                p.epochs,
                p.step + 1,
                p.steps_per_epoch,
                p.loss_gen,
                p.loss_dis,
                p.samples_per_second
            );
            last = Instant::now();
        }
        true
    }
}

/// The searches of a run without `--incremental`: plain beam and rerank (unless
/// `--fused-only`), fused for every candidate count, prior and dense weight, with a
/// generator; the quantiser's route and libavg's dense scan always (only it with
/// `--dense-only`).
fn route_runs(a: &Args) -> Vec<(String, SearchOptions<'static>)> {
    let widen = |c: usize| if c > 0 { format!(", at least {c} candidates") } else { String::new() };
    let dense = SearchOptions { k: 20, mode: SearchMode::Dense, ..Default::default() };
    let mut runs = vec![(format!("libavg dense scan, {} vectors", a.vector_storage), dense)];
    if a.dense_only {
        return runs;
    }
    let generator = a.gen_epochs > 0 || a.reuse;
    for &beam in a.beams.iter().filter(|_| generator) {
        let plain = |mode| SearchOptions { k: beam, beam_size: beam, mode, ..Default::default() };
        if !a.fused_only {
            runs.push((format!("libavg beam {beam}"), plain(SearchMode::Beam)));
        }
        if beam != 20 {
            continue;
        }
        if !a.fused_only {
            runs.push((format!("libavg beam {beam} + rerank"), plain(SearchMode::Rerank)));
        }
        for &c in &a.min_candidates {
            for &p in &a.quantizer_weights {
                let prior = if p > 0.0 { format!(", quantizer prior {p}") } else { String::new() };
                runs.extend(a.dense_weights.iter().map(|&w| {
                    let opts = SearchOptions { quantizer_weight: p, ..fused(beam, w, c) };
                    (format!("libavg fused beam {beam}, dense weight {w}{}{prior}", widen(c)), opts)
                }));
            }
        }
    }
    for &c in &a.min_candidates {
        runs.extend(a.dense_weights.iter().map(|&w| {
            let opts = SearchOptions { mode: SearchMode::Quantizer, ..fused(20, w, c) };
            (format!("tokenizer reference (no generator), dense weight {w}{}", widen(c)), opts)
        }));
    }
    runs
}

impl Eval<'_> {
    /// Adds test images: each with its vector, and on the indexed track its own text
    /// (its first caption, its vector's source), never one of its query captions.
    fn add_test(&self, images: &[(u64, &[String])]) {
        for &(id, caps) in images.iter().filter(|(id, _)| !self.index.contains(*id)) {
            self.index.add_images(&[NewImage { id, key: None, vector: &self.vec[&caps[0]] }]).unwrap();
            if let Some(own) = own_texts(&self.a.track, caps) {
                self.index.attach_texts(id, &own.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
            }
        }
    }

    /// A `--reuse` run: the saved index, nothing trained.
    fn reused(&self, dir: &Path) -> (f64, f64, serde_json::Value) {
        if self.index.image_count() == 0 {
            die(&format!("--reuse: nothing saved in {}; run once without it", dir.display()));
        }
        eprintln!("reusing {}: {} images, training skipped", dir.display(), self.index.image_count());
        (0.0, 0.0, serde_json::json!({"reused": dir}))
    }

    /// Indexes the training images with their captions and the test images not held,
    /// trains both stages and saves the index (for a later `--reuse`).
    fn train(
        &self,
        gen: &GeneratorTrainConfig,
        progress: &mut impl FnMut(&Progress) -> bool,
    ) -> (f64, f64, serde_json::Value) {
        let (a, index, vec) = (self.a, self.index, self.vec);
        for (i, (_, caps)) in self.train.iter().enumerate() {
            index.add_images(&[NewImage { id: i as u64, key: None, vector: &vec[&caps[0]] }]).unwrap();
            let nc: Vec<NewCaption> = caps[1..].iter().map(|c| NewCaption { text: c, vector: Some(&vec[c]) }).collect();
            index.add_captions(i as u64, &nc).unwrap();
        }
        self.add_test(&self.test_ids[self.held..]);

        let t0 = Instant::now();
        let tok =
            TokenizerTrainConfig { epochs: a.tok_epochs, align: a.align, seed: a.train_seed, ..Default::default() };
        let tr = index.train_tokenizer(&tok, |_| true).unwrap_or_else(|e| die(&e.to_string()));
        let tok_secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "tokenizer: {tok_secs:.0} s, usage {:?}, {} collided",
            tr.stats.usage_per_level, tr.stats.collided_images
        );
        let t0 = Instant::now();
        // No generator epochs: the routes that need none (a tokenizer seed's check).
        let gr = (a.gen_epochs > 0)
            .then(|| index.train_generator(gen, &mut *progress).unwrap_or_else(|e| die(&e.to_string())));
        let gen_secs = t0.elapsed().as_secs_f64();
        let trained = serde_json::json!({
            "tokenizer": {"usage_per_level": tr.stats.usage_per_level, "collided_images": tr.stats.collided_images, "seconds": tok_secs},
            "generator": gr.map(|gr| serde_json::json!({"loss_gen": gr.loss_gen, "loss_dis": gr.loss_dis, "seconds": gen_secs})),
        });
        index.save().unwrap_or_else(|e| die(&e.to_string()));
        (tok_secs, gen_secs, trained)
    }

    /// (id, vector) of the test images.
    fn test_pool(&self) -> Vec<(u64, &[f32])> {
        self.test_ids.iter().map(|&(id, c)| (id, self.vec[&c[0]].as_slice())).collect()
    }

    /// (id, vector) of every indexed image, training images first.
    fn whole_pool(&self) -> Vec<(u64, &[f32])> {
        let train = self.train.iter().enumerate().map(|(i, (_, c))| (i as u64, self.vec[&c[0]].as_slice()));
        train.chain(self.test_pool()).collect()
    }

    /// `--incremental`: the old and the new test images' recall before and after an
    /// indexing pass, searched among the whole index (training images stay: the pass
    /// replays their pairs).
    fn incremental_rows(
        &self,
        gen: &GeneratorTrainConfig,
        progress: &mut impl FnMut(&Progress) -> bool,
        extra: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Vec<(String, Recall)> {
        let (a, held) = (self.a, self.held);
        let pool = self.whole_pool();
        let tasks = [
            ("old", Task::new(&self.test_ids[held..], pool.clone(), self.queries.clone())),
            ("new", Task::new(&self.test_ids[..held], pool, self.queries.clone())),
        ];
        let opts = fused(20, a.dense_weights[0], a.min_candidates[0]);
        let name = format!("libavg fused beam 20, dense weight {}", a.dense_weights[0]);
        let search = |task| run_search(self.index, task, self.vec, &name, &opts).0;
        let mut rows: Vec<(String, Recall)> = Vec::new();
        for (set, task) in &tasks {
            rows.push((format!("dense baseline, {set} images"), dense_baseline(task, self.vec)));
            rows.push((format!("{name}, {set} images, before the pass"), search(task)));
        }
        let t0 = Instant::now();
        let pass = GeneratorTrainConfig { incremental: true, epochs: a.pass_epochs, ..gen.clone() };
        let pr = self.index.train_generator(&pass, &mut *progress).unwrap_or_else(|e| die(&e.to_string()));
        let pass_secs = t0.elapsed().as_secs_f64();
        for (set, task) in &tasks {
            rows.push((format!("{name}, {set} images, after the pass"), search(task)));
        }
        let per_1000 = pass_secs / pr.new_images.max(1) as f64 * 1000.0;
        eprintln!(
            "indexing pass: {} new images, {} steps, {pass_secs:.0} s ({per_1000:.0} s per 1,000 new images)",
            pr.new_images, pr.steps
        );
        extra.insert("pass".into(), serde_json::json!({"new_images": pr.new_images, "epochs": a.pass_epochs, "steps": pr.steps, "seconds": pass_secs, "seconds_per_1000_new_images": per_1000}));
        rows
    }

    /// Every route's recall on the test images, beside the dense baseline of the same
    /// pool (`--pool all`: the whole index; else the test images alone).
    fn route_rows(&self, extra: &mut serde_json::Map<String, serde_json::Value>) -> Vec<(String, Recall)> {
        let (a, vec) = (self.a, self.vec);
        let pool = if a.pool == "all" {
            self.whole_pool()
        } else {
            for i in 0..self.train.len() {
                self.index.remove_image(i as u64).unwrap();
            }
            self.test_pool()
        };
        let task = Task::new(&self.test_ids, pool, self.queries.clone());
        let mut rows: Vec<(String, Recall)> =
            vec![(format!("{DENSE} (exact cosine, MiniLM)"), dense_baseline(&task, vec))];
        if a.track == "words" {
            let words = self
                .test_ids
                .iter()
                .map(|&(id, caps)| (id, caps[1..=WORDS].iter().map(|c| vec[c].as_slice()).collect()))
                .collect();
            rows.push((
                format!("{DENSE_WORDS} (the best of the image's and its {WORDS} texts' cosines)"),
                dense_with_words(&task, vec, &words),
            ));
        }
        for (name, opts) in route_runs(a) {
            let (r, ranked) = run_search(self.index, &task, vec, &name, &opts);
            if name == "libavg beam 20" {
                extra.insert(
                    "top1_code_prefix_accuracy".into(),
                    serde_json::json!(level_accuracy(self.index, &ranked, &task.truth(), a.m)),
                );
            }
            rows.push((name, r));
        }
        rows
    }
}
