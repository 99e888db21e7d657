//! avg-eval: retrieval quality and speed of libavg on a real-text proxy, beside an exact
//! dense baseline, through the public API only.
//!
//! The proxy (no image weights can be installed here): each image's FIRST caption
//! stands in for the image; its sentence vector (all-MiniLM-L6-v2) is the image vector
//! v_i and is never a query. The other captions are the queries (test images) or the
//! training captions with their vectors v_t (training images).
//!
//! Split of Flickr8k: image names sorted, shuffled by a SplitMix64 Fisher-Yates with
//! `--seed` (2024); the first 6,000 train, the next 1,000 validate, the last 1,000 test.
//! `--test-set flickr8k-val` evaluates on the validation images (choose settings there,
//! such as the fused score's dense weight, never on test); `--test-set flickr30k` keeps
//! the Flickr8k training images and tests on the 1,000 Flickr30K test images.
//!
//! Tracks (`--track`), what the generator learns of a test image: `indexed`, its first
//! caption (the text its vector was made from, never a query), attached as indexing
//! text; `caption-free`, its vector alone (a photo with no text); `unseen`, nothing (the
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
    GeneratorTrainConfig, Index, IndexConfig, NewCaption, NewImage, SearchOptions, SearchWeights, TextEncoder,
    TokenizerTrainConfig,
};
use clap::{ArgAction, Parser};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Retrieval quality of libavg on the Flickr text proxy, beside exact dense search.
#[derive(Parser)]
#[command(name = "avg-eval")]
struct Args {
    /// all-MiniLM-L6-v2 directory: the sentence encoder, and the generator's backbone
    #[arg(long)]
    model: PathBuf,
    /// A T5 checkpoint as the generator instead of MiniLM + a voken decoder
    #[arg(long)]
    generator_model: Option<PathBuf>,
    /// Directory holding flickr8k/ and flickr30k/
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Where the JSON, Markdown, log and saved index go
    #[arg(long, default_value = "eval-out")]
    out: PathBuf,
    /// Images to test on (flickr8k-val: choose settings there, never on test)
    #[arg(long, default_value = "flickr8k", value_parser = ["flickr8k", "flickr8k-val", "flickr30k"])]
    test_set: String,
    /// What the generator learns of a test image
    #[arg(long, default_value = "unseen", value_parser = ["indexed", "caption-free", "unseen"])]
    track: String,
    /// Seed of the Flickr8k split
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// N, the codebook size
    #[arg(long, default_value_t = 1024)]
    n: usize,
    /// M, the codes per image
    #[arg(long, default_value_t = 4)]
    m: usize,
    /// Beam sizes of the plain beam-search rows
    #[arg(long, value_delimiter = ',', default_value = "1,5,10,20,30,40")]
    beams: Vec<usize>,
    #[arg(long, default_value_t = 20)]
    tok_epochs: usize,
    #[arg(long, default_value_t = 10)]
    gen_epochs: usize,
    /// Tokenizer without L_align (ablation)
    #[arg(long = "no-align", action = ArgAction::SetFalse)]
    align: bool,
    /// Code embeddings at random, not from the codebook (ablation)
    #[arg(long = "no-init", action = ArgAction::SetFalse)]
    init: bool,
    /// Generator without L_dis (ablation)
    #[arg(long = "no-dis", action = ArgAction::SetFalse)]
    dis: bool,
    /// Share of each batch that gets L_dis
    #[arg(long, default_value_t = 1.0)]
    dis_fraction: f32,
    /// Flickr8k images the models train on
    #[arg(long, default_value_t = 6000)]
    train_images: usize,
    /// Name of this run's output files
    #[arg(long, default_value = "main")]
    label: String,
    /// Dense weights of the fused rows
    #[arg(long, value_delimiter = ',', default_value = "0,5,10,20,40")]
    dense_weights: Vec<f32>,
    /// min_candidates of the fused rows, each crossed with every dense weight
    #[arg(long, value_delimiter = ',', default_value = "0")]
    min_candidates: Vec<usize>,
    /// Attached texts not learned (ablation)
    #[arg(long = "no-index-texts", action = ArgAction::SetFalse)]
    index_texts: bool,
    /// No vector memory slot (ablation)
    #[arg(long = "no-index-vectors", action = ArgAction::SetFalse)]
    index_vectors: bool,
    /// Withhold the first N test images, add them after training and run an indexing pass
    #[arg(long)]
    incremental: Option<usize>,
    #[arg(long, default_value_t = 2)]
    pass_epochs: usize,
    /// Search the index a previous run of this label saved, without training
    #[arg(long)]
    reuse: bool,
    /// Leave out plain beam search and rerank
    #[arg(long)]
    fused_only: bool,
    /// The weights searches read (training is the same either way: with `--reuse`, both
    /// can be measured on one trained index)
    #[arg(long, default_value = "int8", value_parser = ["f32", "int8"])]
    search_weights: String,
}

