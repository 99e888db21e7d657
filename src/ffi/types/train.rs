//! The training configs and the tokenizer's statistics, as the header declares them.

use super::{c_str, Growable};
use crate::{limits, Error, GeneratorTrainConfig, Result, TokenizerTrainConfig, VokenStats};
use std::ffi::c_char;
use std::mem::{offset_of, size_of};

/// The tokenizer config's fields, listed once for both directions.
macro_rules! tokenizer_fields {
    ($src:expr, $dst:ident { $($rest:tt)* }) => {
        $dst {
            epochs: $src.epochs,
            batch_size: $src.batch_size,
            learning_rate: $src.learning_rate,
            recon_weight: $src.recon_weight,
            commit_weight: $src.commit_weight,
            align: $src.align,
            align_weight: $src.align_weight,
            shared_codebook: $src.shared_codebook,
            hidden: $src.hidden,
            kmeans_iterations: $src.kmeans_iterations,
            seed: $src.seed,
            $($rest)*
        }
    };
}

/// How to train the tokenizer. N and M come from the index.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgTokenizerTrainConfig {
    /// `sizeof(AvgTokenizerTrainConfig)`; `avg_tokenizer_train_config_default` sets it.
    pub struct_size: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Weight of L_recon, ||decoder(z_q) - v_image||^2.
    pub recon_weight: f32,
    /// Weight of the commitment term (0.25 by default; the codebook term has weight 1).
    pub commit_weight: f32,
    /// L_align, ||decoder(z_q) - v_caption||^2, on or off (the paper's ablation).
    pub align: bool,
    pub align_weight: f32,
    /// One codebook for all M levels (the paper) or one per level.
    pub shared_codebook: bool,
    /// Width of the encoder and decoder MLPs.
    pub hidden: usize,
    pub kmeans_iterations: usize,
    pub seed: u64,
}
growable!(AvgTokenizerTrainConfig, seed: u64);

impl Default for AvgTokenizerTrainConfig {
    fn default() -> Self {
        tokenizer_fields!(TokenizerTrainConfig::default(), AvgTokenizerTrainConfig { struct_size: size_of::<Self>() })
    }
}

impl AvgTokenizerTrainConfig {
    pub(crate) fn to_rust(self) -> TokenizerTrainConfig {
        tokenizer_fields!(self, TokenizerTrainConfig {})
    }
}

/// Codebook statistics of an index's current vokens.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgTokenizerStats {
    /// `sizeof(AvgTokenizerStats)`; set by `avg_index_tokenizer_stats`.
    pub struct_size: usize,
    /// M.
    pub voken_len: usize,
    /// Fraction of the N codes used at each level; entries past `voken_len` are 0.
    pub usage_per_level: [f32; limits::MAX_VOKEN_LEN],
    /// Images whose M codes another image shares (told apart by their last voken).
    pub collided_images: usize,
    /// The most images that share one sequence of M codes: 1 when none collide, 0 for an
    /// index without images.
    pub largest_collision_group: usize,
}
growable!(AvgTokenizerStats, largest_collision_group: usize);

impl Default for AvgTokenizerStats {
    fn default() -> Self {
        AvgTokenizerStats {
            struct_size: size_of::<Self>(),
            voken_len: 0,
            usage_per_level: [0.0; limits::MAX_VOKEN_LEN],
            collided_images: 0,
            largest_collision_group: 0,
        }
    }
}

impl From<&VokenStats> for AvgTokenizerStats {
    fn from(s: &VokenStats) -> Self {
        let mut usage = [0.0; limits::MAX_VOKEN_LEN];
        usage[..s.usage_per_level.len()].copy_from_slice(&s.usage_per_level);
        AvgTokenizerStats {
            struct_size: size_of::<Self>(),
            voken_len: s.usage_per_level.len(),
            usage_per_level: usage,
            collided_images: s.collided_images,
            largest_collision_group: s.largest_collision_group,
        }
    }
}

/// The generator config's fields but `model_dir`, listed once for both directions.
macro_rules! generator_fields {
    ($src:expr, $dst:ident { $($rest:tt)* }) => {
        $dst {
            epochs: $src.epochs,
            batch_size: $src.batch_size,
            learning_rate: $src.learning_rate,
            weight_decay: $src.weight_decay,
            max_grad_norm: $src.max_grad_norm,
            gen_weight: $src.gen_weight,
            dis: $src.dis,
            dis_weight: $src.dis_weight,
            beam_size: $src.beam_size,
            dis_fraction: $src.dis_fraction,
            dis_temperature: $src.dis_temperature,
            init_from_codebook: $src.init_from_codebook,
            index_texts: $src.index_texts,
            index_vectors: $src.index_vectors,
            resume: $src.resume,
            incremental: $src.incremental,
            decoder_layers: $src.decoder_layers,
            decoder_d_model: $src.decoder_d_model,
            max_text_tokens: $src.max_text_tokens,
            seed: $src.seed,
            $($rest)*
        }
    };
}

