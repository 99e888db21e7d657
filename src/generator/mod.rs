//! The token-to-voken generator (paper section 3.2): reads a caption, writes the M+1
//! vokens of its image. One `Generator` over two backbones:
//! - `t5`: a Hugging Face T5 checkpoint whose vocabulary is extended by the 2N voken
//!   tokens (N codes, N disambiguators), trained end to end;
//! - `bert`: a frozen BERT-family sentence encoder (such as all-MiniLM-L6-v2) in front of
//!   a T5-style voken decoder trained from scratch, whose vocabulary is the vokens alone.
//!
//! Vokens are numbered locally 0..2N (code c at levels below M is c, disambiguator s is
//! N + s); decoder token id = `voken_offset` + local number. Logits are only ever
//! computed over voken rows: generation is always constrained to vokens.

mod decoding;
mod small_matmul;
pub(crate) mod t5;
#[cfg(test)]
mod tests;
mod train;

pub(crate) use decoding::Decoding;
pub(crate) use train::{train, Example};
pub use train::{GeneratorReport, GeneratorTrainConfig};

/// How a generator that answers searches keeps its weights on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchWeights {
    /// As trained (f32).
    F32,
    /// Also as int8 with one scale per output row, which the search steps read: a
    /// quarter of the bytes of f32 (0.76-0.86 of f32's search time on 2 AVX2 cores,
    /// where the kernel is bound more by arithmetic than by reading). Takes a quarter
    /// more memory for the model (the f32 weights stay for training further).
    /// Where the CPU lacks AVX2 and FMA, or on a GPU, searches use the f32 weights.
    #[default]
    Int8,
}

use crate::encoders::{load_bert, model_config, model_tensors, read, text_tokenizer, tokenize};
use crate::optim::Gathered;
use crate::params::Params;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::BertModel;
use serde::{Deserialize, Serialize};
use small_matmul::Int8Rows;
use std::collections::HashMap;
use std::path::Path;
use t5::{Cache, Kv, Lin, Stack, T5Config};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "backbone", rename_all = "lowercase")]
pub(crate) enum Backbone {
    T5 { t5: T5Config },
    Bert { bert: serde_json::Value, decoder: T5Config },
}

/// The architecture of a generator, stored with its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GeneratorConfig {
    #[serde(flatten)]
    pub backbone: Backbone,
    pub codebook_size: usize,
    pub levels: usize,
    pub voken_offset: u32,
    pub start_token: u32,
    pub pad_token: u32,
    pub max_text_tokens: usize,
    /// Width of the vectors that enter the encoder output as one extra memory slot (the
    /// image vector of a pseudo-query, the text vector of a caption or query); `None`
    /// for a generator that reads text only.
    #[serde(default)]
    pub vector_dim: Option<usize>,
}

enum Encoder {
    T5(Stack),
    /// Frozen; its weights are kept only to be saved with the index. Boxed: the model
    /// is several times the size of a T5 stack's handle.
    Bert {
        model: Box<BertModel>,
        weights: Vec<(String, Tensor)>,
        proj: Lin,
    },
}

pub(crate) struct Generator {
    pub config: GeneratorConfig,
    params: Params,
    tokenizer: tokenizers::Tokenizer,
    tokenizer_json: Vec<u8>,
    encoder: Encoder,
    /// Decoder input embeddings (shared with the T5 encoder), [V, D].
    embed: Tensor,
    /// Untied output rows [V, D] (T5 v1.1); only ever read through `output_rows`.
    lm_head: Option<Tensor>,
    decoder: Stack,
    d_model: usize,
    /// Projects a vector into the memory slot (see `GeneratorConfig::vector_dim`).
    vector_proj: Option<Lin>,
    /// The int8 copy of `output_rows(None)`, for `SearchWeights::Int8`.
    output_int8: Option<Int8Rows>,
    /// See `learned`.
    learned: Vec<u64>,
    /// See `epochs`.
    epochs: TrainedEpochs,
}

/// How far the training that made a generator got: `done` of `planned` epochs. A
/// training cut short (killed, cancelled) can resume from there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TrainedEpochs {
    pub done: usize,
    pub planned: usize,
}

/// An encoded batch of texts: states [B, S, D] and their 0/1 mask [B, S].
pub(crate) struct Encoded {
    pub states: Tensor,
    pub mask: Tensor,
}

/// The rows of the embedding tables one training step reads, gathered so that their
/// gradient stays small (see `optim::Gathered`): the start token, every voken row and,
/// for t5, the step's caption tokens; and the voken rows of an untied output head.
/// Functions that take `Option<&StepRows>` read from it in training and from the
/// tables themselves (`None`) otherwise.
pub(crate) struct StepRows {
    embed: Gathered,
    head: Option<Gathered>,
}