fn die(msg: &str) -> ! {
    eprintln!("avg-eval: {msg}");
    std::process::exit(2)
}

/// (image name, its captions) in file order.
fn flickr8k(data: &Path) -> Vec<(String, Vec<String>)> {
    let path = data.join("flickr8k/Flickr8k.token.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let mut by_image: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    for line in text.lines() {
        let Some((key, caption)) = line.split_once('\t') else { continue };
        let Some((name, k)) = key.split_once('#') else { continue };
        by_image.entry(name.to_owned()).or_default().push((k.parse().unwrap_or(0), caption.trim().to_owned()));
    }
    by_image
        .into_iter()
        .filter(|(_, c)| c.len() >= 2)
        .map(|(n, mut c)| {
            c.sort();
            (n, c.into_iter().map(|(_, t)| t).collect())
        })
        .collect()
}

fn flickr30k_test(data: &Path) -> Vec<(String, Vec<String>)> {
    let path = data.join("flickr30k-test/f30k_test.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let map: BTreeMap<String, Vec<String>> = serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{e}")));
    // Each entry lists five captions and then the image's path.
    map.into_iter().map(|(n, c)| (n, c.into_iter().filter(|s| !s.ends_with(".jpg")).collect())).collect()
}

fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        items.swap(i, (next() % (i as u64 + 1)) as usize);
    }
}

/// Sentence vectors, cached on disk by text so that sweeps embed each caption once.
fn embed_all(encoder: &TextEncoder, texts: &[&String], cache: &Path) -> HashMap<String, Vec<f32>> {
    let mut known = read_cache(cache);
    let todo: Vec<&str> = texts.iter().filter(|t| !known.contains_key(t.as_str())).map(|t| t.as_str()).collect();
    if !todo.is_empty() {
        let t0 = Instant::now();
        // The cache also holds other data sets' captions: count this run's new ones.
        for (i, chunk) in todo.chunks(1024).enumerate() {
            for (t, v) in chunk.iter().zip(encoder.embed(chunk).unwrap_or_else(|e| die(&e.to_string()))) {
                known.insert(t.to_string(), v);
            }
            eprintln!("embedded {}/{} uncached captions", i * 1024 + chunk.len(), todo.len());
        }
        eprintln!("embedding: {:.1} captions/s", todo.len() as f64 / t0.elapsed().as_secs_f64());
        write_cache(cache, &known).unwrap_or_else(|e| die(&format!("{}: {e}", cache.display())));
    }
    known
}

/// The cache of caption vectors: a safetensors file holding one f32 tensor, a row per
/// caption, with the captions (a JSON list, in row order) in its metadata. A missing or
/// unreadable cache is empty.
fn read_cache(path: &Path) -> HashMap<String, Vec<f32>> {
    let read = || -> Option<HashMap<String, Vec<f32>>> {
        let bytes = std::fs::read(path).ok()?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).ok()?;
        let texts: Vec<String> = serde_json::from_str(meta.metadata().as_ref()?.get(CACHE_TEXTS)?).ok()?;
        let st = SafeTensors::deserialize(&bytes).ok()?;
        let t = st.tensor(CACHE_VECTORS).ok()?;
        let (&[rows, dim], Dtype::F32) = (t.shape(), t.dtype()) else { return None };
        let values: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        (rows == texts.len()).then(|| texts.into_iter().zip(values.chunks(dim.max(1)).map(<[f32]>::to_vec)).collect())
    };
    read().unwrap_or_default()
}

