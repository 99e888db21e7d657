//! libavg: generative text-to-image retrieval (autoregressive voken generation) that
//! embeds in other programs.
//!
//! The safe Rust API is [`Index`] and the types around it; the C ABI over it is declared
//! in `include/avg.h`.

#![deny(unsafe_op_in_unsafe_fn)]

mod checksum;
mod device;
mod duplicates;
mod encoders;
mod error;
// The C ABI (include/avg.h): public so that the integration tests can call it from Rust,
// hidden because Rust hosts use the safe API.
#[doc(hidden)]
pub mod ffi;
mod file;
mod generator;
mod heap;
mod index;
mod kernels;
pub mod limits;
pub mod log;
mod optim;
mod params;
mod progress;
mod quantizer;
mod records;
mod rng;
mod search;
mod store;
mod vectors;
mod vokens;

pub use encoders::image::{decode as decode_image, Preprocess};
pub use encoders::{Clip, ImageSource, TextEncoder};
pub use error::{Error, Result};
pub use generator::{GeneratorReport, GeneratorTrainConfig};
pub use heap::set_heap_tuning;
pub use index::{Index, IndexConfig, IndexInfo, NewPhoto};
pub use kernels::pool::set_threads;
pub use params::SearchWeights;
pub use progress::{Progress, Stage};
pub use quantizer::{TokenizerReport, TokenizerTrainConfig};
pub use records::{Caption, ImageRecord, NewCaption, NewImage};
pub use search::{Filter, Hit, SearchMode, SearchOptions, AUTO_DENSE_MAX_IMAGES};
pub use store::{file_checksum, FORMAT_VERSION};
pub use vectors::VectorStorage;
pub use vokens::VokenStats;

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
