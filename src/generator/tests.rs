//! The T5 backbone on a tiny random checkpoint written here: gradients reach every
//! parameter, training learns caption -> vokens, and both feed-forward kinds load.

use super::beam;
use super::t5::{Stack, T5Config};
use super::train::{train, Example};
use super::GeneratorTrainConfig;
use super::{Generator, NewGenerator, SearchWeights};
use crate::params::{Init, Params};
use crate::vokens::trie::Trie;
use candle_core::{Device, Tensor};
use std::path::Path;

fn words() -> Vec<String> {
    (0..20).map(|i| format!("w{i}")).collect()
}

/// A tiny T5 checkpoint in the Hugging Face layout, with a word-level tokenizer.
fn write_tiny_t5(dir: &Path, gated: bool, tied: bool) -> T5Config {
    let vocab: Vec<String> = ["<pad>", "</s>", "<unk>"].iter().map(|s| s.to_string()).chain(words()).collect();
    let c = T5Config {
        vocab_size: vocab.len() + 5, // like t5's 32128 > 32100: unused rows at the end
        d_model: 32,
        d_kv: 8,
        d_ff: 64,
        num_layers: 2,
        num_decoder_layers: Some(1),
        num_heads: 4,
        relative_attention_num_buckets: 8,
        relative_attention_max_distance: 20,
        layer_norm_epsilon: 1e-6,
        feed_forward_proj: if gated { "gated-gelu" } else { "relu" }.into(),
        tie_word_embeddings: tied,
        decoder_start_token_id: 0,
    };
    let mut p = Params::fresh(3, &Device::Cpu);
    p.get("shared.weight", &[c.vocab_size, c.d_model], Init::Normal(1.0)).unwrap();
    Stack::new(&mut p, "encoder", &c, false).unwrap();
    Stack::new(&mut p, "decoder", &c, true).unwrap();
    if !tied {
        p.get("lm_head.weight", &[c.vocab_size, c.d_model], Init::Normal(0.2)).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    let tensors: std::collections::HashMap<String, Tensor> = p.named_tensors().into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let mut config = serde_json::to_value(&c).unwrap();
    config["model_type"] = "t5".into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let ids: serde_json::Map<String, serde_json::Value> =
        vocab.iter().enumerate().map(|(i, w)| (w.clone(), i.into())).collect();
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "decoder": null,
        "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
        "model": {"type": "WordLevel", "vocab": ids, "unk_token": "<unk>"}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    c
}

/// 24 captions of two or three words, each with its own voken sequence (N 8, M 2).
fn examples() -> Vec<Example> {
    (0..24u32)
        .map(|i| Example {
            text: format!("w{} w{} w{}", i % 20, (i * 7 + 3) % 20, if i % 2 == 0 { "1" } else { "2" }),
            vector: None,
            vokens: vec![i % 8, (i / 3) % 8, 8 + i / 8],
        })
        .collect()
}

fn generator(dir: &Path, gated: bool, tied: bool) -> Generator {
    generator_with(dir, gated, tied, None)
}

fn generator_with(dir: &Path, gated: bool, tied: bool, vector_dim: Option<usize>) -> Generator {
    write_tiny_t5(dir, gated, tied);
    let codebook = Tensor::from_vec(
        (0..8 * 16).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect::<Vec<_>>(),
        (8, 16),
        &Device::Cpu,
    )
    .unwrap();
    let opts = NewGenerator {
        model_dir: dir,
        codebook_size: 8,
        voken_len: 2,
        codebook: Some(codebook),
        decoder_layers: 1,
        decoder_d_model: 32,
        max_text_tokens: 16,
        seed: 1,
        vector_dim,
    };
    Generator::from_pretrained(&opts, &Device::Cpu).unwrap()
}

fn trie(examples: &[Example]) -> Trie {
    let mut t = Trie::new(3);
    for (i, e) in examples.iter().enumerate() {
        t.insert(&e.vokens, i as u64);
    }
    t
}

/// A distinct vector of width 6 for example `i`.
fn vector_of(i: u32) -> Vec<f32> {
    (0..6u32)
        .map(|k| {
            if k == i % 6 {
                1.0
            } else if k == (i / 6) % 6 {
                -0.5
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn preparing_the_examples_reports_and_can_be_stopped() {
    // Two million attached texts took 37 s before a first progress report, and no host
    // could stop them meanwhile: preparing now reports as it goes.
    let dir = tempfile::tempdir().unwrap();
    let g = generator_with(dir.path(), false, true, None);
    let ex = examples();
    let every = std::time::Duration::ZERO;
    let mut calls = 0;
    let stopped = super::train::prepare(
        &g,
        &ex,
        &mut || {
            calls += 1;
            false
        },
        every,
    );
    assert!(matches!(stopped, Err(crate::Error::Cancelled)) && calls == 1);
    let going = super::train::prepare(&g, &ex, &mut || true, every).unwrap();
    assert_eq!(going.len(), ex.len());
}

#[test]
fn every_parameter_gets_a_gradient() {
    for (gated, tied, vectors) in [(false, true, false), (true, false, false), (false, true, true)] {
        let dir = tempfile::tempdir().unwrap();
        let g = generator_with(dir.path(), gated, tied, vectors.then_some(6));
        let mut ex = examples();
        if vectors {
            ex.iter_mut().enumerate().for_each(|(i, e)| e.vector = Some(vector_of(i as u32)));
        }
        let t = trie(&ex);
        let loss = super::train::step_loss(&g, &ex[..6], &t, 3).unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in g.params.named_tensors() {
            let grad = grads.get(&var).unwrap_or_else(|| panic!("{name} got no gradient"));
            let norm = grad.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            // The embedding rows past the tokenizer's vocabulary are never used.
            assert!(norm > 0.0, "{name} has a zero gradient (gated {gated}, tied {tied})");
        }
    }
}

#[test]
fn a_tiny_t5_learns_to_write_the_vokens_of_its_captions() {
    let dir = tempfile::tempdir().unwrap();
    let g = generator(dir.path(), true, false);
    let ex = examples();
    let t = trie(&ex);
    let cfg =
        GeneratorTrainConfig { epochs: 60, batch_size: 8, learning_rate: 5e-3, beam_size: 3, ..Default::default() };
    let candidates = |g: &Generator, enc: &super::Encoded| beam::sequences(g, (&t).into(), enc, 3);
    let view = g.frozen(None).unwrap();
    let report = train(&g, &ex, &cfg, 0, &candidates, &mut |_| true, &mut |_, _| Ok(())).unwrap();
    assert!(report.loss_gen < 0.5, "L_gen {}", report.loss_gen);
    let texts: Vec<&str> = ex.iter().map(|e| e.text.as_str()).collect();
    let found = beam::search(&g, (&t).into(), &g.encode(&texts, &[]).unwrap(), 5).unwrap();
    let right = found.iter().enumerate().filter(|(i, f)| f[0].id == *i as u64).count();
    assert!(right >= 20, "{right}/24 captions generate their own vokens first");

    // A copy made now, and a view made before training (which followed the optimiser's
    // in-place updates), are detached from the training graph, so they take the
    // inference-only kernels; both find the same.
    for frozen in [g.frozen(Some(SearchWeights::F32)).unwrap(), view] {
        assert!(frozen.named_tensors().unwrap().iter().all(|(_, t)| !t.track_op()));
        let again = beam::search(&frozen, (&t).into(), &frozen.encode(&texts, &[]).unwrap(), 5).unwrap();
        for (a, b) in found.iter().zip(&again) {
            assert_eq!(a.iter().map(|f| f.id).collect::<Vec<_>>(), b.iter().map(|f| f.id).collect::<Vec<_>>());
            assert!(a.iter().zip(b).all(|(x, y)| (x.score - y.score).abs() < 1e-4));
        }
    }
    // Searched through int8 weights, the model ranks the same first image for nearly
    // every caption, with scores close to f32's.
    let int8 = g.frozen(Some(SearchWeights::Int8)).unwrap();
    let again = beam::search(&int8, (&t).into(), &int8.encode(&texts, &[]).unwrap(), 5).unwrap();
    let same = found.iter().zip(&again).filter(|(a, b)| a[0].id == b[0].id).count();
    let drift = found.iter().zip(&again).map(|(a, b)| (a[0].score - b[0].score).abs()).fold(0f32, f32::max);
    eprintln!("int8: {same}/24 first hits agree, largest score change {drift}");
    assert!(same >= 22 && drift < 0.1, "int8: {same}/24 first hits agree, largest score change {drift}");
}

#[test]
fn with_a_vector_slot_examples_without_text_are_learned_from_their_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let g = generator_with(dir.path(), false, true, Some(6));
    // No text at all: only the vector tells the 24 images apart.
    let ex: Vec<Example> = examples()
        .into_iter()
        .enumerate()
        .map(|(i, e)| Example { text: String::new(), vector: Some(vector_of(i as u32)), ..e })
        .collect();
    let t = trie(&ex);
    let cfg =
        GeneratorTrainConfig { epochs: 60, batch_size: 8, learning_rate: 5e-3, beam_size: 3, ..Default::default() };
    let candidates = |g: &Generator, enc: &super::Encoded| beam::sequences(g, (&t).into(), enc, 3);
    train(&g, &ex, &cfg, 0, &candidates, &mut |_| true, &mut |_, _| Ok(())).unwrap();
    let vectors: Vec<Option<&[f32]>> = ex.iter().map(|e| e.vector.as_deref()).collect();
    let texts = vec![""; ex.len()];
    let found = beam::search(&g, (&t).into(), &g.encode(&texts, &vectors).unwrap(), 5).unwrap();
    let right = found.iter().enumerate().filter(|(i, f)| f[0].id == *i as u64).count();
    assert!(right >= 20, "{right}/24 vectors generate their own vokens first");
    // With the slot masked, the generator has nothing to go on.
    let blind = beam::search(&g, (&t).into(), &g.encode(&texts, &[]).unwrap(), 5).unwrap();
    assert!(blind.iter().enumerate().filter(|(i, f)| f[0].id == *i as u64).count() <= 2);
}

/// Where the parity test leaves its checkpoints, for `tests/data/t5_reference.py`.
fn parity_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join("avg-t5-parity").join(name)
}

/// Logits [2, 3, V] over the checkpoint's own vocabulary, teacher-forced, for the inputs
/// of `tests/data/t5-reference-logits.json` (a padded batch of two).
fn reference_inputs_logits(g: &Generator, inputs: &serde_json::Value) -> Vec<f32> {
    let dev = Device::Cpu;
    let rows = |key: &str| -> Vec<Vec<u32>> { serde_json::from_value(inputs[key].clone()).unwrap() };
    let tensor = |v: Vec<Vec<u32>>| Tensor::new(v, &dev).unwrap();
    let (ids, mask, dec) =
        (tensor(rows("input_ids")), tensor(rows("attention_mask")), tensor(rows("decoder_input_ids")));
    let enc = g.encode_ids(&ids, &mask, None, None).unwrap();
    let cross = g.cross_kv(&enc).unwrap();
    let bias = super::t5::padding_bias(&enc.mask).unwrap();
    let hidden = g.decode(&g.embed_tokens(&dec, None).unwrap(), &cross, &bias, &mut super::Cache::default()).unwrap();
    let vocab = g.config.voken_offset as usize;
    let out = g.lm_head.as_ref().unwrap_or(&g.embed).narrow(0, 0, vocab).unwrap();
    g.logits(&hidden, &out, None).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// The reference values were made by the reference implementation (Hugging Face
/// transformers' T5ForConditionalGeneration) from the checkpoints this test writes; see
/// tests/data/t5_reference.py for how.
#[test]
fn logits_match_the_reference_implementation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/t5-reference-logits.json");
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cases = [("relu-tied", false, true), ("gated-untied", true, false)];
    // Both checkpoints first: the script that makes the reference values reads them.
    let models: Vec<Generator> =
        cases.iter().map(|&(name, gated, tied)| generator(&parity_dir(name), gated, tied)).collect();
    for ((name, ..), g) in cases.iter().zip(&models) {
        let ours = reference_inputs_logits(g, &reference["inputs"]);
        let theirs: Vec<f32> = serde_json::from_value(reference[name].clone()).unwrap();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "{name}: logits differ from the reference by up to {worst}");
    }
}
