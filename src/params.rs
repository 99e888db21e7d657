//! Named trainable parameters, created either from a seeded initialiser or from stored
//! tensors, in the manner of Candle's `VarBuilder` but seedable and with exact-name
//! checks on load.

use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Linear;
use std::collections::HashMap;

/// How a generator that answers searches keeps its weights on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchWeights {
    /// As trained (f32).
    F32,
    /// Also as int8 with one scale per output row, which the search steps read: a
    /// quarter of the bytes of f32 (0.76-0.86 of f32's search time on 2 AVX2 cores,
    /// where the kernel is bound more by arithmetic than by reading). Takes a quarter
    /// more memory for the model (the f32 weights stay for training further).
    /// Where the CPU lacks AVX2 and FMA, or on a GPU, searches use the f32 weights.
    #[default]
    Int8,
}

/// How a fresh parameter starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
    Normal(f32),
    Zeros,
    Ones,
}

enum Source {
    Fresh(Rng),
    Stored(HashMap<String, Tensor>),
}

pub(crate) struct Params {
    source: Source,
    device: Device,
    tensors: Vec<(String, Tensor)>,
    /// The trainable `Var` behind each of `tensors`; empty for frozen parameters.
    vars: Vec<Var>,
    trainable: bool,
    /// Linear layers also keep an int8 copy of their weights for search.
    int8: bool,
}

impl Params {
    fn new(source: Source, device: &Device, trainable: bool) -> Self {
        Params { source, device: device.clone(), tensors: Vec::new(), vars: Vec::new(), trainable, int8: false }
    }

    pub(crate) fn fresh(seed: u64, device: &Device) -> Self {
        Self::new(Source::Fresh(Rng::new(seed)), device, true)
    }

    /// Parameters read back from a saved model, to train further; every name asked for
    /// must be present with the asked shape.
    pub(crate) fn stored(tensors: HashMap<String, Tensor>, device: &Device) -> Self {
        Self::new(Source::Stored(tensors), device, true)
    }

    /// Like `stored`, for inference only: plain tensors, so that forward passes record
    /// no backprop graph and may use fused kernels that have no backward pass. With
    /// `SearchWeights::Int8`, linear layers also keep int8 copies of their weights, so
    /// the tensors must not change afterwards.
    pub(crate) fn frozen(tensors: HashMap<String, Tensor>, device: &Device, weights: SearchWeights) -> Self {
        Params { int8: weights == SearchWeights::Int8, ..Self::new(Source::Stored(tensors), device, false) }
    }

    /// Whether linear layers keep int8 copies of their weights (see `frozen`).
    pub(crate) fn int8(&self) -> bool {
        self.int8
    }

    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    pub(crate) fn get(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let t = match &mut self.source {
            Source::Fresh(rng) => {
                let values = match init {
                    Init::Normal(std) => rng.normals(n, std),
                    Init::Zeros => vec![0.0; n],
                    Init::Ones => vec![1.0; n],
                };
                Tensor::from_vec(values, shape, &self.device)?
            }
            Source::Stored(map) => {
                let t = map.remove(name).ok_or_else(|| Error::Model(format!("stored model lacks {name}")))?;
                if t.dims() != shape {
                    return Err(Error::Model(format!("{name}: stored shape {:?}, expected {shape:?}", t.dims())));
                }
                t.to_dtype(DType::F32)?.to_device(&self.device)?
            }
        };
        let t = if self.trainable {
            let var = Var::from_tensor(&t)?;
            let t = var.as_tensor().clone();
            self.vars.push(var);
            t
        } else {
            t
        };
        self.tensors.push((name.to_owned(), t.clone()));
        Ok(t)
    }

    /// A linear layer `out x in` with bias, weights ~ N(0, std) (default 1/sqrt(in)).
    pub(crate) fn linear(&mut self, name: &str, inp: usize, out: usize, std: Option<f32>) -> Result<Linear> {
        let std = std.unwrap_or(1.0 / (inp as f32).sqrt());
        let w = self.get(&format!("{name}.weight"), &[out, inp], Init::Normal(std))?;
        let b = self.get(&format!("{name}.bias"), &[out], Init::Zeros)?;
        Ok(Linear::new(w, Some(b)))
    }

    pub(crate) fn var(&self, name: &str) -> Option<&Var> {
        self.tensors.iter().position(|(n, _)| n == name).and_then(|i| self.vars.get(i))
    }

    pub(crate) fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }

    pub(crate) fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.tensors.clone()
    }
}