fn write_cache(path: &Path, known: &HashMap<String, Vec<f32>>) -> Result<(), String> {
    let dim = known.values().next().map_or(0, Vec::len);
    let (texts, bytes): (Vec<&String>, Vec<Vec<u8>>) =
        known.iter().map(|(t, v)| (t, v.iter().flat_map(|x| x.to_le_bytes()).collect())).unzip();
    let bytes = bytes.concat();
    let view = TensorView::new(Dtype::F32, vec![texts.len(), dim], &bytes).map_err(|e| e.to_string())?;
    let meta = HashMap::from([(CACHE_TEXTS.to_owned(), serde_json::to_string(&texts).unwrap())]);
    let out = safetensors::serialize([(CACHE_VECTORS, view)], Some(meta)).map_err(|e| e.to_string())?;
    std::fs::write(path, out).map_err(|e| e.to_string())
}

const CACHE_TEXTS: &str = "texts";
const CACHE_VECTORS: &str = "vectors";

struct Recall {
    r: [f64; 3],
    /// The target anywhere in the list (up to the beam size): candidate recall.
    candidates: f64,
    qps: f64,
}

fn recall(ranked: &[Vec<u64>], truth: &[u64], qps: f64) -> Recall {
    let mut r = [0f64; 3];
    let mut candidates = 0.0;
    for (hits, &t) in ranked.iter().zip(truth) {
        for (i, k) in [1, 5, 10].into_iter().enumerate() {
            r[i] += hits.iter().take(k).any(|&h| h == t) as u8 as f64;
        }
        candidates += hits.contains(&t) as u8 as f64;
    }
    let pct = |x: f64| 100.0 * x / truth.len() as f64;
    Recall { r: r.map(pct), candidates: pct(candidates), qps }
}

/// Per level l: the share of queries whose top hit has the target's first l+1 codes.
fn level_accuracy(index: &Index, ranked: &[Vec<u64>], truth: &[u64], m: usize) -> Vec<f64> {
    let mut right = vec![0usize; m];
    for (hits, &t) in ranked.iter().zip(truth) {
        let (Some(&top), Ok(want)) = (hits.first(), index.vokens(t)) else { continue };
        let got = index.vokens(top).unwrap_or_default();
        let same = got.iter().zip(&want).take(m).take_while(|(a, b)| a == b).count();
        for level in right.iter_mut().take(same) {
            *level += 1;
        }
    }
    right.into_iter().map(|n| 100.0 * n as f64 / truth.len() as f64).collect()
}

