//! The cross-modal aligned image tokenizer: a residual quantiser that turns an image
//! vector into M codes from a codebook of N (paper section 3.1).
//!
//! x -> encoder -> z; for each level l: code_l = nearest codebook row to the residual
//! z - (q_1 + .. + q_{l-1}); the quantised sum reaches the decoder through a
//! straight-through estimator; the decoder reconstructs x (and, for alignment, the
//! caption vector). The paper quantises x itself; with straight-through gradients the
//! codebook would then never feel the alignment loss, so a small residual encoder
//! (initialised near the identity) sits in front and carries it.

mod codebooks;
mod kmeans;
mod prior;
mod train;

pub(crate) use codebooks::{Codebooks, Residual};
pub(crate) use prior::Prior;
pub(crate) use train::{train, TrainingSet};
pub use train::{TokenizerReport, TokenizerTrainConfig};

use crate::params::{Init, Params};

use crate::Result;
use candle_core::{Device, Tensor};
use candle_nn::{Linear, Module};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The architecture of a tokenizer, stored with its weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QuantizerConfig {
    pub dim: usize,
    pub codebook_size: usize,
    /// M. Stored as `levels`, the name libavg's earlier releases read.
    #[serde(rename = "levels")]
    pub voken_len: usize,
    pub shared_codebook: bool,
    pub hidden: usize,
}

/// z = x + W2 relu(W1 x).
struct ResidualMlp {
    up: Linear,
    down: Linear,
}

