//! Step-by-step decoding for search: each query's cross-attention keys and values are
//! computed once, the self-attention cache follows the beams, and the caller sees
//! log-probabilities over the vokens only.

use super::t5::{padding_bias, Cache, Kv};
use super::{Encoded, Generator};
use crate::Result;
use candle_core::{Tensor, D};

pub(crate) struct Decoding<'g> {
    g: &'g Generator,
    /// Per query: every decoder layer's cross-attention keys and values, and the bias
    /// that hides its padding.
    cross: Vec<Kv>,
    bias: Tensor,
    cache: Cache,
    /// The 2N vokens' output rows.
    out_rows: Tensor,
}

impl<'g> Decoding<'g> {
    /// Starts decoding the encoded queries `enc` [B, S, D].
    pub(crate) fn begin(g: &'g Generator, enc: &Encoded) -> Result<Self> {
        Ok(Decoding {
            g,
            cross: g.cross_kv(enc)?,
            bias: padding_bias(&enc.mask)?,
            cache: Cache::default(),
            out_rows: g.output_rows(None)?,
        })
    }

    /// Log-probabilities over the 2N vokens (local numbers) of the next voken of every
    /// row: row r decodes query `queries[r]` and was last given voken `last[r]` (`None`
    /// at the first step). After the first step, rows are those `follow` chose.
    pub(crate) fn step(&mut self, queries: &[usize], last: &[Option<u32>]) -> Result<Vec<Vec<f32>>> {
        let g = self.g;
        // One query: its rows share the encoder states as they are (the decoder folds
        // them); several: each row gets its query's.
        let (cross, bias) = if self.bias.dim(0)? == 1 {
            (self.cross.clone(), self.bias.clone())
        } else {
            let rows = Tensor::from_vec(queries.iter().map(|&q| q as u32).collect(), queries.len(), g.device())?;
            (self.cross.iter().map(|kv| kv.select(&rows)).collect::<Result<_>>()?, self.bias.index_select(&rows, 0)?)
        };
        let tokens: Vec<u32> = last.iter().map(|v| v.map_or(g.config.start_token, |v| g.token_of_local(v))).collect();
        let hidden = g.decode(&g.embed_step(&tokens)?, &cross, &bias, &mut self.cache)?;
        let logits = g.logits(&hidden.squeeze(1)?, &self.out_rows, g.output_int8.as_ref())?;
        Ok(candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?)
    }

    /// The next step's rows continue this step's rows `parents` (with repetition).
    pub(crate) fn follow(&mut self, parents: &[u32]) -> Result<()> {
        let parents = Tensor::from_slice(parents, parents.len(), self.g.device())?;
        self.cache.reorder(&parents)
    }
}
