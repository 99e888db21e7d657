//! Synthetic data shared by the integration tests.
#![allow(dead_code)]

use avg::{GeneratorTrainConfig, Hit, Index, IndexConfig, NewCaption, NewImage};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A small deterministic generator (tests must not depend on the library's internals).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vector(&mut self, dim: usize, scale: f32) -> Vec<f32> {
        (0..dim).map(|_| self.next() * scale).collect()
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter_mut().for_each(|x| *x /= n);
}

/// A topic-structured set: `topics` topic vectors; image i belongs to topic i % topics.
/// Its image vector is topic + `image_noise` of image-specific noise; its captions are
/// topic + a little noise, so captions of one topic are close while images are not.
pub struct Synthetic {
    pub dim: usize,
    pub topics: usize,
    pub images: Vec<(u64, Vec<f32>)>,
    pub captions: Vec<Vec<Vec<f32>>>,
}

impl Synthetic {
    pub fn new(dim: usize, n: usize, topics: usize, image_noise: f32, seed: u64) -> Self {
        let mut rng = Lcg(seed);
        let centres: Vec<Vec<f32>> = (0..topics).map(|_| rng.vector(dim, 1.0)).collect();
        let mut images = Vec::new();
        let mut captions = Vec::new();
        for i in 0..n {
            let c = &centres[i % topics];
            let mut v: Vec<f32> = c.iter().map(|x| x + rng.next() * image_noise).collect();
            normalize(&mut v);
            images.push((i as u64, v));
            captions.push(
                (0..2)
                    .map(|_| {
                        let mut t: Vec<f32> = c.iter().map(|x| x + rng.next() * 0.1).collect();
                        normalize(&mut t);
                        t
                    })
                    .collect(),
            );
        }
        Synthetic { dim, topics, images, captions }
    }

    pub fn topic(&self, id: u64) -> usize {
        id as usize % self.topics
    }

    pub fn fill(&self, index: &Index) {
        let images: Vec<NewImage> =
            self.images.iter().map(|(id, v)| NewImage { id: *id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
        for ((id, _), caps) in self.images.iter().zip(&self.captions) {
            let captions: Vec<NewCaption> = caps
                .iter()
                .enumerate()
                .map(|(k, v)| NewCaption { text: if k == 0 { "a photo" } else { "another view" }, vector: Some(v) })
                .collect();
            index.add_captions(*id, &captions).unwrap();
        }
    }
}

/// The same images in the same order with the same scores, up to float rounding (the
/// same model computes in a different summation order on another device, or where its
/// weights sit at another alignment after a reload).
pub fn assert_same_hits(a: &[Hit], b: &[Hit]) {
    let ids = |h: &[Hit]| h.iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(ids(a), ids(b), "hits differ: {a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x.score - y.score).abs() < 1e-3, "scores differ: {x:?} vs {y:?}");
    }
}

/// Generator training that takes a tiny BERT (`write_tiny_bert`) to high top-1 on the
/// training captions in seconds.
pub fn tiny_generator_config(model: &Path) -> GeneratorTrainConfig {
    GeneratorTrainConfig {
        model_dir: model.to_path_buf(),
        epochs: 80,
        batch_size: 32,
        learning_rate: 3e-3,
        decoder_layers: 1,
        decoder_d_model: 64,
        beam_size: 4,
        ..Default::default()
    }
}

pub fn small_config(dim: usize) -> IndexConfig {
    IndexConfig { dim, codebook_size: 32, voken_len: 3, ..Default::default() }
}

/// Writes a tiny randomly initialised BERT checkpoint (config.json, model.safetensors
/// and a word-level tokenizer.json over `words`) into `dir`.
pub fn write_tiny_bert(dir: &Path, words: &[String], seed: u64) {
    let (h, layers, inter) = (32usize, 1usize, 64usize);
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().map(|s| s.to_string()).collect();
    vocab.extend(words.iter().cloned());
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "model_type": "bert", "vocab_size": vocab.len(), "hidden_size": h, "num_hidden_layers": layers,
        "num_attention_heads": 2, "intermediate_size": inter, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 64, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0
    });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let ids: serde_json::Map<String, serde_json::Value> =
        vocab.iter().enumerate().map(|(i, w)| (w.clone(), i.into())).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [], "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": ids, "unk_token": "[UNK]"}
    });
    std::fs::write(dir.join("tokenizer.json"), serde_json::to_vec(&tokenizer).unwrap()).unwrap();
    let mut rng = Lcg(seed);
    let dev = Device::Cpu;
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut rand = |name: String, shape: &[usize], std: f32, t: &mut HashMap<String, Tensor>| {
        let n: usize = shape.iter().product();
        t.insert(
            name,
            Tensor::from_vec((0..n).map(|_| rng.next() * std * 1.7).collect::<Vec<f32>>(), shape, &dev).unwrap(),
        );
    };
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let zeros = |n: usize| Tensor::zeros(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    rand("embeddings.word_embeddings.weight".into(), &[vocab.len(), h], 1.0, &mut t);
    rand("embeddings.position_embeddings.weight".into(), &[64, h], 0.1, &mut t);
    rand("embeddings.token_type_embeddings.weight".into(), &[2, h], 0.1, &mut t);
    t.insert("embeddings.LayerNorm.weight".into(), ones(h));
    t.insert("embeddings.LayerNorm.bias".into(), zeros(h));
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for (name, i, o) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", h, inter),
            ("output.dense", inter, h),
        ] {
            rand(format!("{p}.{name}.weight"), &[o, i], (i as f32).powf(-0.5), &mut t);
            t.insert(format!("{p}.{name}.bias"), zeros(o));
        }
        for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
            t.insert(format!("{p}.{name}.weight"), ones(h));
            t.insert(format!("{p}.{name}.bias"), zeros(h));
        }
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
}

