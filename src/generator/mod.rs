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

pub(crate) mod beam;
mod config;
mod decoding;
mod load;
mod loss;
pub(crate) mod t5;
#[cfg(test)]
mod tests;
mod train;

pub use config::{GeneratorReport, GeneratorTrainConfig};
pub(crate) use decoding::Decoding;
pub(crate) use load::NewGenerator;
pub(crate) use train::{train, Example};

use crate::encoders::tokenize;
use crate::kernels::small_matmul::{self, Int8Rows};
use crate::optim::Gathered;
use crate::params::Params;
pub(crate) use crate::params::SearchWeights;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_transformers::models::bert::BertModel;
use serde::{Deserialize, Serialize};
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
    /// M. Stored as `levels`, the name libavg's earlier releases read.
    #[serde(rename = "levels")]
    pub voken_len: usize,
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
    text_tokenizer: tokenizers::Tokenizer,
    text_tokenizer_json: Vec<u8>,
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
    learned: Learned,
    /// See `epochs`.
    epochs: TrainedEpochs,
}

/// What a generator was trained on, so that an indexing pass learns every pair it has
/// not (a new image's, a changed image's, a text attached since): the fingerprints of
/// the pairs it learned, sorted, and for a generator saved before pairs were counted, the
/// ids of the images it learned (every pair of those counts as learned until a pass).
#[derive(Debug, Clone, Default)]
pub(crate) struct Learned {
    pub pairs: Vec<u64>,
    pub images: Vec<u64>,
}

impl Learned {
    pub(crate) fn knows(&self, pair: u64, image: u64) -> bool {
        self.pairs.binary_search(&pair).is_ok() || self.images.binary_search(&image).is_ok()
    }
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

impl Generator {
    /// How far the training that made this generator got.
    pub(crate) fn epochs(&self) -> TrainedEpochs {
        self.epochs
    }

    pub(crate) fn set_epochs(&mut self, epochs: TrainedEpochs) {
        self.epochs = epochs;
    }

    /// What this generator was trained on.
    pub(crate) fn learned(&self) -> &Learned {
        &self.learned
    }

    /// Records the fingerprints of the pairs learned (see [`Example::fingerprint`]).
    pub(crate) fn set_learned(&mut self, mut pairs: Vec<u64>) {
        pairs.sort_unstable();
        pairs.dedup();
        self.learned = Learned { pairs, images: Vec::new() };
    }

    fn trainable(&self) -> Vec<candle_core::Var> {
        self.params.vars()
    }

    fn device(&self) -> &Device {
        self.params.device()
    }

    /// Token ids of `texts`, padded: ids and 0/1 mask, [B, S].
    fn tokenize(&self, texts: &[&str]) -> Result<(Tensor, Tensor)> {
        tokenize(&self.text_tokenizer, texts, self.config.pad_token, self.device())
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