impl ResidualMlp {
    fn new(p: &mut Params, name: &str, dim: usize, hidden: usize) -> Result<Self> {
        Ok(ResidualMlp {
            up: p.linear(&format!("{name}.up"), dim, hidden, None)?,
            // Small output weights: the encoder starts close to the identity, so k-means
            // on the raw vectors is a good codebook start.
            down: p.linear(&format!("{name}.down"), hidden, dim, Some(0.01 / (hidden as f32).sqrt()))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok((x + self.down.forward(&self.up.forward(x)?.relu()?)?)?)
    }
}

/// dim -> hidden -> hidden/2 -> dim, as the reference decoder.
struct Decoder {
    layers: [Linear; 3],
}

impl Decoder {
    fn new(p: &mut Params, dim: usize, hidden: usize) -> Result<Self> {
        let mid = (hidden / 2).max(1);
        Ok(Decoder {
            layers: [
                p.linear("decoder.0", dim, hidden, None)?,
                p.linear("decoder.1", hidden, mid, None)?,
                p.linear("decoder.2", mid, dim, None)?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.layers[0].forward(x)?.relu()?;
        let h = self.layers[1].forward(&h)?.relu()?;
        Ok(self.layers[2].forward(&h)?)
    }
}

pub(crate) struct Quantizer {
    pub config: QuantizerConfig,
    params: Params,
    encoder: ResidualMlp,
    codebooks: Vec<Tensor>,
    decoder: Decoder,
    /// See `host_codebooks`.
    host_codebooks: OnceLock<Codebooks>,
}

/// What one training forward pass produces.
pub(crate) struct Forward {
    /// [B, M] u32.
    pub codes: Tensor,
    pub z: Tensor,
    /// q_1, q_1 + q_2, ..., each [B, D].
    pub partial_sums: Vec<Tensor>,
    /// The residual each level quantised, each [B, D] (detached).
    pub residuals: Vec<Tensor>,
    pub reconstruction: Tensor,
}

impl Quantizer {
    fn build(config: QuantizerConfig, mut params: Params) -> Result<Self> {
        let c = &config;
        let encoder = ResidualMlp::new(&mut params, "encoder", c.dim, c.hidden)?;
        let n_books = if c.shared_codebook { 1 } else { c.voken_len };
        let codebooks = (0..n_books)
            .map(|i| params.get(&format!("codebook.{i}"), &[c.codebook_size, c.dim], Init::Zeros))
            .collect::<Result<_>>()?;
        let decoder = Decoder::new(&mut params, c.dim, c.hidden)?;
        Ok(Quantizer { config, params, encoder, codebooks, decoder, host_codebooks: OnceLock::new() })
    }

    /// A fresh model; its codebooks are zero until `train` initialises them by k-means.
    pub(crate) fn fresh(config: QuantizerConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::build(config, Params::fresh(seed, device))
    }

    pub(crate) fn from_tensors(
        config: QuantizerConfig,
        tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        Self::build(config, Params::stored(tensors, device))
    }

    pub(crate) fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.params.named_tensors()
    }

    pub(crate) fn device(&self) -> &Device {
        self.params.device()
    }

    fn codebook(&self, level: usize) -> &Tensor {
        &self.codebooks[if self.config.shared_codebook { 0 } else { level }]
    }

    pub(crate) fn encode_latent(&self, x: &Tensor) -> Result<Tensor> {
        self.encoder.forward(x)
    }

    /// Residual quantisation of latents `z` [B, D]: codes [B, M] and partial sums.
    fn quantize(&self, z: &Tensor) -> Result<(Tensor, Vec<Tensor>, Vec<Tensor>)> {
        let mut codes = Vec::with_capacity(self.config.voken_len);
        let mut sums: Vec<Tensor> = Vec::with_capacity(self.config.voken_len);
        let mut residuals = Vec::with_capacity(self.config.voken_len);
        let z_const = z.detach();
        for level in 0..self.config.voken_len {
            let residual = match sums.last() {
                Some(s) => (&z_const - s.detach())?,
                None => z_const.clone(),
            };
            let book = self.codebook(level);
            let code = kmeans::nearest(&residual, &book.detach())?;
            let q = book.index_select(&code, 0)?;
            let sum = match sums.last() {
                Some(s) => (s + q)?,
                None => q,
            };
            codes.push(code.unsqueeze(1)?);
            sums.push(sum);
            residuals.push(residual);
        }
        Ok((Tensor::cat(&codes, 1)?, sums, residuals))
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Forward> {
        let z = self.encode_latent(x)?;
        let (codes, partial_sums, residuals) = self.quantize(&z)?;
        let zq = partial_sums.last().expect("at least one level");
        // Straight-through: the decoder sees the quantised value, gradients reach z.
        let st = (&z + (zq - &z)?.detach())?;
        let reconstruction = self.decoder.forward(&st)?;
        Ok(Forward { codes, z, partial_sums, residuals, reconstruction })
    }

    /// Codes [B, M] of image vectors `x` [B, D], without gradients.
    pub(crate) fn encode(&self, x: &Tensor) -> Result<Vec<Vec<u32>>> {
        let z = self.encode_latent(x)?.detach();
        Ok(self.quantize(&z)?.0.to_vec2::<u32>()?)
    }

    /// The codebooks on the host, with their rows' norms: what a trie walk by
    /// quantisation reads (`search::quantized`). Copied at the first call: a model that
    /// searches is installed, and installed models do not change (a training makes a new
    /// one).
    pub(crate) fn host_codebooks(&self) -> Result<&Codebooks> {
        if let Some(books) = self.host_codebooks.get() {
            return Ok(books);
        }
        let rows = self.codebooks.iter().map(|b| Ok(b.flatten_all()?.to_vec1::<f32>()?)).collect::<Result<_>>()?;
        Ok(self.host_codebooks.get_or_init(|| Codebooks::new(rows, self.config.dim)))
    }

    /// The codebook rows, to start the generator's code embeddings from: [N, D] for a
    /// shared codebook, the mean over levels otherwise.
    pub(crate) fn codebook_embeddings(&self) -> Result<Tensor> {
        Ok(Tensor::stack(&self.codebooks, 0)?.mean(0)?.detach())
    }

    pub(crate) fn codebook_var(&self, book: usize) -> &candle_core::Var {
        self.params.var(&format!("codebook.{book}")).expect("codebook var exists")
    }

    pub(crate) fn vars(&self) -> Vec<candle_core::Var> {
        self.params.vars()
    }
}
