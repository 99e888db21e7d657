//! Building a generator: from a pretrained checkpoint, or from the tensors an index
//! saved; and the tensors to save.

use super::t5::{Lin, Stack, T5Config};
use super::{Backbone, Encoder, Generator, GeneratorConfig, Learned, SearchWeights, TrainedEpochs};
use crate::encoders::{load_bert, model_config, model_tensors, read, text_tokenizer};
use crate::kernels::small_matmul::Int8Rows;
use crate::params::Params;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

const TEXT_TOKENIZER_TENSOR: &str = "text_tokenizer.json";
/// What the generator learned (`Learned`), stored with the weights as i64, bit for bit:
/// the pairs' fingerprints, and the image ids of a generator saved before pairs were
/// counted.
const LEARNED_PAIRS_TENSOR: &str = "learned_pairs";
const LEARNED_TENSOR: &str = "learned_images";
/// `TrainedEpochs` stored with the weights: [done, planned] as i64.
const EPOCHS_TENSOR: &str = "trained_epochs";
const BERT_PREFIX: &str = "frozen_encoder.";

/// Options for a generator built from a pretrained checkpoint.
pub(crate) struct NewGenerator<'a> {
    pub model_dir: &'a Path,
    pub codebook_size: usize,
    pub voken_len: usize,
    /// The tokenizer's codebook [N, Dc] to start the code embeddings from, or None for
    /// random voken embeddings (the ablation).
    pub codebook: Option<Tensor>,
    pub decoder_layers: usize,
    pub decoder_d_model: usize,
    pub max_text_tokens: usize,
    pub seed: u64,
    pub vector_dim: Option<usize>,
}

/// A checkpoint directory as an error message names it.
fn describe(dir: &Path, raw: &serde_json::Value) -> String {
    let kind = raw.get("model_type").and_then(|v| v.as_str()).unwrap_or("unknown");
    format!("{} (model_type {kind})", dir.display())
}

/// Start of the vector projection: index vectors are about unit length, so unit-variance
/// weights give the slot states of the same scale as the text's.
const VECTOR_PROJ_STD: f32 = 1.0;

impl Generator {
    /// Why a training with `cfg` cannot resume this model, if it cannot: the option
    /// whose value differs from the model's (a resume trains the shape it started).
    /// `model_dir` is compared by its `config.json` when it can be read.
    pub(crate) fn resume_mismatch(&self, cfg: &super::GeneratorTrainConfig) -> Option<String> {
        let c = &self.config;
        let mut differ: Vec<(&str, String, String)> = vec![
            ("max_text_tokens", c.max_text_tokens.to_string(), cfg.max_text_tokens.to_string()),
            ("index_vectors", c.vector_dim.is_some().to_string(), cfg.index_vectors.to_string()),
        ];
        let theirs = model_config(&cfg.model_dir).ok();
        match &c.backbone {
            Backbone::Bert { bert, decoder } => {
                differ.push(("decoder_layers", decoder.num_layers.to_string(), cfg.decoder_layers.to_string()));
                differ.push(("decoder_d_model", decoder.d_model.to_string(), cfg.decoder_d_model.to_string()));
                if let Some(raw) = theirs.filter(|raw| raw != bert) {
                    differ.push(("model_dir", "another checkpoint".into(), describe(&cfg.model_dir, &raw)));
                }
            }
            Backbone::T5 { t5 } => {
                let same = |raw: &serde_json::Value| {
                    serde_json::from_value::<T5Config>(raw.clone()).is_ok_and(|mut theirs| {
                        theirs.vocab_size = t5.vocab_size;
                        &theirs == t5
                    })
                };
                if let Some(raw) = theirs.filter(|raw| !same(raw)) {
                    differ.push(("model_dir", "another checkpoint".into(), describe(&cfg.model_dir, &raw)));
                }
            }
        }
        differ.into_iter().find(|(_, mine, theirs)| mine != theirs).map(|(field, mine, theirs)| {
            format!("resume: {field} is {theirs}, the training being resumed has {mine}; resume with its value, or train anew")
        })
    }

