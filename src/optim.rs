//! AdamW with global-norm gradient clipping. On the CPU the update is one fused in-place
//! pass over each parameter (Candle's op-by-op AdamW allocates a dozen full-size
//! temporaries per parameter and step); other devices run the same arithmetic as tensor ops.

use crate::Result;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Layout, Tensor, Var};
use std::sync::Mutex;

pub(crate) struct AdamW {
    vars: Vec<Var>,
    state: Vec<Moments>,
    step: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
}

enum Moments {
    Host { m: Vec<f32>, v: Vec<f32> },
    Device { m: Tensor, v: Tensor },
}

const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    pub(crate) fn new(vars: Vec<Var>, lr: f64, weight_decay: f64, max_grad_norm: f64) -> Result<Self> {
        let state = vars
            .iter()
            .map(|v| {
                Ok(if v.device().is_cpu() {
                    Moments::Host { m: vec![0.0; v.elem_count()], v: vec![0.0; v.elem_count()] }
                } else {
                    Moments::Device { m: v.zeros_like()?, v: v.zeros_like()? }
                })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW { vars, state, step: 0, lr, weight_decay, max_grad_norm })
    }

    /// Backpropagates `loss` and updates every parameter; returns the gradient norm
    /// before clipping.
    pub(crate) fn backward_step(&mut self, loss: &Tensor) -> Result<f32> {
        let grads = loss.backward()?;
        self.apply(&grads)
    }

    fn apply(&mut self, grads: &GradStore) -> Result<f32> {
        let gs: Vec<Option<Tensor>> = self.vars.iter().map(|v| grads.get(v.as_tensor()).cloned()).collect();
        // One device-to-host read per step for the global norm, not one per parameter.
        let sums = gs.iter().flatten().map(|g| g.sqr()?.sum_all()).collect::<candle_core::Result<Vec<_>>>()?;
        let norm = if sums.is_empty() { 0.0 } else { (Tensor::stack(&sums, 0)?.sum_all()?.to_scalar::<f32>()? as f64).sqrt() };
        let scale = if self.max_grad_norm > 0.0 && norm > self.max_grad_norm { self.max_grad_norm / norm } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let h = Hyper { lr: self.lr, wd: self.weight_decay, scale, bc1: 1.0 - B1.powi(t), bc2: 1.0 - B2.powi(t) };
        for ((var, state), g) in self.vars.iter().zip(&mut self.state).zip(gs) {
            let Some(g) = g else { continue };
            match state {
                Moments::Host { m, v } => {
                    let op = FusedStep { h, moments: Mutex::new((m.as_mut_slice(), v.as_mut_slice())) };
                    var.as_tensor().inplace_op2(&g.contiguous()?, &op)?;
                }
                Moments::Device { m, v } => {
                    let g = (g * scale)?;
                    *m = ((&*m * B1)? + (&g * (1.0 - B1))?)?;
                    *v = ((&*v * B2)? + (g.sqr()? * (1.0 - B2))?)?;
                    let update = ((&*m / h.bc1)? / ((&*v / h.bc2)?.sqrt()? + EPS)?)?;
                    let p = var.as_tensor();
                    let new = (p - ((update + (p * h.wd)?)? * h.lr)?)?;
                    var.set(&new)?;
                }
            }
        }
        Ok(norm as f32)
    }
}

#[derive(Clone, Copy)]
struct Hyper {
    lr: f64,
    wd: f64,
    scale: f64,
    bc1: f64,
    bc2: f64,
}

struct FusedStep<'a> {
    h: Hyper,
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
}

impl candle_core::InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(&self, p: &mut CpuStorage, pl: &Layout, g: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (p, g) else {
            candle_core::bail!("fused AdamW needs f32 parameters and gradients")
        };
        let (Some((p0, p1)), Some((g0, g1))) = (pl.contiguous_offsets(), gl.contiguous_offsets()) else {
            candle_core::bail!("fused AdamW needs contiguous tensors")
        };
        let mut guard = self.moments.lock().expect("not poisoned");
        let (m, v) = &mut *guard;
        let Hyper { lr, wd, scale, bc1, bc2 } = self.h;
        let (lr, wd, scale) = (lr as f32, wd as f32, scale as f32);
        let (b1, b2, bc1, bc2, eps) = (B1 as f32, B2 as f32, bc1 as f32, bc2 as f32, EPS as f32);
        for (((p, &g), m), v) in p[p0..p1].iter_mut().zip(&g[g0..g1]).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g * scale;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * ((*m / bc1) / ((*v / bc2).sqrt() + eps) + wd * *p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_step_matches_candles_adamw() {
        let init = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.1]], &Device::Cpu).unwrap();
        let (a, b) = (Var::from_tensor(&init).unwrap(), Var::from_tensor(&init).unwrap());
        let mut ours = AdamW::new(vec![a.clone()], 0.01, 0.1, 0.0).unwrap();
        let params = candle_nn::ParamsAdamW { lr: 0.01, weight_decay: 0.1, ..Default::default() };
        let mut theirs = <candle_nn::AdamW as candle_nn::Optimizer>::new(vec![b.clone()], params).unwrap();
        for _ in 0..5 {
            ours.backward_step(&a.sqr().unwrap().sum_all().unwrap()).unwrap();
            candle_nn::Optimizer::backward_step(&mut theirs, &b.sqr().unwrap().sum_all().unwrap()).unwrap();
        }
        let diff = (a.as_tensor() - b.as_tensor()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");
    }
}
