//! The fields of a Hugging Face T5 `config.json` that shape the model, with the
//! defaults of transformers' `T5Config` for the ones a checkpoint may leave out.

use crate::Result;
use serde::{Deserialize, Serialize};

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}

/// The fields of a Hugging Face T5 `config.json` that shape the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// "relu" (t5) or "gated-gelu" (t5 v1.1, flan-t5).
    #[serde(default = "default_ff")]
    pub feed_forward_proj: String,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub decoder_start_token_id: u32,
}

impl T5Config {
    /// A config that describes a buildable model: sizes at least 1, a bounded depth.
    pub(crate) fn check(&self) -> Result<()> {
        let sizes = [
            self.vocab_size,
            self.d_model,
            self.d_kv,
            self.d_ff,
            self.num_layers,
            self.num_heads,
            self.relative_attention_max_distance,
        ];
        let layers = self.num_layers.max(self.num_decoder_layers.unwrap_or(0));
        if sizes.contains(&0)
            || self.num_decoder_layers == Some(0)
            || self.relative_attention_num_buckets < 2
            || layers > crate::encoders::MAX_LAYERS
        {
            return Err(crate::Error::Model(format!(
                "t5 config: sizes must be at least 1, buckets at least 2, at most {} layers",
                crate::encoders::MAX_LAYERS
            )));
        }
        Ok(())
    }
}