/// Caption text of image `id` in topic `topic`: shared topic words and one word of its own.
pub fn caption_text(topic: usize, id: u64, variant: usize) -> String {
    if variant == 0 {
        format!("a photo of t{topic}a t{topic}b item{id}")
    } else {
        format!("item{id} seen with t{topic}b")
    }
}

/// Every word `caption_text` can use for `n` images of `topics` topics.
pub fn caption_words(n: usize, topics: usize) -> Vec<String> {
    let mut w: Vec<String> = ["a", "photo", "of", "seen", "with"].iter().map(|s| s.to_string()).collect();
    for t in 0..topics {
        w.push(format!("t{t}a"));
        w.push(format!("t{t}b"));
    }
    w.extend((0..n).map(|i| format!("item{i}")));
    w
}

impl Synthetic {
    /// Like `fill`, with caption texts from `caption_text`.
    pub fn fill_with_texts(&self, index: &Index) {
        let images: Vec<NewImage> =
            self.images.iter().map(|(id, v)| NewImage { id: *id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
        for ((id, _), caps) in self.images.iter().zip(&self.captions) {
            let texts: Vec<String> = (0..caps.len()).map(|k| caption_text(self.topic(*id), *id, k)).collect();
            let captions: Vec<NewCaption> =
                caps.iter().zip(&texts).map(|(v, t)| NewCaption { text: t, vector: Some(v) }).collect();
            index.add_captions(*id, &captions).unwrap();
        }
    }
}

/// Width of the image vectors that the benches' `TopicVectors` make.
pub const BENCH_DIM: usize = 512;

/// A t5-small-shaped checkpoint (60M parameters) with random weights and the T5 tokenizer.
pub fn write_t5_small(dir: &Path, tokenizer: &Path) {
    let (d, kv, ff, layers, heads, vocab) = (512usize, 64usize, 2048usize, 6usize, 8usize, 32128usize);
    let mut rng = Lcg(9);
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut add = |name: String, shape: &[usize], std: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = if std == 0.0 { vec![1.0; n] } else { (0..n).map(|_| rng.next() * std * 1.7).collect() };
        t.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
    };
    add("shared.weight".into(), &[vocab, d], 1.0);
    for (stack, cross) in [("encoder", false), ("decoder", true)] {
        for l in 0..layers {
            let p = format!("{stack}.block.{l}.layer");
            let mut attn = |name: &str| {
                for w in ["q", "k", "v"] {
                    add(format!("{p}.{name}.{w}.weight"), &[heads * kv, d], 0.05);
                }
                add(format!("{p}.{name}.o.weight"), &[d, heads * kv], 0.05);
            };
            attn("0.SelfAttention");
            if cross {
                attn("1.EncDecAttention");
            }
            if l == 0 {
                add(format!("{p}.0.SelfAttention.relative_attention_bias.weight"), &[32, heads], 0.5);
            }
            let f = if cross { 2 } else { 1 };
            add(format!("{p}.{f}.DenseReluDense.wi.weight"), &[ff, d], 0.05);
            add(format!("{p}.{f}.DenseReluDense.wo.weight"), &[d, ff], 0.02);
            for n in 0..=f {
                add(format!("{p}.{n}.layer_norm.weight"), &[d], 0.0);
            }
        }
        add(format!("{stack}.final_layer_norm.weight"), &[d], 0.0);
    }
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    let config = serde_json::json!({"model_type": "t5", "vocab_size": vocab, "d_model": d, "d_kv": kv, "d_ff": ff,
        "num_layers": layers, "num_heads": heads, "feed_forward_proj": "relu", "tie_word_embeddings": true});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(tokenizer, dir.join("tokenizer.json")).unwrap();
}

/// Trains a speed bench's index on the images it holds: 32 of them get one caption, the
/// tokenizer trains 2 epochs (hidden 256), and a t5-small-sized generator with random
/// weights (written to `model`) takes one step of batch 32 on the captions: search
/// speed does not depend on the weights. Prints what each took.
pub fn train_for_search(index: &Index, model: &Path, caption: &[f32]) {
    write_t5_small(model, &t5_tokenizer());
    for id in 0..32 {
        index.add_captions(id, &[NewCaption { text: "a dog runs on the beach", vector: Some(caption) }]).unwrap();
    }
    let t = std::time::Instant::now();
    let tok = avg::TokenizerTrainConfig { epochs: 2, hidden: 256, ..Default::default() };
    let report = index.train_tokenizer(&tok, |_| true).unwrap();
    let images = index.image_count();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "tokenizer ({images} images, 2 epochs): {secs:.1} s, {} share their M codes",
        report.stats.collided_images
    );
    let t = std::time::Instant::now();
    // Captions only: with the vector slot on, each caption-free image would add a pair
    // learned from its vector, hundreds of steps instead of one.
    let cfg = GeneratorTrainConfig {
        model_dir: model.to_path_buf(),
        epochs: 1,
        batch_size: 32,
        dis: false,
        index_vectors: false,
        ..Default::default()
    };
    index.train_generator(&cfg, |_| true).unwrap();
    println!("generator (t5-small size, one step of batch 32 with saving): {:.1} s", t.elapsed().as_secs_f64());
}

