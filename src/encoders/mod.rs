//! Pretrained encoders loaded from local checkpoint directories (CLIP's image and text
//! towers, BERT-family sentence encoders), photo preprocessing, and the file helpers
//! the models share.

mod clip;
pub mod image;
mod text;

pub use clip::{Clip, ImageSource};
pub use text::TextEncoder;

use crate::{file, Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use std::collections::HashMap;
use std::path::Path;

/// A JSON file of a checkpoint directory (a regular file of bounded size).
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    file::read_at_most(path, crate::limits::MAX_MODEL_JSON_BYTES)
}

/// `model.safetensors` of a checkpoint directory.
pub(crate) fn model_tensors(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let path = dir.join("model.safetensors");
    let bytes = file::read_safetensors(&path)?;
    candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| Error::corrupt(&path, e.to_string()))
}

/// `config.json` of a checkpoint directory.
pub(crate) fn model_config(dir: &Path) -> Result<serde_json::Value> {
    read_json(&dir.join("config.json"))
}

/// A JSON file of a checkpoint directory.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    serde_json::from_slice(&read(path)?).map_err(|e| Error::corrupt(path, e.to_string()))
}

/// A BERT-family model from its `config.json` value and weights, after checking that
/// the config describes a buildable model (Candle's loader divides by the head count
/// and trusts every size).
pub(crate) fn load_bert(
    raw: serde_json::Value,
    tensors: HashMap<String, Tensor>,
    device: &Device,
) -> Result<(BertModel, BertConfig)> {
    let c: BertConfig = serde_json::from_value(raw).map_err(|e| Error::Model(format!("bert config: {e}")))?;
    let sizes = [
        c.vocab_size,
        c.hidden_size,
        c.num_attention_heads,
        c.intermediate_size,
        c.max_position_embeddings,
        c.type_vocab_size,
    ];
    if sizes.contains(&0) || !c.hidden_size.is_multiple_of(c.num_attention_heads) || c.num_hidden_layers > MAX_LAYERS {
        return Err(Error::Model(format!(
            "bert config: sizes must be at least 1, hidden_size ({}) a multiple of num_attention_heads ({}), at most {MAX_LAYERS} layers",
            c.hidden_size, c.num_attention_heads
        )));
    }
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok((BertModel::load(vb, &c)?, c))
}

/// Most layers a loaded encoder or decoder may have (the largest public T5 has 24).
pub(crate) const MAX_LAYERS: usize = 128;

/// A Hugging Face tokenizer without padding (batches are padded with masks here) and
/// cut at `max_tokens`.
pub(crate) fn text_tokenizer(json: &[u8], max_tokens: usize) -> Result<tokenizers::Tokenizer> {
    let mut t = tokenizers::Tokenizer::from_bytes(json).map_err(|e| Error::Model(format!("tokenizer.json: {e}")))?;
    t.with_padding(None);
    t.with_truncation(Some(tokenizers::TruncationParams { max_length: max_tokens, ..Default::default() }))
        .map_err(|e| Error::Model(format!("tokenizer truncation: {e}")))?;
    Ok(t)
}

/// Token ids of `texts`, each row padded with `pad` to the longest: the ids row-major
/// [B * S], each row's real length, and S.
pub(crate) fn padded_ids(t: &tokenizers::Tokenizer, texts: &[&str], pad: u32) -> Result<(Vec<u32>, Vec<usize>, usize)> {
    let enc = t.encode_batch(texts.to_vec(), true).map_err(|e| Error::Model(format!("tokenize: {e}")))?;
    let s = enc.iter().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(texts.len() * s);
    for e in &enc {
        ids.extend_from_slice(e.get_ids());
        ids.resize(ids.len() + s - e.get_ids().len(), pad);
    }
    Ok((ids, enc.iter().map(|e| e.get_ids().len()).collect(), s))
}

/// Token ids of `texts`, padded with `pad`: ids and 0/1 mask, [B, S].
pub(crate) fn tokenize(
    t: &tokenizers::Tokenizer,
    texts: &[&str],
    pad: u32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (ids, lens, s) = padded_ids(t, texts, pad)?;
    let mask: Vec<u32> = lens.iter().flat_map(|&n| (0..s).map(move |i| (i < n) as u32)).collect();
    Ok((Tensor::from_vec(ids, (texts.len(), s), device)?, Tensor::from_vec(mask, (texts.len(), s), device)?))
}