    /// Builds a generator on a pretrained checkpoint directory (`config.json`,
    /// `tokenizer.json`, `model.safetensors`); the backbone follows `model_type`.
    pub(crate) fn from_pretrained(o: &NewGenerator, device: &Device) -> Result<Self> {
        let config_path = o.model_dir.join("config.json");
        let raw = model_config(o.model_dir)?;
        let tokenizer_json = read(&o.model_dir.join("tokenizer.json"))?;
        let weights = model_tensors(o.model_dir, device)?;
        let mut rng = Rng::new(o.seed ^ 0x5eed);
        match raw.get("model_type").and_then(|v| v.as_str()) {
            Some("t5") => {
                let t5 = serde_json::from_value(raw).map_err(|e| Error::corrupt(&config_path, e.to_string()))?;
                Self::from_t5(o, t5, weights, tokenizer_json, &mut rng, device)
            }
            Some("bert") => Self::from_bert(o, raw, weights, tokenizer_json, &mut rng, device),
            other => Err(Error::InvalidArgument(format!(
                "{}: model_type {other:?} is not supported (expected \"t5\" or \"bert\")",
                config_path.display()
            ))),
        }
    }

    /// A T5 trained whole: its vocabulary extended by the 2N vokens, whose embedding
    /// rows start from the codebook at the scale of the text tokens' rows.
    fn from_t5(
        o: &NewGenerator,
        t5: T5Config,
        mut weights: HashMap<String, Tensor>,
        tokenizer_json: Vec<u8>,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let offset = t5.vocab_size as u32;
        let mut ext = t5.clone();
        ext.vocab_size += 2 * o.codebook_size;
        for name in ["shared.weight", "lm_head.weight"] {
            if name == "lm_head.weight" && t5.tie_word_embeddings {
                continue;
            }
            let w = weights.remove(name).ok_or_else(|| Error::Model(format!("checkpoint lacks {name}")))?;
            let w = w.to_dtype(DType::F32)?;
            let rms = w.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
            let rows = voken_rows(o.codebook.as_ref(), o.codebook_size, t5.d_model, rms, rng, device)?;
            weights.insert(name.into(), Tensor::cat(&[&w, &rows], 0)?);
        }
        if let Some(dim) = o.vector_dim {
            let w = Tensor::from_vec(rng.normals(t5.d_model * dim, VECTOR_PROJ_STD), (t5.d_model, dim), device)?;
            weights.insert("vector_proj.weight".into(), w);
        }
        let config = GeneratorConfig {
            start_token: t5.decoder_start_token_id,
            backbone: Backbone::T5 { t5: ext },
            codebook_size: o.codebook_size,
            voken_len: o.voken_len,
            voken_offset: offset,
            pad_token: 0,
            max_text_tokens: o.max_text_tokens,
            vector_dim: o.vector_dim,
        };
        Self::build(config, Params::stored(weights, device), HashMap::new(), tokenizer_json)
    }

    /// A frozen BERT-family sentence encoder in front of a small voken decoder that
    /// trains, whose code embeddings start from the codebook.
    fn from_bert(
        o: &NewGenerator,
        raw: serde_json::Value,
        weights: HashMap<String, Tensor>,
        tokenizer_json: Vec<u8>,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let n2 = 2 * o.codebook_size;
        let heads = (o.decoder_d_model / 64).max(1);
        let decoder = T5Config {
            vocab_size: n2 + 1,
            d_model: o.decoder_d_model,
            d_kv: o.decoder_d_model / heads,
            d_ff: 4 * o.decoder_d_model,
            num_layers: o.decoder_layers,
            num_decoder_layers: None,
            num_heads: heads,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "relu".into(),
            tie_word_embeddings: true,
            decoder_start_token_id: n2 as u32,
        };
        let pad = raw.get("pad_token_id").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        let config = GeneratorConfig {
            backbone: Backbone::Bert { bert: raw, decoder },
            codebook_size: o.codebook_size,
            voken_len: o.voken_len,
            voken_offset: 0,
            start_token: n2 as u32,
            pad_token: pad,
            max_text_tokens: o.max_text_tokens,
            vector_dim: o.vector_dim,
        };
        let g = Self::build(config, Params::fresh(o.seed, device), weights, tokenizer_json)?;
        let rows = voken_rows(o.codebook.as_ref(), o.codebook_size, o.decoder_d_model, 1.0, rng, device)?;
        let start = Tensor::from_vec(rng.normals(o.decoder_d_model, 1.0), (1, o.decoder_d_model), device)?;
        g.params.var("shared.weight").expect("embedding").set(&Tensor::cat(&[&rows, &start], 0)?)?;
        Ok(g)
    }