/// Vectors of dimension `BENCH_DIM` structured like embeddings: one of 20,000 random topic
/// directions plus noise, normalised.
pub struct TopicVectors {
    rng: Lcg,
    topics: Vec<Vec<f32>>,
}

impl TopicVectors {
    pub fn new() -> Self {
        let mut rng = Lcg(1);
        let topics = (0..20_000).map(|_| rng.vector(BENCH_DIM, 1.0)).collect();
        TopicVectors { rng, topics }
    }

    /// Adds images `from..to` with the next vectors, 10,000 at a time.
    pub fn add_to(&mut self, index: &Index, from: u64, to: u64) {
        for start in (from..to).step_by(10_000) {
            let end = (start + 10_000).min(to);
            let flat: Vec<f32> = (start..end).flat_map(|_| self.next()).collect();
            let images: Vec<NewImage> =
                (start..end).zip(flat.chunks(BENCH_DIM)).map(|(id, v)| NewImage { id, key: None, vector: v }).collect();
            index.add_images(&images).unwrap();
        }
    }

    pub fn next(&mut self) -> Vec<f32> {
        let t = ((self.rng.next() + 1.0) * 0.5 * self.topics.len() as f32) as usize % self.topics.len();
        let mut v: Vec<f32> = self.topics[t].iter().map(|x| x + self.rng.next() * 0.7).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }
}

/// The T5 tokenizer the benches' t5-small checkpoint uses: `AVG_T5_TOKENIZER`, else
/// ../shared/data/t5-tokenizer/tokenizer.json beside the checkout, else (a fresh clone)
/// a word-level stand-in of the same size written under the target directory: the
/// model's shape is the same, and only a query's few encoder tokens may differ.
pub fn t5_tokenizer() -> PathBuf {
    if let Some(path) = std::env::var_os("AVG_T5_TOKENIZER").map(PathBuf::from) {
        assert!(path.exists(), "AVG_T5_TOKENIZER names {}, which is missing", path.display());
        return path;
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/t5-tokenizer/tokenizer.json");
    if shared.exists() {
        return shared;
    }
    // Benches and tests have a scratch directory in the target; examples do not.
    let scratch = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let path = scratch.join("t5-stand-in/tokenizer.json");
    println!("T5 tokenizer: {} not found; a word-level stand-in of 32,100 pieces", shared.display());
    let vocab: serde_json::Map<String, serde_json::Value> = ["<pad>", "</s>", "<unk>"]
        .iter()
        .map(|s| s.to_string())
        .chain((3..32_100).map(|i| format!("w{i}")))
        .enumerate()
        .map(|(i, w)| (w, i.into()))
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"}, "decoder": null,
        "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, tokenizer.to_string()).unwrap();
    path
}

/// The value at fraction `p` of `sorted` (0.5: the median).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `f` while `threads` busy threads compete for the cores (another program's work,
/// as on a desktop or a shared server).
pub fn with_busy_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            });
        }
        let r = f();
        stop.store(true, Ordering::Relaxed);
        r
    })
}