impl StepRows {
    fn gathered(&self) -> impl Iterator<Item = &Gathered> {
        std::iter::once(&self.embed).chain(&self.head)
    }
}

const TOKENIZER_TENSOR: &str = "text_tokenizer.json";
/// The learned image ids, stored with the weights (as i64, bit for bit).
const LEARNED_TENSOR: &str = "learned_images";
/// `TrainedEpochs` stored with the weights: [done, planned] as i64.
const EPOCHS_TENSOR: &str = "trained_epochs";
const BERT_PREFIX: &str = "frozen_encoder.";

/// Options for a generator built from a pretrained checkpoint.
pub(crate) struct NewGenerator<'a> {
    pub model_dir: &'a Path,
    pub codebook_size: usize,
    pub levels: usize,
    /// The tokenizer's codebook [N, Dc] to start the code embeddings from, or None for
    /// random voken embeddings (the ablation).
    pub codebook: Option<Tensor>,
    pub decoder_layers: usize,
    pub decoder_d_model: usize,
    pub max_text_tokens: usize,
    pub seed: u64,
    pub vector_dim: Option<usize>,
}

/// Start of the vector projection: index vectors are about unit length, so unit-variance
/// weights give the slot states of the same scale as the text's.
const VECTOR_PROJ_STD: f32 = 1.0;

impl Generator {
    /// Builds a generator on a pretrained checkpoint directory (`config.json`,
    /// `tokenizer.json`, `model.safetensors`); the backbone follows `model_type`.
    pub(crate) fn from_pretrained(o: &NewGenerator, device: &Device) -> Result<Self> {
        let config_path = o.model_dir.join("config.json");
        let raw = model_config(o.model_dir)?;
        let tokenizer_json = read(&o.model_dir.join("tokenizer.json"))?;
        let weights = model_tensors(o.model_dir, device)?;
        let n2 = 2 * o.codebook_size;
        let mut rng = Rng::new(o.seed ^ 0x5eed);
        match raw.get("model_type").and_then(|v| v.as_str()) {
            Some("t5") => {
                let t5: T5Config =
                    serde_json::from_value(raw).map_err(|e| Error::corrupt(&config_path, e.to_string()))?;
                let mut weights = weights;
                let offset = t5.vocab_size as u32;
                let mut ext = t5.clone();
                ext.vocab_size += n2;
                for name in ["shared.weight", "lm_head.weight"] {
                    if name == "lm_head.weight" && t5.tie_word_embeddings {
                        continue;
                    }
                    let w = weights.remove(name).ok_or_else(|| Error::Model(format!("checkpoint lacks {name}")))?;
                    let w = w.to_dtype(DType::F32)?;
                    let rms = w.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
                    let rows = voken_rows(o.codebook.as_ref(), o.codebook_size, t5.d_model, rms, &mut rng, device)?;
                    weights.insert(name.into(), Tensor::cat(&[&w, &rows], 0)?);
                }
                if let Some(dim) = o.vector_dim {
                    let w =
                        Tensor::from_vec(rng.normals(t5.d_model * dim, VECTOR_PROJ_STD), (t5.d_model, dim), device)?;
                    weights.insert("vector_proj.weight".into(), w);
                }
                let config = GeneratorConfig {
                    start_token: t5.decoder_start_token_id,
                    backbone: Backbone::T5 { t5: ext },
                    codebook_size: o.codebook_size,
                    levels: o.levels,
                    voken_offset: offset,
                    pad_token: 0,
                    max_text_tokens: o.max_text_tokens,
                    vector_dim: o.vector_dim,
                };
                Self::build(config, Params::stored(weights, device), HashMap::new(), tokenizer_json)
            }
            Some("bert") => {
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
                    levels: o.levels,
                    voken_offset: 0,
                    start_token: n2 as u32,
                    pad_token: pad,
                    max_text_tokens: o.max_text_tokens,
                    vector_dim: o.vector_dim,
                };
                let g = Self::build(config, Params::fresh(o.seed, device), weights, tokenizer_json)?;
                let rows = voken_rows(o.codebook.as_ref(), o.codebook_size, o.decoder_d_model, 1.0, &mut rng, device)?;
                let start = Tensor::from_vec(rng.normals(o.decoder_d_model, 1.0), (1, o.decoder_d_model), device)?;
                g.params.var("shared.weight").expect("embedding").set(&Tensor::cat(&[&rows, &start], 0)?)?;
                Ok(g)
            }
            other => Err(Error::InvalidArgument(format!(
                "{}: model_type {other:?} is not supported (expected \"t5\" or \"bert\")",
                config_path.display()
            ))),
        }
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
            .remove(TOKENIZER_TENSOR)
            .ok_or_else(|| Error::Model("saved generator lacks its tokenizer".into()))?;
        let json = json.to_dtype(DType::U8)?.to_vec1::<u8>()?;
        // Generators saved before indexing passes existed name no learned images.
        let learned = match tensors.remove(LEARNED_TENSOR) {
            Some(t) => t.to_dtype(DType::I64)?.to_vec1::<i64>()?.into_iter().map(|x| x as u64).collect(),
            None => Vec::new(),
        };
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