    /// A generator read back from the index, for search (its parameters are frozen and
    /// kept as `weights` says).
    pub(crate) fn from_saved(
        config: GeneratorConfig,
        tensors: HashMap<String, Tensor>,
        device: &Device,
        weights: SearchWeights,
    ) -> Result<Self> {
        Self::from_tensors(config, tensors, device, Some(weights))
    }

    /// A trainable copy, to learn more (an indexing pass) without touching `self`.
    pub(crate) fn trainable_copy(&self) -> Result<Self> {
        let tensors =
            self.named_tensors()?.into_iter().map(|(n, t)| Ok((n, t.detach().copy()?))).collect::<Result<_>>()?;
        Self::from_tensors(self.config.clone(), tensors, self.device(), None)
    }

    /// Frozen for search with `search` weights, or trainable (`None`).
    fn from_tensors(
        config: GeneratorConfig,
        mut tensors: HashMap<String, Tensor>,
        device: &Device,
        search: Option<SearchWeights>,
    ) -> Result<Self> {
        let json = tensors
            .remove(TEXT_TOKENIZER_TENSOR)
            .ok_or_else(|| Error::Model("saved generator lacks its text tokenizer".into()))?;
        let json = json.to_dtype(DType::U8)?.to_vec1::<u8>()?;
        // Generators saved before indexing passes existed name nothing learned.
        let mut u64s = |name: &str| -> Result<Vec<u64>> {
            match tensors.remove(name) {
                Some(t) => Ok(t.to_dtype(DType::I64)?.to_vec1::<i64>()?.into_iter().map(|x| x as u64).collect()),
                None => Ok(Vec::new()),
            }
        };
        let learned = Learned { pairs: u64s(LEARNED_PAIRS_TENSOR)?, images: u64s(LEARNED_TENSOR)? };
        // Generators saved before resuming existed count as finished.
        let epochs =
            match tensors.remove(EPOCHS_TENSOR).map(|t| t.to_dtype(DType::I64)?.to_vec1::<i64>()).transpose()? {
                Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 0) && v[0] <= v[1] => {
                    TrainedEpochs { done: v[0] as usize, planned: v[1] as usize }
                }
                Some(v) => return Err(Error::Model(format!("saved generator: trained epochs {v:?}"))),
                None => TrainedEpochs::default(),
            };
        let (frozen, trained): (HashMap<_, _>, HashMap<_, _>) =
            tensors.into_iter().partition(|(n, _)| n.starts_with(BERT_PREFIX));
        let frozen = frozen.into_iter().map(|(n, t)| (n[BERT_PREFIX.len()..].to_owned(), t)).collect();
        let params = match search {
            Some(w) => Params::frozen(trained, device, w),
            None => Params::stored(trained, device),
        };
        let mut g = Self::build(config, params, frozen, json)?;
        g.learned = learned;
        g.epochs = epochs;
        Ok(g)
    }

    fn build(
        config: GeneratorConfig,
        mut p: Params,
        frozen: HashMap<String, Tensor>,
        text_tokenizer_json: Vec<u8>,
    ) -> Result<Self> {
        let text_tokenizer = text_tokenizer(&text_tokenizer_json, config.max_text_tokens)?;
        let device = p.device().clone();
        let (encoder, dc) = match &config.backbone {
            Backbone::T5 { t5 } => (Encoder::T5(Stack::new(&mut p, "encoder", t5, false)?), t5.clone()),
            Backbone::Bert { bert, decoder } => {
                let weights: Vec<(String, Tensor)> = frozen.into_iter().collect();
                let (model, bc) = load_bert(bert.clone(), weights.iter().cloned().collect(), &device)?;
                let proj = Lin::new(
                    &mut p,
                    "encoder_proj",
                    bc.hidden_size,
                    decoder.d_model,
                    (bc.hidden_size as f32).powf(-0.5),
                )?;
                (Encoder::Bert { model: Box::new(model), weights, proj }, decoder.clone())
            }
        };
        let embed = p.get("shared.weight", &[dc.vocab_size, dc.d_model], crate::params::Init::Normal(1.0))?;
        let decoder = Stack::new(&mut p, "decoder", &dc, true)?;
        let lm_head = if dc.tie_word_embeddings {
            None
        } else {
            let std = (dc.d_model as f32).powf(-0.5);
            Some(p.get("lm_head.weight", &[dc.vocab_size, dc.d_model], crate::params::Init::Normal(std))?)
        };
        // Created last, so that a text-only generator draws the same initial weights.
        let vector_proj =
            config.vector_dim.map(|d| Lin::new(&mut p, "vector_proj", d, dc.d_model, VECTOR_PROJ_STD)).transpose()?;
        let mut g = Generator {
            d_model: dc.d_model,
            config,
            params: p,
            text_tokenizer,
            text_tokenizer_json,
            encoder,
            embed,
            lm_head,
            decoder,
            vector_proj,
            output_int8: None,
            learned: Learned::default(),
            epochs: TrainedEpochs::default(),
        };
        if g.params.int8() {
            g.output_int8 = Int8Rows::new(&g.output_rows(None)?)?;
        }
        Ok(g)
    }

    /// Everything needed to rebuild the generator without the original checkpoint.
    pub(crate) fn named_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = self.params.named_tensors();
        if let Encoder::Bert { weights, .. } = &self.encoder {
            out.extend(weights.iter().map(|(n, t)| (format!("{BERT_PREFIX}{n}"), t.clone())));
        }
        out.push((
            TEXT_TOKENIZER_TENSOR.into(),
            Tensor::new(self.text_tokenizer_json.as_slice(), self.embed.device())?,
        ));
        for (name, values) in [(LEARNED_PAIRS_TENSOR, &self.learned.pairs), (LEARNED_TENSOR, &self.learned.images)] {
            let v: Vec<i64> = values.iter().map(|&x| x as i64).collect();
            out.push((name.into(), Tensor::from_vec(v, values.len(), &Device::Cpu)?));
        }
        let epochs = vec![self.epochs.done as i64, self.epochs.planned as i64];
        out.push((EPOCHS_TENSOR.into(), Tensor::from_vec(epochs, 2, &Device::Cpu)?));
        Ok(out)
    }

    /// The same model for search only: plain tensors with no link to the training graph,
    /// so that searching records no backprop graph and takes the inference kernels. With
    /// `snapshot` it owns a copy of the weights kept as it says (to answer searches while
    /// training goes on); without, it sees the training weights (f32) as the optimiser
    /// updates them in place.
    pub(crate) fn frozen(&self, snapshot: Option<SearchWeights>) -> Result<Self> {
        let tensors = self
            .named_tensors()?
            .into_iter()
            .map(|(n, t)| Ok((n, if snapshot.is_some() { t.detach().copy()? } else { t.detach() })))
            .collect::<Result<_>>()?;
        Self::from_saved(self.config.clone(), tensors, self.device(), snapshot.unwrap_or(SearchWeights::F32))
    }
}

/// Starting rows for the N code tokens (from the codebook, projected to `d` and scaled
/// to RMS `rms`, or random) followed by N random disambiguator rows: [2N, d].
fn voken_rows(
    codebook: Option<&Tensor>,
    n: usize,
    d: usize,
    rms: f32,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let codes = match codebook {
        Some(c) => {
            let dc = c.dim(1)?;
            let c = if dc == d {
                c.clone()
            } else {
                c.matmul(&Tensor::from_vec(rng.normals(dc * d, (dc as f32).powf(-0.5)), (dc, d), device)?)?
            };
            let cur = c.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?.max(1e-12);
            (c * (rms / cur) as f64)?
        }
        None => Tensor::from_vec(rng.normals(n * d, rms), (n, d), device)?,
    };
    let suffixes = Tensor::from_vec(rng.normals(n * d, rms), (n, d), device)?;
    Ok(Tensor::cat(&[&codes, &suffixes], 0)?)
}