/// Seconds of every training step but the first (warm-up), sorted.
pub fn train_step_seconds(index: &Index, cfg: &GeneratorTrainConfig) -> Vec<f64> {
    let mut stamps = vec![std::time::Instant::now()];
    index
        .train_generator(cfg, |_| {
            stamps.push(std::time::Instant::now());
            true
        })
        .unwrap();
    let mut steps: Vec<f64> = stamps.windows(2).skip(1).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    steps.sort_by(f64::total_cmp);
    steps
}

/// Sizes of a CLIP checkpoint written by `write_clip`.
pub struct ClipSizes {
    pub text_hidden: usize,
    pub text_layers: usize,
    pub text_heads: usize,
    pub text_act: &'static str,
    pub vision_hidden: usize,
    pub vision_layers: usize,
    pub vision_heads: usize,
    pub vision_act: &'static str,
    pub image_size: usize,
    pub patch_size: usize,
    pub projection_dim: usize,
    /// Resize and crop of `preprocessor_config.json`.
    pub shortest_edge: usize,
    /// Longest text in tokens.
    pub max_positions: usize,
}

impl ClipSizes {
    /// The parity test's tiny model (text 32 wide, vision 24 wide, 32-pixel photos).
    pub fn tiny() -> Self {
        ClipSizes {
            text_hidden: 32,
            text_layers: 2,
            text_heads: 4,
            text_act: "quick_gelu",
            vision_hidden: 24,
            vision_layers: 2,
            vision_heads: 3,
            vision_act: "gelu",
            image_size: 32,
            patch_size: 8,
            projection_dim: 16,
            shortest_edge: 32,
            max_positions: 16,
        }
    }

    /// OpenAI's ViT-B/32 (151M parameters).
    pub fn vit_b32() -> Self {
        ClipSizes {
            text_hidden: 512,
            text_layers: 12,
            text_heads: 8,
            text_act: "quick_gelu",
            vision_hidden: 768,
            vision_layers: 12,
            vision_heads: 12,
            vision_act: "quick_gelu",
            image_size: 224,
            patch_size: 32,
            projection_dim: 512,
            shortest_edge: 224,
            max_positions: 77,
        }
    }
}

/// Words of the tokenizer `write_clip` writes (ids 4 and up).
pub fn clip_words() -> Vec<String> {
    "a photo of the dog cat on grass red blue car street man woman with ball two people riding bike sitting bench near water snow mountain sky tree white black"
        .split(' ')
        .map(String::from)
        .collect()
}