    /// How far the training that made this generator got.
    pub(crate) fn epochs(&self) -> TrainedEpochs {
        self.epochs
    }

    pub(crate) fn set_epochs(&mut self, epochs: TrainedEpochs) {
        self.epochs = epochs;
    }

    /// The ids of the images whose pairs this generator was trained on (sorted).
    pub(crate) fn learned(&self) -> &[u64] {
        &self.learned
    }

    pub(crate) fn set_learned(&mut self, mut ids: Vec<u64>) {
        ids.sort_unstable();
        ids.dedup();
        self.learned = ids;
    }

    fn build(
        config: GeneratorConfig,
        mut p: Params,
        frozen: HashMap<String, Tensor>,
        tokenizer_json: Vec<u8>,
    ) -> Result<Self> {
        let tokenizer = text_tokenizer(&tokenizer_json, config.max_text_tokens)?;
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
            tokenizer,
            tokenizer_json,
            encoder,
            embed,
            lm_head,
            decoder,
            vector_proj,
            output_int8: None,
            learned: Vec::new(),
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
        out.push((TOKENIZER_TENSOR.into(), Tensor::new(self.tokenizer_json.as_slice(), self.embed.device())?));
        let learned: Vec<i64> = self.learned.iter().map(|&id| id as i64).collect();
        out.push((LEARNED_TENSOR.into(), Tensor::from_vec(learned, self.learned.len(), &Device::Cpu)?));
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

    fn trainable(&self) -> Vec<candle_core::Var> {
        self.params.vars()
    }

    fn device(&self) -> &Device {
        self.params.device()
    }

    /// Token ids of `texts`, padded: ids and 0/1 mask, [B, S].
    fn tokenize(&self, texts: &[&str]) -> Result<(Tensor, Tensor)> {
        tokenize(&self.tokenizer, texts, self.config.pad_token, self.device())
    }

    /// The frozen part of encoding (BERT's states, [B, S, H]); `None` for T5, whose
    /// encoder trains.
    fn frozen_states(&self, ids: &Tensor, mask: &Tensor) -> Result<Option<Tensor>> {
        match &self.encoder {
            Encoder::T5(_) => Ok(None),
            Encoder::Bert { model, .. } => Ok(Some(model.forward(ids, &ids.zeros_like()?, Some(mask))?.detach())),
        }
    }

    /// The gathered rows of a training step whose captions have token ids `text_ids`.
    fn step_rows(&self, text_ids: &[u32]) -> Result<StepRows> {
        let c = &self.config;
        let vokens = c.voken_offset..c.voken_offset + 2 * c.codebook_size as u32;
        // A BERT encoder's token ids are not rows of the decoder's table.
        let text = if matches!(self.encoder, Encoder::T5(_)) { text_ids } else { &[] };
        let rows = text.iter().copied().chain([c.start_token]).chain(vokens.clone()).collect();
        let var =
            |name: &str| self.params.var(name).ok_or_else(|| Error::WrongState(format!("{name} is not trainable")));
        let head = match self.lm_head {
            Some(_) => Some(Gathered::new(var("lm_head.weight")?, vokens.collect())?),
            None => None,
        };
        Ok(StepRows { embed: Gathered::new(var("shared.weight")?, rows)?, head })
    }

    /// Encoder states [B, S, D]; `frozen` is what `frozen_states` gave for these ids.
    fn encode_ids(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        frozen: Option<&Tensor>,
        rows: Option<&StepRows>,
    ) -> Result<Encoded> {
        let states = match (&self.encoder, frozen) {
            (Encoder::T5(stack), _) => stack.encode(&self.embed_tokens(ids, rows)?, mask)?,
            (Encoder::Bert { proj, .. }, Some(f)) => proj.forward(f)?,
            (Encoder::Bert { proj, .. }, None) => proj.forward(&self.frozen_states(ids, mask)?.expect("bert"))?,
        };
        Ok(Encoded { states, mask: mask.clone() })
    }

    /// Encoded queries: texts and, for a generator that reads vectors, each query's
    /// vector (`None`: its slot is masked out).
    pub(crate) fn encode(&self, texts: &[&str], vectors: &[Option<&[f32]>]) -> Result<Encoded> {
        let (ids, mask) = self.tokenize(texts)?;
        self.with_vectors(self.encode_ids(&ids, &mask, None, None)?, vectors)
    }

    pub(crate) fn reads_vectors(&self) -> bool {
        self.vector_proj.is_some()
    }

    /// Puts each row's vector in front of its encoder states as one more memory slot
    /// (masked where the row has none). A text-only generator returns `enc` as it is.
    fn with_vectors(&self, enc: Encoded, vectors: &[Option<&[f32]>]) -> Result<Encoded> {
        let (Some(proj), Some(dim)) = (&self.vector_proj, self.config.vector_dim) else { return Ok(enc) };
        let b = enc.states.dim(0)?;
        let mut flat = vec![0f32; b * dim];
        let mut present = vec![0u32; b];
        for (i, v) in vectors.iter().enumerate().take(b) {
            if let Some(v) = v {
                if v.len() != dim {
                    return Err(Error::DimensionMismatch { expected: dim, got: v.len() });
                }
                flat[i * dim..(i + 1) * dim].copy_from_slice(v);
                present[i] = 1;
            }
        }
        let d = self.device();
        let slot = proj.forward(&Tensor::from_vec(flat, (b, dim), d)?)?.unsqueeze(1)?;
        let present = Tensor::from_vec(present, (b, 1), d)?.to_dtype(enc.mask.dtype())?;
        Ok(Encoded { states: Tensor::cat(&[&slot, &enc.states], 1)?, mask: Tensor::cat(&[&present, &enc.mask], 1)? })
    }

    fn embed_tokens(&self, ids: &Tensor, rows: Option<&StepRows>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let flat = ids.flatten_all()?;
        let e = match rows {
            Some(r) => r.embed.select(&flat.to_vec1::<u32>()?)?,
            None => self.embed.index_select(&flat, 0)?,
        };
        Ok(e.reshape((b, t, self.d_model))?)
    }

    /// Teacher-forcing inputs for voken sequences (local numbers, all of one length):
    /// the start token, then all but the last voken, as embeddings [B, T, D].
    fn decoder_inputs(&self, seqs: &[Vec<u32>], rows: Option<&StepRows>) -> Result<Tensor> {
        let t = seqs.first().map_or(0, Vec::len);
        let ids: Vec<u32> = seqs
            .iter()
            .flat_map(|s| {
                std::iter::once(self.config.start_token).chain(s[..t - 1].iter().map(|&v| self.token_of_local(v)))
            })
            .collect();
        self.embed_tokens(&Tensor::from_vec(ids, (seqs.len(), t), self.device())?, rows)
    }

    /// The output rows of the 2N vokens: [2N, D].
    fn output_rows(&self, rows: Option<&StepRows>) -> Result<Tensor> {
        let (off, n) = (self.config.voken_offset, 2 * self.config.codebook_size);
        Ok(match (rows, &self.lm_head) {
            (Some(r), _) => r.head.as_ref().unwrap_or(&r.embed).range(off, n)?,
            (None, Some(l)) => l.narrow(0, off as usize, n)?,
            (None, None) => self.embed.narrow(0, off as usize, n)?,
        })
    }

    /// Logits of decoder states [.., D] against output rows [R, D]: [.., R], read from
    /// `int8` where given (the int8 copy of `rows`). Tied embeddings scale the states by
    /// d_model^-1/2, as the reference T5 does.
    fn logits(&self, hidden: &Tensor, rows: &Tensor, int8: Option<&Int8Rows>) -> Result<Tensor> {
        let h = if self.lm_head.is_none() { (hidden * (self.d_model as f64).powf(-0.5))? } else { hidden.clone() };
        small_matmul::matmul_nt(&h, rows, int8)
    }

    fn cross_kv(&self, enc: &Encoded) -> Result<Vec<Kv>> {
        self.decoder.cross_kv(&enc.states)
    }

    /// Decoder states for embedded inputs at the cache's next positions.
    fn decode(&self, inputs: &Tensor, cross: &[Kv], cross_bias: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        self.decoder.decode(inputs, cross, cross_bias, cache)
    }

    /// Embedding of one decoder input token per row: the start token, or a voken.
    fn embed_step(&self, tokens: &[u32]) -> Result<Tensor> {
        let ids = Tensor::from_slice(tokens, (tokens.len(), 1), self.device())?;
        self.embed_tokens(&ids, None)
    }

    fn token_of_local(&self, local: u32) -> u32 {
        self.config.voken_offset + local
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
