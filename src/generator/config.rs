//! What a generator training is asked to do, and what it reports.

use crate::{Error, Result};
use std::path::PathBuf;

/// How to train the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorTrainConfig {
    /// A Hugging Face checkpoint directory: a T5 (`model_type` "t5") or a BERT-family
    /// sentence encoder (`model_type` "bert") in front of a voken decoder.
    pub model_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
    pub gen_weight: f32,
    /// L_dis on or off (the paper's ablation).
    pub dis: bool,
    pub dis_weight: f32,
    /// Beam size b of the L_dis candidates.
    pub beam_size: usize,
    /// Share of each batch that also gets L_dis (0 to 1]. Scoring b+1 candidates costs
    /// about b+1 times a caption's L_gen; a share keeps CPU training affordable.
    pub dis_fraction: f32,
    /// Candidate scores are divided by this before the softmax (the reference uses 0.5).
    pub dis_temperature: f32,
    /// Code embeddings start from the tokenizer's codebook (true) or at random (ablation).
    pub init_from_codebook: bool,
    /// Voken decoder size, for the "bert" backbone.
    pub decoder_layers: usize,
    pub decoder_d_model: usize,
    /// Captions and queries are cut to this many tokens.
    pub max_text_tokens: usize,
    pub seed: u64,
    /// Also learn every image's attached texts (`Index::attach_texts`) as pseudo-queries
    /// of it (true), or captions alone (the ablation).
    pub index_texts: bool,
    /// Give the generator a vector memory slot: captions enter with their text vectors,
    /// queries with theirs, and every image with no text at all is learned from its own
    /// vector (true); or text only (the ablation).
    pub index_vectors: bool,
    /// Repeat the pairs of images that have fewer than the median number per image (a
    /// photo with one attached text beside photos with four captions) up to it, so that
    /// the generator does not learn to prefer the captioned photos' codes; images with
    /// more keep theirs. Off by default: measured in the smaller setting only
    /// (docs/benchmarks.md, "Balancing the pairs per image"). C:
    /// `AvgGeneratorTrainConfig.balance_images`.
    pub balance_images: bool,
    /// Go on with a training that was cut short (killed, or stopped by `progress`): when
    /// the index's generator comes from a training that completed fewer than `epochs`
    /// epochs, train it on from there (the data in the same order and the learning rate
    /// where it was; the optimiser's moments start afresh); one that completed `epochs`
    /// trains no more. Without such a generator (none, or one saved before libavg
    /// recorded epochs), a training from the checkpoint. A resume trains the model's
    /// shape: `model_dir`, the decoder sizes, `index_vectors` or `max_text_tokens`
    /// other than the model's are `Error::ConfigMismatch`, naming the option. Not read
    /// by an indexing pass.
    pub resume: bool,
    /// An indexing pass instead of a training from the checkpoint: the index's current
    /// generator goes on learning, for `epochs`, the pairs it has not learned yet (of
    /// images added since it trained, images removed and added again, texts attached
    /// since), mixed with as many replayed pairs it has learned (at least a batch). The result is installed only when the pass
    /// ends; a stopped pass leaves the previous generator serving. `model_dir`,
    /// `init_from_codebook`, the decoder sizes and `index_vectors` are the trained
    /// model's and are not read.
    pub incremental: bool,
}

impl Default for GeneratorTrainConfig {
    fn default() -> Self {
        GeneratorTrainConfig {
            model_dir: PathBuf::new(),
            epochs: 10,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            gen_weight: 1.0,
            dis: true,
            dis_weight: 1.0,
            beam_size: 5,
            dis_fraction: 1.0,
            dis_temperature: 0.5,
            init_from_codebook: true,
            decoder_layers: 2,
            decoder_d_model: 256,
            max_text_tokens: 32,
            seed: 42,
            index_texts: true,
            index_vectors: true,
            balance_images: false,
            resume: false,
            incremental: false,
        }
    }
}

impl GeneratorTrainConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("generator training: {m}")));
        if self.epochs == 0
            || self.batch_size == 0
            || self.beam_size == 0
            || self.decoder_layers == 0
            || self.max_text_tokens == 0
        {
            return bad("epochs, batch_size, beam_size, decoder_layers and max_text_tokens must be at least 1");
        }
        if self.decoder_d_model == 0 || !self.decoder_d_model.is_multiple_of(64) && self.decoder_d_model > 64 {
            return bad("decoder_d_model must be a multiple of 64 (or at most 64)");
        }
        crate::limits::cap("generator batch size", self.batch_size, 4096)?;
        crate::limits::cap("beam size", self.beam_size, crate::limits::MAX_BEAM)?;
        crate::limits::cap("max_text_tokens", self.max_text_tokens, 512)?;
        crate::limits::cap("decoder_d_model", self.decoder_d_model, 4096)?;
        crate::limits::cap("decoder_layers", self.decoder_layers, 48)?;
        let w = [self.gen_weight, self.dis_weight, self.dis_temperature];
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.weight_decay.is_finite()
            && self.max_grad_norm.is_finite())
            || w.iter().any(|x| !x.is_finite() || *x < 0.0)
            || self.dis_temperature == 0.0
            || !(self.dis_fraction > 0.0 && self.dis_fraction <= 1.0)
        {
            return bad("learning rate, weights and temperature must be finite, positive where they divide");
        }
        Ok(())
    }
}

/// What a finished training reports.
#[derive(Debug, Clone, Default)]
pub struct GeneratorReport {
    pub epochs: usize,
    pub steps: usize,
    pub seconds: f64,
    /// Last epoch's mean losses.
    pub loss_gen: f32,
    pub loss_dis: f32,
    /// Images with pairs this call learned for the first time: new images, images
    /// removed and added again, images given new texts (0: an indexing pass found
    /// nothing new to learn and trained nothing).
    pub new_images: usize,
}
