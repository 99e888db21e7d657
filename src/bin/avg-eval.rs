//! avg-eval: retrieval quality and speed of libavg on a real-text proxy, beside an exact
//! dense baseline, through the public API only.
//!
//! The proxy (no image weights can be installed here): each image's FIRST caption
//! stands in for the image; its sentence vector (all-MiniLM-L6-v2) is the image vector
//! v_i and is never a query. The other captions are the queries (test images) or the
//! training captions with their vectors v_t (training images).
//!
//! Split of Flickr8k: image names sorted, shuffled by a SplitMix64 Fisher-Yates with
//! seed 2024; the first 6,000 train, the next 1,000 validate (unused), the last 1,000
//! test. `--test-set flickr30k` keeps the Flickr8k training images and tests on the
//! 1,000 Flickr30K test images instead.
//!
//! usage: avg-eval --model MINILM_DIR [--data DIR] [--out DIR] [--test-set flickr8k|flickr30k]
//!        [--n 1024] [--m 4] [--beams 1,5,10,20,30,40] [--tok-epochs 20] [--gen-epochs 10]
//!        [--no-align] [--no-init] [--no-dis] [--dis-fraction 1.0] [--train-images 6000] [--label NAME]
//!        [--generator-model DIR (a T5 checkpoint instead of MiniLM + voken decoder)]

use avg::{GeneratorTrainConfig, Index, IndexConfig, NewCaption, NewImage, SearchOptions, TextEncoder, TokenizerTrainConfig};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    model: PathBuf,
    generator_model: Option<PathBuf>,
    data: PathBuf,
    out: PathBuf,
    test_set: String,
    n: usize,
    m: usize,
    beams: Vec<usize>,
    tok_epochs: usize,
    gen_epochs: usize,
    align: bool,
    init: bool,
    dis: bool,
    dis_fraction: f32,
    train_images: usize,
    label: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        model: PathBuf::new(),
        generator_model: None,
        data: PathBuf::from("../shared/data"),
        out: PathBuf::from("eval-out"),
        test_set: "flickr8k".into(),
        n: 1024,
        m: 4,
        beams: vec![1, 5, 10, 20, 30, 40],
        tok_epochs: 20,
        gen_epochs: 10,
        align: true,
        init: true,
        dis: true,
        dis_fraction: 1.0,
        train_images: 6000,
        label: "main".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| die(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--model" => a.model = val().into(),
            "--generator-model" => a.generator_model = Some(val().into()),
            "--data" => a.data = val().into(),
            "--out" => a.out = val().into(),
            "--test-set" => a.test_set = val(),
            "--n" => a.n = num(&val()),
            "--m" => a.m = num(&val()),
            "--beams" => a.beams = val().split(',').map(num).collect(),
            "--tok-epochs" => a.tok_epochs = num(&val()),
            "--gen-epochs" => a.gen_epochs = num(&val()),
            "--train-images" => a.train_images = num(&val()),
            "--dis-fraction" => a.dis_fraction = val().parse().unwrap_or_else(|_| die("--dis-fraction needs a number")),
            "--label" => a.label = val(),
            "--no-align" => a.align = false,
            "--no-init" => a.init = false,
            "--no-dis" => a.dis = false,
            _ => die(&format!("unknown argument {flag}")),
        }
    }
    if a.model.as_os_str().is_empty() {
        die("--model MINILM_DIR is required");
    }
    a
}

fn num(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| die(&format!("not a number: {s}")))
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
    let mut known: HashMap<String, Vec<f32>> = std::fs::read(cache).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
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
        std::fs::write(cache, serde_json::to_vec(&known).unwrap()).unwrap_or_else(|e| die(&format!("{}: {e}", cache.display())));
    }
    known
}

struct Recall {
    r: [f64; 3],
    qps: f64,
}