/// Queries (caption text, the image they belong to) and the pool they search.
struct Task<'a> {
    queries: Vec<(&'a String, u64)>,
    /// (id, vector) of every image a query may find: the dense baseline's candidates.
    pool: Vec<(u64, &'a [f32])>,
}

impl<'a> Task<'a> {
    /// Every caption but the first (the image's own text, its vector's source) of each
    /// image, as a query of it.
    fn new(images: &[(u64, &'a [String])], pool: Vec<(u64, &'a [f32])>) -> Self {
        let queries = images.iter().flat_map(|&(id, caps)| caps[1..].iter().map(move |c| (c, id))).collect();
        Task { queries, pool }
    }

    fn truth(&self) -> Vec<u64> {
        self.queries.iter().map(|(_, t)| *t).collect()
    }
}

/// Exact dot products of unit vectors (cosine) against every pooled vector.
fn dense_baseline(task: &Task, vec: &HashMap<String, Vec<f32>>) -> Recall {
    let t0 = Instant::now();
    let ranked: Vec<Vec<u64>> = task
        .queries
        .iter()
        .map(|(q, _)| {
            let qv = &vec[*q];
            let mut s: Vec<(f32, u64)> =
                task.pool.iter().map(|(id, v)| (v.iter().zip(qv).map(|(x, y)| x * y).sum(), *id)).collect();
            s.sort_by(|x, y| y.0.total_cmp(&x.0));
            s.into_iter().take(20).map(|(_, id)| id).collect()
        })
        .collect();
    recall(&ranked, &task.truth(), task.queries.len() as f64 / t0.elapsed().as_secs_f64())
}

/// Recall of one search setting; the generator's rows and the no-training reference.
fn run_search(
    index: &Index,
    task: &Task,
    vec: &HashMap<String, Vec<f32>>,
    name: &str,
    opts: &SearchOptions,
) -> (Recall, Vec<Vec<u64>>) {
    let t0 = Instant::now();
    let mut ranked = Vec::with_capacity(task.queries.len());
    for chunk in task.queries.chunks(32) {
        let q: Vec<&str> = chunk.iter().map(|(q, _)| q.as_str()).collect();
        let qv: Vec<&[f32]> = chunk.iter().map(|(q, _)| vec[*q].as_slice()).collect();
        let hits = if name.starts_with("tokenizer reference") {
            index.search_by_quantization(&qv, opts)
        } else {
            index.search_batch(&q, opts, Some(&qv))
        };
        let hits = hits.unwrap_or_else(|e| die(&e.to_string()));
        ranked.extend(hits.into_iter().map(|h| h.into_iter().map(|x| x.id).collect::<Vec<_>>()));
    }
    let r = recall(&ranked, &task.truth(), task.queries.len() as f64 / t0.elapsed().as_secs_f64());
    eprintln!("{name}: R@1 {:.1}, candidates {:.1}", r.r[0], r.candidates);
    (r, ranked)
}

fn fused(beam: usize, w: f32, min_candidates: usize) -> SearchOptions {
    SearchOptions { k: beam, beam_size: beam, fused: true, dense_weight: w, min_candidates, rerank: false }
}

fn main() {
    let a = Args::parse();
    std::fs::create_dir_all(&a.out).unwrap_or_else(|e| die(&format!("{}: {e}", a.out.display())));
    let started = Instant::now();
    let mut images = flickr8k(&a.data);
    shuffle(&mut images, a.seed);
    let train: Vec<_> = images[..a.train_images.min(6000)].to_vec();
    let test: Vec<_> = match a.test_set.as_str() {
        "flickr8k" => images[7000.min(images.len())..].iter().take(1000).cloned().collect(),
        "flickr8k-val" => images[6000..7000].to_vec(),
        "flickr30k" => flickr30k_test(&a.data),
        other => die(&format!("unknown test set {other}")),
    };
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
    let dim = encoder.dim();

    let dir = a.out.join(format!("index-{}", a.label));
    if !a.reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let search_weights = if a.search_weights == "f32" { SearchWeights::F32 } else { SearchWeights::Int8 };
    let config = IndexConfig { dim, codebook_size: a.n, voken_len: a.m, search_weights, ..Default::default() };
    let index = Index::open(&dir, Some(&config)).unwrap_or_else(|e| die(&e.to_string()));
    const TEST_BASE: u64 = 1 << 32;
    let test_ids: Vec<(u64, &[String])> =
        test.iter().enumerate().map(|(j, (_, c))| (TEST_BASE + j as u64, c.as_slice())).collect();
    // A test image enters with its vector; on the indexed track also with its own text
    // (its first caption, its vector's source), never one of its query captions.
    let add_test = |images: &[(u64, &[String])]| {
        for &(id, caps) in images.iter().filter(|(id, _)| !index.contains(*id)) {
            index.add_images(&[NewImage { id, key: None, vector: &vec[&caps[0]] }]).unwrap();
            if a.track == "indexed" {
                index.attach_texts(id, &[&caps[0]]).unwrap();
            }
        }
    };
    // Unseen: the test images are added after training (their codes from the trained
    // tokenizer). The incremental run withholds its new images likewise.
    let held = match (a.track.as_str(), a.incremental) {
        ("unseen", _) => test_ids.len(),
        (_, Some(n)) => n.min(test_ids.len()),
        _ => 0,
    };

    let gen = GeneratorTrainConfig {
        model_dir: a.generator_model.clone().unwrap_or_else(|| a.model.clone()),
        epochs: a.gen_epochs,
        dis: a.dis,
        dis_fraction: a.dis_fraction,
        init_from_codebook: a.init,
        index_texts: a.index_texts,
        index_vectors: a.index_vectors,
        ..Default::default()
    };
    let mut last = Instant::now();
    let mut report = |p: &avg::Progress| {
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
    };
    // (tokenizer seconds, generator seconds, what each training reported)
    let (tok_secs, gen_secs, trained) = if a.reuse {
        if index.image_count() == 0 {
            die(&format!("--reuse: nothing saved in {}; run once without it", dir.display()));
        }
        eprintln!("reusing {}: {} images, training skipped", dir.display(), index.image_count());
        (0.0, 0.0, serde_json::json!({"reused": dir}))
    } else {
        for (i, (_, caps)) in train.iter().enumerate() {
            index.add_images(&[NewImage { id: i as u64, key: None, vector: &vec[&caps[0]] }]).unwrap();
            let nc: Vec<NewCaption> = caps[1..].iter().map(|c| NewCaption { text: c, vector: Some(&vec[c]) }).collect();
            index.add_captions(i as u64, &nc).unwrap();
        }
        add_test(&test_ids[held..]);

        let t0 = Instant::now();
        let tok = TokenizerTrainConfig { epochs: a.tok_epochs, align: a.align, ..Default::default() };
        let tr = index.train_tokenizer(&tok, |_| true).unwrap_or_else(|e| die(&e.to_string()));
        let tok_secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "tokenizer: {tok_secs:.0} s, usage {:?}, {} collided",
            tr.stats.usage_per_level, tr.stats.collided_images
        );

        let t0 = Instant::now();
        let gr = index.train_generator(&gen, &mut report).unwrap_or_else(|e| die(&e.to_string()));
        let gen_secs = t0.elapsed().as_secs_f64();
        let trained = serde_json::json!({
            "tokenizer": {"usage_per_level": tr.stats.usage_per_level, "collided_images": tr.stats.collided_images, "seconds": tok_secs},
            "generator": {"loss_gen": gr.loss_gen, "loss_dis": gr.loss_dis, "seconds": gen_secs},
        });
        // Saved as trained, training images included, for a later `--reuse`.
        index.save().unwrap_or_else(|e| die(&e.to_string()));
        (tok_secs, gen_secs, trained)
    };
    add_test(&test_ids[..held]);

    let mut extra = serde_json::Map::new();
    let rows = match a.incremental {
        Some(_) if a.track == "unseen" => die("--incremental needs the indexed or caption-free track"),
        Some(_) if a.reuse => die("--incremental trains; it cannot --reuse"),
        Some(_) => {
            // Pool: the whole index (training images stay: the pass replays their pairs).
            let pool: Vec<(u64, &[f32])> = train
                .iter()
                .enumerate()
                .map(|(i, (_, c))| (i as u64, vec[&c[0]].as_slice()))
                .chain(test_ids.iter().map(|&(id, c)| (id, vec[&c[0]].as_slice())))
                .collect();
            let tasks =
                [("old", Task::new(&test_ids[held..], pool.clone())), ("new", Task::new(&test_ids[..held], pool))];
            let opts = fused(20, a.dense_weights[0], a.min_candidates[0]);
            let name = format!("libavg fused beam 20, dense weight {}", a.dense_weights[0]);
            let mut rows: Vec<(String, Recall)> = Vec::new();
            for (set, task) in &tasks {
                rows.push((format!("dense baseline, {set} images"), dense_baseline(task, &vec)));
                rows.push((
                    format!("{name}, {set} images, before the pass"),
                    run_search(&index, task, &vec, &name, &opts).0,
                ));
            }
            let t0 = Instant::now();
            let pass = GeneratorTrainConfig { incremental: true, epochs: a.pass_epochs, ..gen.clone() };
            let pr = index.train_generator(&pass, &mut report).unwrap_or_else(|e| die(&e.to_string()));
            let pass_secs = t0.elapsed().as_secs_f64();
            for (set, task) in &tasks {
                rows.push((
                    format!("{name}, {set} images, after the pass"),
                    run_search(&index, task, &vec, &name, &opts).0,
                ));
            }
            let per_1000 = pass_secs / pr.new_images.max(1) as f64 * 1000.0;
            eprintln!(
                "indexing pass: {} new images, {} steps, {pass_secs:.0} s ({per_1000:.0} s per 1,000 new images)",
                pr.new_images, pr.steps
            );
            extra.insert("pass".into(), serde_json::json!({"new_images": pr.new_images, "epochs": a.pass_epochs, "steps": pr.steps, "seconds": pass_secs, "seconds_per_1000_new_images": per_1000}));
            rows
        }
        None => {
            // Retrieval is among the test images only, as for the dense baseline.
            for i in 0..train.len() {
                index.remove_image(i as u64).unwrap();
            }
            let pool = test_ids.iter().map(|&(id, c)| (id, vec[&c[0]].as_slice())).collect();
            let task = Task::new(&test_ids, pool);
            let mut rows: Vec<(String, Recall)> =
                vec![("dense baseline (exact cosine, MiniLM)".into(), dense_baseline(&task, &vec))];
            let mut runs: Vec<(String, SearchOptions)> = Vec::new();
            for &beam in &a.beams {
                if !a.fused_only {
                    runs.push((
                        format!("libavg beam {beam}"),
                        SearchOptions { k: beam, beam_size: beam, ..Default::default() },
                    ));
                }
                if beam == 20 {
                    if !a.fused_only {
                        runs.push((
                            format!("libavg beam {beam} + rerank"),
                            SearchOptions { k: beam, beam_size: beam, rerank: true, ..Default::default() },
                        ));
                    }
                    for &c in &a.min_candidates {
                        let widen = if c > 0 { format!(", at least {c} candidates") } else { String::new() };
                        runs.extend(a.dense_weights.iter().map(|&w| {
                            (format!("libavg fused beam {beam}, dense weight {w}{widen}"), fused(beam, w, c))
                        }));
                        runs.extend(a.dense_weights.iter().map(|&w| {
                            (format!("tokenizer reference (no generator), dense weight {w}{widen}"), fused(beam, w, c))
                        }));
                    }
                }
            }
            for (name, opts) in runs {
                let (r, ranked) = run_search(&index, &task, &vec, &name, &opts);
                if name == "libavg beam 20" {
                    extra.insert(
                        "top1_code_prefix_accuracy".into(),
                        serde_json::json!(level_accuracy(&index, &ranked, &task.truth(), a.m)),
                    );
                }
                rows.push((name, r));
            }
            rows
        }
    };

    let setting = format!(
        "{} ({} test images), track {}, seed {}, {} training images, N={}, M={}, align={}, codebook init={}, L_dis={}, index texts={}, index vectors={}, tokenizer {} epochs ({:.0} s), generator {} epochs ({:.0} s), search weights {}, total {:.0} s",
        a.test_set, test.len(), a.track, a.seed, train.len(), a.n, a.m, a.align, a.init, a.dis, a.index_texts, a.index_vectors, a.tok_epochs, tok_secs, a.gen_epochs, gen_secs, a.search_weights, started.elapsed().as_secs_f64()
    );
    let mut md = format!(
        "Text proxy, {setting}\n\n| method | R@1 | R@5 | R@10 | candidates | queries/s |\n|---|---|---|---|---|---|\n"
    );
    for (name, r) in &rows {
        md += &format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            r.r[0], r.r[1], r.r[2], r.candidates, r.qps
        );
    }
    for (k, v) in &extra {
        md += &format!("\n{k}: {v}\n");
    }
    println!("{md}");
    let mut json = serde_json::json!({
        "label": a.label, "setting": setting, "track": a.track, "seed": a.seed, "test_set": a.test_set, "search_weights": a.search_weights,
        "training": trained,
        "rows": rows.iter().map(|(n, r)| serde_json::json!({"method": n, "r1": r.r[0], "r5": r.r[1], "r10": r.r[2], "candidates": r.candidates, "qps": r.qps})).collect::<Vec<_>>(),
    });
    json.as_object_mut().unwrap().extend(extra);
    std::fs::write(a.out.join(format!("{}.json", a.label)), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    std::fs::write(a.out.join(format!("{}.md", a.label)), md).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedding_cache_reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.safetensors");
        assert!(read_cache(&path).is_empty(), "a missing cache is empty");
        let known = HashMap::from([("a dog".to_owned(), vec![1.0, -2.5, 3.0]), ("a cat".into(), vec![0.0, 0.5, 1e-7])]);
        write_cache(&path, &known).unwrap();
        assert_eq!(read_cache(&path), known);
        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(read_cache(&path).is_empty(), "an unreadable cache is empty");
    }
}
