//! Synthetic data shared by the integration tests.
#![allow(dead_code)]

use avg::{Index, IndexConfig, NewCaption, NewImage};

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
        let images: Vec<NewImage> = self.images.iter().map(|(id, v)| NewImage { id: *id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
        for ((id, _), caps) in self.images.iter().zip(&self.captions) {
            let captions: Vec<NewCaption> =
                caps.iter().enumerate().map(|(k, v)| NewCaption { text: if k == 0 { "a photo" } else { "another view" }, vector: Some(v) }).collect();
            index.add_captions(*id, &captions).unwrap();
        }
    }
}

pub fn small_config(dim: usize) -> IndexConfig {
    IndexConfig { dim, codebook_size: 32, voken_len: 3, device: "cpu".into() }
}

/// Writes a tiny randomly initialised BERT checkpoint (config.json, model.safetensors
/// and a word-level tokenizer.json over `words`) into `dir`.
pub fn write_tiny_bert(dir: &std::path::Path, words: &[String], seed: u64) {
    use candle_core::{Device, Tensor};
    use std::collections::HashMap;
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
    let ids: serde_json::Map<String, serde_json::Value> = vocab.iter().enumerate().map(|(i, w)| (w.clone(), i.into())).collect();
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
        t.insert(name, Tensor::from_vec((0..n).map(|_| rng.next() * std * 1.7).collect::<Vec<f32>>(), shape, &dev).unwrap());
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
    if variant == 0 { format!("a photo of t{topic}a t{topic}b item{id}") } else { format!("item{id} seen with t{topic}b") }
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
        let images: Vec<NewImage> = self.images.iter().map(|(id, v)| NewImage { id: *id, key: None, vector: v }).collect();
        index.add_images(&images).unwrap();
        for ((id, _), caps) in self.images.iter().zip(&self.captions) {
            let texts: Vec<String> = (0..caps.len()).map(|k| caption_text(self.topic(*id), *id, k)).collect();
            let captions: Vec<NewCaption> = caps.iter().zip(&texts).map(|(v, t)| NewCaption { text: t, vector: Some(v) }).collect();
            index.add_captions(*id, &captions).unwrap();
        }
    }
}