/// Writes a randomly initialised CLIP checkpoint in the Hugging Face layout into `dir`:
/// config.json, model.safetensors, preprocessor_config.json, and a word-level
/// tokenizer.json that wraps texts in `<|startoftext|>` (1) and `<|endoftext|>` (3).
/// The end token is not the highest id, so pooling must look for it.
pub fn write_clip(dir: &Path, s: &ClipSizes, seed: u64) {
    let mut vocab: Vec<String> =
        ["!", "<|startoftext|>", "<unk>", "<|endoftext|>"].iter().map(|s| s.to_string()).collect();
    vocab.extend(clip_words());
    let (vocab_size, max_pos) = (vocab.len() + 6, s.max_positions);
    std::fs::create_dir_all(dir).unwrap();
    let tower = |h: usize, layers: usize, heads: usize, act: &str| {
        serde_json::json!({"hidden_size": h, "intermediate_size": h * 4 + 5, "num_hidden_layers": layers,
            "num_attention_heads": heads, "hidden_act": act, "layer_norm_eps": 1e-5})
    };
    let mut text = tower(s.text_hidden, s.text_layers, s.text_heads, s.text_act);
    text["vocab_size"] = vocab_size.into();
    text["max_position_embeddings"] = max_pos.into();
    text["eos_token_id"] = 3.into();
    text["bos_token_id"] = 1.into();
    text["pad_token_id"] = 0.into();
    let mut vision = tower(s.vision_hidden, s.vision_layers, s.vision_heads, s.vision_act);
    vision["image_size"] = s.image_size.into();
    vision["patch_size"] = s.patch_size.into();
    vision["num_channels"] = 3.into();
    let config = serde_json::json!({"model_type": "clip", "projection_dim": s.projection_dim,
        "text_config": text, "vision_config": vision, "logit_scale_init_value": 2.6592});
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let prep = serde_json::json!({"crop_size": {"height": s.image_size, "width": s.image_size}, "do_center_crop": true,
        "do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": s.shortest_edge}});
    std::fs::write(dir.join("preprocessor_config.json"), serde_json::to_vec_pretty(&prep).unwrap()).unwrap();
    let ids: serde_json::Map<String, serde_json::Value> =
        vocab.iter().enumerate().map(|(i, w)| (w.clone(), i.into())).collect();
    let special = |t: &str, id: u32| serde_json::json!({"id": t, "ids": [id], "tokens": [t]});
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"}, "decoder": null,
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
            "special_tokens": {"<|startoftext|>": special("<|startoftext|>", 1), "<|endoftext|>": special("<|endoftext|>", 3)}},
        "model": {"type": "WordLevel", "vocab": ids, "unk_token": "<unk>"}
    });
    std::fs::write(dir.join("tokenizer.json"), serde_json::to_vec(&tokenizer).unwrap()).unwrap();

    let mut rng = Lcg(seed);
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize], std: f32, mean: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| mean + rng.next() * std * 1.7).collect();
        t.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
    };
    type Put<'a> = dyn FnMut(String, &[usize], f32, f32) + 'a;
    fn encoder(put: &mut Put, p: &str, h: usize, layers: usize) {
        let inter = h * 4 + 5;
        for l in 0..layers {
            let p = format!("{p}.encoder.layers.{l}");
            for (name, i, o) in [
                ("self_attn.q_proj", h, h),
                ("self_attn.k_proj", h, h),
                ("self_attn.v_proj", h, h),
                ("self_attn.out_proj", h, h),
                ("mlp.fc1", h, inter),
                ("mlp.fc2", inter, h),
            ] {
                put(format!("{p}.{name}.weight"), &[o, i], (i as f32).powf(-0.5), 0.0);
                put(format!("{p}.{name}.bias"), &[o], 0.02, 0.0);
            }
            for name in ["layer_norm1", "layer_norm2"] {
                put(format!("{p}.{name}.weight"), &[h], 0.1, 1.0);
                put(format!("{p}.{name}.bias"), &[h], 0.05, 0.0);
            }
        }
    }
    let (th, vh) = (s.text_hidden, s.vision_hidden);
    put("text_model.embeddings.token_embedding.weight".into(), &[vocab_size, th], 1.0, 0.0);
    put("text_model.embeddings.position_embedding.weight".into(), &[max_pos, th], 0.1, 0.0);
    encoder(&mut put, "text_model", th, s.text_layers);
    put("text_model.final_layer_norm.weight".into(), &[th], 0.1, 1.0);
    put("text_model.final_layer_norm.bias".into(), &[th], 0.05, 0.0);
    let patches = (s.image_size / s.patch_size).pow(2);
    put("vision_model.embeddings.class_embedding".into(), &[vh], 1.0, 0.0);
    put(
        "vision_model.embeddings.patch_embedding.weight".into(),
        &[vh, 3, s.patch_size, s.patch_size],
        (3.0 * (s.patch_size * s.patch_size) as f32).powf(-0.5),
        0.0,
    );
    put("vision_model.embeddings.position_embedding.weight".into(), &[patches + 1, vh], 0.1, 0.0);
    for name in ["pre_layrnorm", "post_layernorm"] {
        put(format!("vision_model.{name}.weight"), &[vh], 0.1, 1.0);
        put(format!("vision_model.{name}.bias"), &[vh], 0.05, 0.0);
    }
    encoder(&mut put, "vision_model", vh, s.vision_layers);
    put("text_projection.weight".into(), &[s.projection_dim, th], (th as f32).powf(-0.5), 0.0);
    put("visual_projection.weight".into(), &[s.projection_dim, vh], (vh as f32).powf(-0.5), 0.0);
    put("logit_scale".into(), &[], 0.0, 2.6592);
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
}
