//! A BERT-family sentence encoder (such as all-MiniLM-L6-v2): mean pooling over the
//! real tokens, then L2 normalisation, as sentence-transformers does.

use super::{load_bert, model_config, model_tensors, read, text_tokenizer, tokenize};
use crate::{device, Result};
use candle_core::{DType, Device};
use candle_transformers::models::bert::BertModel;
use std::path::Path;

pub struct TextEncoder {
    text_tokenizer: tokenizers::Tokenizer,
    model: BertModel,
    pad: u32,
    dim: usize,
    device: Device,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder").field("dim", &self.dim).finish_non_exhaustive()
    }
}

/// Longest text, in tokens; longer texts are cut.
const MAX_TOKENS: usize = 128;

impl TextEncoder {
    /// Loads `config.json` (`model_type` "bert"), `tokenizer.json` and
    /// `model.safetensors` from `dir`, on `device` ("cpu", "cuda:N").
    pub fn load(dir: impl AsRef<Path>, device: &str) -> Result<Self> {
        let dir = dir.as_ref();
        let device = device::open(device)?;
        let text_tokenizer = text_tokenizer(&read(&dir.join("tokenizer.json"))?, MAX_TOKENS)?;
        let (model, config) = load_bert(model_config(dir)?, model_tensors(dir, &device)?, &device)?;
        Ok(TextEncoder { text_tokenizer, model, pad: config.pad_token_id as u32, dim: config.hidden_size, device })
    }

    /// Length of the vectors `embed` returns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Unit-length sentence vectors of `texts`, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        for t in texts {
            crate::limits::check_text("text", t)?;
        }
        // Batches of similar length waste less on padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(32) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let (ids, mask) = tokenize(&self.text_tokenizer, &batch, self.pad, &self.device)?;
            let states = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let pooled = states.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)?;
            let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            for (&i, v) in chunk.iter().zip(pooled.broadcast_div(&norm)?.to_vec2::<f32>()?) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}
