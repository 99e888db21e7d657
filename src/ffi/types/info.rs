//! `AvgIndexInfo`: what `avg_index_info` reports.

use super::Growable;
use crate::IndexInfo;
use std::mem::{offset_of, size_of};

/// An index's shape, counts and state (`avg_index_info`): the fields of the Rust
/// `IndexInfo`, documented there, but the encoder's directory, which
/// `avg_index_image_encoder_dir` copies out.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct AvgIndexInfo {
    /// `sizeof(AvgIndexInfo)`; set by `avg_index_info`.
    pub struct_size: usize,
    pub dim: usize,
    pub codebook_size: usize,
    pub voken_len: usize,
    pub images: usize,
    pub captions: usize,
    pub texts: usize,
    pub tokenizer_trained: bool,
    pub generator_trained: bool,
    pub pending_tokenizer: bool,
    pub image_encoder_open: bool,
    pub read_only: bool,
    /// Padding, 0: the struct ends without tail padding, so that it can grow.
    pub reserved: [u8; 3],
    pub vector_bytes: usize,
}
growable!(AvgIndexInfo, vector_bytes: usize, first ends at reserved: [u8; 3]);

impl From<&IndexInfo> for AvgIndexInfo {
    fn from(i: &IndexInfo) -> Self {
        AvgIndexInfo {
            struct_size: size_of::<Self>(),
            dim: i.dim,
            codebook_size: i.codebook_size,
            voken_len: i.voken_len,
            images: i.images,
            captions: i.captions,
            texts: i.texts,
            tokenizer_trained: i.tokenizer_trained,
            generator_trained: i.generator_trained,
            pending_tokenizer: i.pending_tokenizer,
            image_encoder_open: i.image_encoder_open,
            read_only: i.read_only,
            reserved: [0; 3],
            vector_bytes: i.vector_bytes,
        }
    }
}