/// How to train the generator; start from `avg_generator_train_config_default` and set
/// `model_dir`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgGeneratorTrainConfig {
    /// `sizeof(AvgGeneratorTrainConfig)`; `avg_generator_train_config_default` sets it.
    pub struct_size: usize,
    /// A Hugging Face checkpoint directory (config.json, tokenizer.json,
    /// model.safetensors): a T5, or a BERT-family encoder in front of a voken decoder.
    pub model_dir: *const c_char,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip; 0 turns it off.
    pub max_grad_norm: f64,
    pub gen_weight: f32,
    /// The discriminative loss on (true) or off (the ablation).
    pub dis: bool,
    pub dis_weight: f32,
    /// Beam size of the discriminative loss's candidates.
    pub beam_size: usize,
    /// Share of each batch (0 to 1] that also gets the discriminative loss.
    pub dis_fraction: f32,
    pub dis_temperature: f32,
    /// Code embeddings start from the tokenizer's codebook (true) or at random.
    pub init_from_codebook: bool,
    /// Also learn the texts attached to images (`avg_index_attach_texts`) as
    /// pseudo-queries of them (true), or captions alone.
    pub index_texts: bool,
    /// Give the generator a vector memory slot (true): captions enter with their text
    /// vectors, queries with theirs (`AvgSearchOptions.query_vectors`, or the image
    /// encoder's), and images with no text at all are learned from their own vectors.
    pub index_vectors: bool,
    /// Go on with a training that was cut short (killed, or stopped by `progress`): when
    /// the index's generator comes from a training that completed fewer than `epochs`
    /// epochs, it trains on from there (data in the same order, the learning rate where
    /// it was, the optimiser's moments afresh); one that completed `epochs` trains no
    /// more. Without such a generator, or with a pending tokenizer, a training from
    /// `model_dir` as without it. `model_dir`, the decoder sizes, `index_vectors` or
    /// `max_text_tokens` other than the resumed model's: `AVG_STATUS_CONFIG_MISMATCH`,
    /// naming the field.
    pub resume: bool,
    /// An indexing pass: the current generator goes on learning the pairs it has not
    /// learned (images added, or removed and added again, since it trained; texts
    /// attached since), replaying as many pairs it learned before, for `epochs`;
    /// installed when the pass ends (a cancelled pass leaves the previous generator
    /// serving). `AVG_STATUS_WRONG_STATE` without a trained generator; nothing new to
    /// learn is OK and trains nothing. `model_dir` may then be NULL.
    pub incremental: bool,
    /// Voken decoder size for a BERT backbone.
    pub decoder_layers: usize,
    pub decoder_d_model: usize,
    pub max_text_tokens: usize,
    pub seed: u64,
    /// Whether images with fewer pairs than the median (a photo with one attached text
    /// beside photos with four captions) have them repeated up to it, so that the
    /// generator does not learn to prefer the captioned photos' codes:
    /// `AVG_BALANCE_IMAGES_DEFAULT` (0: libavg's choice, off for now),
    /// `AVG_BALANCE_IMAGES_OFF` or `AVG_BALANCE_IMAGES_TO_MEDIAN`. Hosts built against
    /// a header without this field get the default.
    pub balance_images: u64,
}
growable!(AvgGeneratorTrainConfig, balance_images: u64, first ends at seed: u64);

/// `AvgGeneratorTrainConfig.balance_images`: libavg's choice (off: measured in a
/// smaller setting only).
pub const AVG_BALANCE_IMAGES_DEFAULT: u64 = 0;
/// `AvgGeneratorTrainConfig.balance_images`: every pair once.
pub const AVG_BALANCE_IMAGES_OFF: u64 = 1;
/// `AvgGeneratorTrainConfig.balance_images`: the pairs of images with fewer than the
/// median number per image repeated up to it (an epoch grows by those repeats).
pub const AVG_BALANCE_IMAGES_TO_MEDIAN: u64 = 2;

impl Default for AvgGeneratorTrainConfig {
    fn default() -> Self {
        generator_fields!(
            GeneratorTrainConfig::default(),
            AvgGeneratorTrainConfig {
                struct_size: size_of::<Self>(),
                model_dir: std::ptr::null(),
                balance_images: AVG_BALANCE_IMAGES_DEFAULT
            }
        )
    }
}

impl AvgGeneratorTrainConfig {
    /// # Safety
    /// `model_dir` is NULL or NUL-terminated.
    pub(crate) unsafe fn to_rust(self) -> Result<GeneratorTrainConfig> {
        let model_dir = match self.incremental && self.model_dir.is_null() {
            true => Default::default(),
            // SAFETY: NULL or NUL-terminated, as the caller vouches.
            false => unsafe { c_str(self.model_dir, "config.model_dir") }?.into(),
        };
        let balance_images = match self.balance_images {
            AVG_BALANCE_IMAGES_DEFAULT => GeneratorTrainConfig::default().balance_images,
            AVG_BALANCE_IMAGES_OFF => false,
            AVG_BALANCE_IMAGES_TO_MEDIAN => true,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "config.balance_images {other}: expected 0 (default), 1 (off) or 2 (to the median)"
                )))
            }
        };
        Ok(generator_fields!(self, GeneratorTrainConfig { model_dir, balance_images }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_images_reaches_the_rust_config() {
        let with = |balance_images| {
            let c = AvgGeneratorTrainConfig { model_dir: c"m".as_ptr(), balance_images, ..Default::default() };
            // SAFETY: `model_dir` is NUL-terminated.
            unsafe { c.to_rust() }.map(|g| g.balance_images)
        };
        assert_eq!(with(AVG_BALANCE_IMAGES_DEFAULT).unwrap(), GeneratorTrainConfig::default().balance_images);
        assert!(!with(AVG_BALANCE_IMAGES_OFF).unwrap());
        assert!(with(AVG_BALANCE_IMAGES_TO_MEDIAN).unwrap());
        assert!(matches!(with(3), Err(Error::InvalidArgument(_))));
    }
}