fn recall(ranked: &[Vec<u64>], truth: &[u64], qps: f64) -> Recall {
    let mut r = [0f64; 3];
    for (hits, &t) in ranked.iter().zip(truth) {
        for (i, k) in [1, 5, 10].into_iter().enumerate() {
            r[i] += hits.iter().take(k).any(|&h| h == t) as u8 as f64;
        }
    }
    Recall { r: r.map(|x| 100.0 * x / truth.len() as f64), qps }
}

fn main() {
    let a = parse_args();
    std::fs::create_dir_all(&a.out).unwrap_or_else(|e| die(&format!("{}: {e}", a.out.display())));
    let started = Instant::now();
    let mut images = flickr8k(&a.data);
    shuffle(&mut images, 2024);
    let train: Vec<_> = images[..a.train_images.min(6000)].to_vec();
    let test: Vec<_> = match a.test_set.as_str() {
        "flickr8k" => images[7000.min(images.len())..].iter().take(1000).cloned().collect(),
        "flickr30k" => flickr30k_test(&a.data),
        other => die(&format!("unknown test set {other}")),
    };
    eprintln!("{} training images, {} test images ({})", train.len(), test.len(), a.test_set);

    let encoder = TextEncoder::load(&a.model, "cpu").unwrap_or_else(|e| die(&e.to_string()));
    let all: Vec<&String> = train.iter().chain(&test).flat_map(|(_, c)| c.iter()).collect();
    let vec = embed_all(&encoder, &all, &a.out.join("embeddings-cache.json"));
    let dim = encoder.dim();

    let dir = a.out.join(format!("index-{}", a.label));
    let _ = std::fs::remove_dir_all(&dir);
    let config = IndexConfig { dim, codebook_size: a.n, voken_len: a.m, ..Default::default() };
    let index = Index::open(&dir, Some(&config)).unwrap_or_else(|e| die(&e.to_string()));
    const TEST_BASE: u64 = 1 << 32;
    let add = |id: u64, caps: &[String], with_captions: bool| {
        index.add_images(&[NewImage { id, key: None, vector: &vec[&caps[0]] }]).unwrap();
        if with_captions {
            let nc: Vec<NewCaption> = caps[1..].iter().map(|c| NewCaption { text: c, vector: Some(&vec[c]) }).collect();
            index.add_captions(id, &nc).unwrap();
        }
    };
    for (i, (_, caps)) in train.iter().enumerate() {
        add(i as u64, caps, true);
    }
    for (j, (_, caps)) in test.iter().enumerate() {
        add(TEST_BASE + j as u64, caps, false);
    }

    let t0 = Instant::now();
    let tok = TokenizerTrainConfig { epochs: a.tok_epochs, align: a.align, ..Default::default() };
    let tr = index.train_tokenizer(&tok, |_| true).unwrap_or_else(|e| die(&e.to_string()));
    let tok_secs = t0.elapsed().as_secs_f64();
    eprintln!("tokenizer: {tok_secs:.0} s, usage {:?}, {} collided", tr.stats.usage_per_level, tr.stats.collided_images);

    let t0 = Instant::now();
    let gen = GeneratorTrainConfig {
        model_dir: a.generator_model.clone().unwrap_or_else(|| a.model.clone()),
        epochs: a.gen_epochs,
        dis: a.dis,
        dis_fraction: a.dis_fraction,
        init_from_codebook: a.init,
        ..Default::default()
    };
    let mut last = Instant::now();
    let gr = index
        .train_generator(&gen, |p| {
            if last.elapsed().as_secs() >= 30 || p.step + 1 == p.steps_per_epoch {
                eprintln!("generator epoch {}/{} step {}/{} L_gen {:.3} L_dis {:.3} {:.0} samples/s", p.epoch + 1, p.epochs, p.step + 1, p.steps_per_epoch, p.loss_gen, p.loss_dis, p.samples_per_second);
                last = Instant::now();
            }
            true
        })
        .unwrap_or_else(|e| die(&e.to_string()));
    let gen_secs = t0.elapsed().as_secs_f64();

    // Retrieval is among the test images only, as for the dense baseline.
    for i in 0..train.len() {
        index.remove_image(i as u64).unwrap();
    }
    let queries: Vec<(&String, u64)> =
        test.iter().enumerate().flat_map(|(j, (_, caps))| caps[1..].iter().map(move |c| (c, TEST_BASE + j as u64))).collect();
    let truth: Vec<u64> = queries.iter().map(|(_, t)| *t).collect();

    // Dense baseline: exact dot products of unit vectors (cosine) against every test v_i.
    let t0 = Instant::now();
    let dense: Vec<Vec<u64>> = queries
        .iter()
        .map(|(q, _)| {
            let qv = &vec[*q];
            let mut s: Vec<(f32, u64)> =
                test.iter().enumerate().map(|(j, (_, caps))| (vec[&caps[0]].iter().zip(qv).map(|(x, y)| x * y).sum(), TEST_BASE + j as u64)).collect();
            s.sort_by(|x, y| y.0.total_cmp(&x.0));
            s.into_iter().take(10).map(|(_, id)| id).collect()
        })
        .collect();
    let dense = recall(&dense, &truth, queries.len() as f64 / t0.elapsed().as_secs_f64());

    let mut rows: Vec<(String, Recall)> = vec![("dense baseline (exact cosine, MiniLM)".into(), dense)];
    for &beam in &a.beams {
        for rerank in [false, true] {
            if rerank && beam != 20 {
                continue;
            }
            let opts = SearchOptions { k: 10, beam_size: beam, rerank };
            let t0 = Instant::now();
            let mut ranked = Vec::with_capacity(queries.len());
            for chunk in queries.chunks(32) {
                let q: Vec<&str> = chunk.iter().map(|(q, _)| q.as_str()).collect();
                let qv: Vec<&[f32]> = chunk.iter().map(|(q, _)| vec[*q].as_slice()).collect();
                let hits = index.search_batch(&q, &opts, Some(&qv)).unwrap_or_else(|e| die(&e.to_string()));
                ranked.extend(hits.into_iter().map(|h| h.into_iter().map(|x| x.id).collect::<Vec<_>>()));
            }
            let r = recall(&ranked, &truth, queries.len() as f64 / t0.elapsed().as_secs_f64());
            let name = format!("libavg beam {beam}{}", if rerank { " + rerank" } else { "" });
            eprintln!("{name}: R@1 {:.1}", r.r[0]);
            rows.push((name, r));
        }
    }

    let setting = format!(
        "{} ({} test images, {} queries), N={}, M={}, align={}, codebook init={}, L_dis={}, tokenizer {} epochs ({:.0} s), generator {} epochs ({:.0} s), total {:.0} s",
        a.test_set, test.len(), queries.len(), a.n, a.m, a.align, a.init, a.dis, a.tok_epochs, tok_secs, a.gen_epochs, gen_secs, started.elapsed().as_secs_f64()
    );
    let mut md = format!("Text proxy, {setting}\n\n| method | R@1 | R@5 | R@10 | queries/s |\n|---|---|---|---|---|\n");
    for (name, r) in &rows {
        md += &format!("| {name} | {:.1} | {:.1} | {:.1} | {:.1} |\n", r.r[0], r.r[1], r.r[2], r.qps);
    }
    println!("{md}");
    let json = serde_json::json!({
        "label": a.label, "setting": setting, "tokenizer": {"usage_per_level": tr.stats.usage_per_level, "collided_images": tr.stats.collided_images, "seconds": tok_secs},
        "generator": {"loss_gen": gr.loss_gen, "loss_dis": gr.loss_dis, "seconds": gen_secs},
        "rows": rows.iter().map(|(n, r)| serde_json::json!({"method": n, "r1": r.r[0], "r5": r.r[1], "r10": r.r[2], "qps": r.qps})).collect::<Vec<_>>(),
    });
    std::fs::write(a.out.join(format!("{}.json", a.label)), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    std::fs::write(a.out.join(format!("{}.md", a.label)), md).unwrap();
}
