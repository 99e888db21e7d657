//! Named trainable parameters, created either from a seeded initialiser or from stored
//! tensors, in the manner of Candle's `VarBuilder` but seedable and with exact-name
//! checks on load.

use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Linear;
use std::collections::HashMap;

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
    vars: Vec<(String, Var)>,
}

impl Params {
    pub(crate) fn fresh(seed: u64, device: &Device) -> Self {
        Params { source: Source::Fresh(Rng::new(seed)), device: device.clone(), vars: Vec::new() }
    }

    /// Parameters read back from a saved model; every name asked for must be present
    /// with the asked shape.
    pub(crate) fn stored(tensors: HashMap<String, Tensor>, device: &Device) -> Self {
        Params { source: Source::Stored(tensors), device: device.clone(), vars: Vec::new() }
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
        let var = Var::from_tensor(&t)?;
        let tensor = var.as_tensor().clone();
        self.vars.push((name.to_owned(), var));
        Ok(tensor)
    }

    /// A linear layer `out x in` with bias, weights ~ N(0, std) (default 1/sqrt(in)).
    pub(crate) fn linear(&mut self, name: &str, inp: usize, out: usize, std: Option<f32>) -> Result<Linear> {
        let std = std.unwrap_or(1.0 / (inp as f32).sqrt());
        let w = self.get(&format!("{name}.weight"), &[out, inp], Init::Normal(std))?;
        let b = self.get(&format!("{name}.bias"), &[out], Init::Zeros)?;
        Ok(Linear::new(w, Some(b)))
    }

    pub(crate) fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub(crate) fn vars(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    pub(crate) fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect()
    }
}
